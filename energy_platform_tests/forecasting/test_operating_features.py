"""Operating features are point-in-time: nothing published after the cutoff's morning leaks in."""

from datetime import date, timedelta

import polars as pl
import pytest

from energy_platform.forecasting.operating_features import (
    FEATURE_SCHEMA,
    format_groups,
    operating_features,
    operating_features_asof,
    parse_groups,
)
from energy_platform.sources.operating import get_operating_source
from energy_platform.sources.publication import daily_known_on, hydrology_known_on, oni_known_on

# Around the boundaries: month ends, the ONI 14th/15th switch, the missing 2015-12-31, a leap day.
CUTOFFS = [
    date(2015, 12, 30), date(2015, 12, 31), date(2016, 1, 1), date(2016, 1, 13), date(2016, 1, 14),
    date(2016, 1, 31), date(2016, 2, 29), date(2020, 6, 15), date(2024, 12, 30),
]


@pytest.fixture(scope="module")
def frames():
    source = get_operating_source("sample")
    return (
        source.operating_daily(date(2015, 1, 1), date(2024, 12, 31)),
        source.hydrology_monthly(date(2015, 1, 1), date(2024, 12, 1)),
        source.oni_monthly(),
    )


def _perturb_after(frame: pl.DataFrame, known_on: pl.Expr, decision: date, values: list[str]) -> pl.DataFrame:
    """Every value not yet published on `decision` morning scrambled, and a fake future row added."""
    late = known_on > decision
    changed = frame.with_columns(
        [pl.when(late).then(pl.col(c) * -7.0 + 1234.5).otherwise(pl.col(c)).alias(c) for c in values]
    )
    key = frame.columns[0]
    future = changed.tail(1).with_columns(pl.col(key) + pl.duration(days=4000))
    return pl.concat([changed, future])


@pytest.mark.parametrize("cutoff", CUTOFFS)
def test_perturbing_everything_published_after_the_cutoff_changes_nothing(frames, cutoff):
    daily, hydrology, oni = frames
    decision = cutoff + timedelta(days=1)
    expected = operating_features_asof(daily, hydrology, oni, cutoff)
    perturbed = operating_features_asof(
        _perturb_after(daily, daily_known_on("date"), decision, ["demand_gwh", "generation_gwh"]),
        _perturb_after(hydrology, hydrology_known_on("month"), decision, ["reservoir_useful_volume_pct", "inflows_pct_of_historical_mean"]),
        _perturb_after(oni, oni_known_on("month"), decision, ["oni"]),
        cutoff,
    )
    assert perturbed == expected
    assert set(expected) == set(FEATURE_SCHEMA)


@pytest.mark.parametrize("cutoff", CUTOFFS)
def test_the_boundary_is_tight_what_was_published_that_morning_is_used(frames, cutoff):
    """Scrambling also what was published on the decision morning changes the features that use it."""
    daily, hydrology, oni = frames
    base = operating_features_asof(daily, hydrology, oni, cutoff)
    groups = {
        "daily": (daily_known_on("date"), ["demand_gwh", "generation_gwh"], "demand_gwh_mean7"),
        "hydrology": (hydrology_known_on("month"), ["reservoir_useful_volume_pct", "inflows_pct_of_historical_mean"],
                      "reservoir_useful_volume_pct"),
        "oni": (oni_known_on("month"), ["oni"], "oni"),
    }
    tested = 0
    for name, (known_on, values, feature) in groups.items():
        frames_now = dict(zip(groups, (daily, hydrology, oni), strict=True))
        if frames_now[name].filter(known_on == cutoff + timedelta(days=1)).is_empty():
            continue  # nothing of this series was published that morning
        frames_now[name] = _perturb_after(frames_now[name], known_on, cutoff, values)  # known_on > cutoff
        assert operating_features_asof(*frames_now.values(), cutoff)[feature] != base[feature], (name, cutoff)
        tested += 1
    assert tested >= 1


