"""Which days a drift check compares: the latest `days` against a reference just before them.

The reference is the champion's training period where there is one (what the model learned
from), clipped so it never overlaps the current window and capped at `reference_days`.
"""

from __future__ import annotations

from datetime import date, timedelta


def reference_window(
    current_end: date,
    days: int,
    reference_days: int,
    train_start: date | None = None,
    train_end: date | None = None,
) -> tuple[date, date]:
    current_start = current_end - timedelta(days=days - 1)
    end = current_start - timedelta(days=1)
    if train_end is not None:
        end = min(end, train_end)
    start = end - timedelta(days=reference_days - 1)
    if train_start is not None and train_start <= end:
        start = max(start, train_start)
    return start, end
