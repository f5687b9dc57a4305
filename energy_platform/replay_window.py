"""Which mornings a replay of the embedded data can cover: checked before anything heavy is
imported, so `energy-platform replay` answers a range it cannot replay at once, not after
Dagster and torch have loaded (~12 s)."""

from __future__ import annotations

from datetime import date, timedelta

EARLIEST_START = date(2015, 7, 1)  # half a year of history: the shortest window the replay was measured with


class ReplayError(RuntimeError):
    pass


def check_window(start: date, days: int, source: str) -> None:
    """Refuse, naming the limit, a replay before EARLIEST_START, past the embedded data's end, or
    on another source than the embedded sample."""
    from energy_platform.sources.sample import SampleSource

    if start < EARLIEST_START:
        raise ReplayError(f"replay starts on {EARLIEST_START} at the earliest (half a year of history before the first morning)")
    if days < 1:
        raise ReplayError(f"--days must be at least 1, got {days}")
    data_end = SampleSource().last_date()
    if start + timedelta(days=days - 2) > data_end:
        raise ReplayError(f"the embedded data ends {data_end}: the last replayed morning can be {data_end + timedelta(days=1)} "
                          f"(asked {start} + {days} days)")
    if source != "sample":
        raise ReplayError(f"replay runs on the embedded sample; ENERGY_PLATFORM_SOURCE is {source!r}")