def test_the_features_on_known_days(frames):
    daily, hydrology, oni = frames
    row = operating_features_asof(daily, hydrology, oni, date(2016, 1, 14))
    jan14 = daily.filter(pl.col("date") == date(2016, 1, 14))
    assert row["demand_gwh_last"] == jan14["demand_gwh"].item()
    week = daily.filter(pl.col("date").is_between(date(2016, 1, 8), date(2016, 1, 14)))
    assert row["demand_gwh_mean7"] == pytest.approx(week["demand_gwh"].mean())
    assert row["operating_days_7"] == 7
    assert row["hydrology_month"] == date(2015, 12, 1)  # December is complete on Jan 1st
    assert row["oni_month"] == date(2015, 11, 1)  # usable from 2016-01-15: the forecast of that morning
    assert operating_features_asof(daily, hydrology, oni, date(2016, 1, 13))["oni_month"] == date(2015, 10, 1)


def test_a_missing_day_stays_missing(frames):
    daily, hydrology, oni = frames
    row = operating_features_asof(daily, hydrology, oni, date(2015, 12, 31))  # not in the source
    assert row["demand_gwh_last"] is None and row["generation_gwh_last"] is None
    assert row["operating_days_7"] == 6
    week = daily.filter(pl.col("date").is_between(date(2015, 12, 25), date(2015, 12, 30)))
    assert row["demand_gwh_mean7"] == pytest.approx(week["demand_gwh"].mean())


def test_a_monthly_value_stands_while_one_publication_is_late_then_is_unknown(frames):
    """A source that stops after June 2024: its June values stand in while one newer month is
    overdue, then read as unknown (value and month null), never as a frozen reservoir level or
    ONI. Hydrology's July was due on 08-01, August on 09-01; ONI's July on 09-15, August on 10-15."""
    daily, hydrology, oni = frames
    june = date(2024, 6, 1)
    stopped = hydrology.filter(pl.col("month") <= june), oni.filter(pl.col("month") <= june)
    cutoffs = [date(2024, 8, 30), date(2024, 8, 31), date(2024, 10, 13), date(2024, 10, 14)]
    rows = operating_features(daily, *stopped, cutoffs)
    assert rows["hydrology_month"].to_list() == [june, None, None, None]
    assert rows["reservoir_useful_volume_pct"].is_null().to_list() == [False, True, True, True]
    assert rows["inflows_pct_of_historical_mean"].is_null().to_list() == [False, True, True, True]
    assert rows["oni_month"].to_list() == [june, june, june, None]
    assert rows["oni"].is_null().to_list() == [False, False, False, True]
    full = operating_features(daily, hydrology, oni, cutoffs)  # the same mornings with the data there
    assert full["hydrology_month"].to_list() == [date(2024, 7, 1), date(2024, 8, 1), date(2024, 9, 1), date(2024, 9, 1)]
    assert full["oni_month"].to_list() == [june, june, date(2024, 7, 1), date(2024, 8, 1)]


def test_vectorised_equals_one_cutoff_at_a_time_and_empty_frames_give_nulls(frames):
    daily, hydrology, oni = frames
    many = operating_features(daily, hydrology, oni, CUTOFFS)
    assert many["cutoff_date"].to_list() == CUTOFFS
    for cutoff, row in zip(CUTOFFS, many.iter_rows(named=True), strict=True):
        assert row == operating_features_asof(daily, hydrology, oni, cutoff)
    empty = operating_features(daily.clear(), hydrology.clear(), oni.clear(), [date(2016, 1, 1)])
    assert empty["operating_days_7"].to_list() == [0] and empty["oni"].to_list() == [None]


def test_all_ten_years_of_cutoffs_are_fast(frames):
    import time

    daily, hydrology, oni = frames
    cutoffs = [date(2015, 1, 1) + timedelta(days=i) for i in range(3653)]
    started = time.perf_counter()
    out = operating_features(daily, hydrology, oni, cutoffs)
    assert out.height == 3653 and time.perf_counter() - started < 2.0


def test_the_groups_label_of_tags_and_metadata_parses_back():
    """What a version's tag says ('none' included) reads back as the groups it was written from."""
    for groups in [(), ("enso",), ("hydrology", "enso"), ("demand", "hydrology", "enso")]:
        assert parse_groups(format_groups(groups)) == groups
    assert format_groups(()) == "none"
