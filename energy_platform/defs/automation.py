"""The platform's automation conditions other than plain `eager()`, built from eager's core.

`eager()` also waits until no partition of any dep is missing and looks at the newest partition
only; both are wrong somewhere here (a platform forecasts recent days only, a failing operating
read must not stop the prices' forecast, a day's prices can complete late). Each condition says
which part it changes and why."""

from datetime import timedelta

import dagster as dg

A = dg.AutomationCondition
LATE_SCORING_DAYS = 14  # a forecast day not scored yet is scored when its prices complete, this long after


def updated_and_idle() -> dg.AutomationCondition:
    """`eager()`'s core: new, or a dep updated since it was last handled, and nothing in progress."""
    return (A.newly_missing() | A.any_deps_updated()).since_last_handled() & ~A.any_deps_in_progress() & ~A.in_progress()


def features_condition(operating: list[dg.AssetsDefinition]) -> dg.AutomationCondition:
    """Eager, as everything downstream of the prices, but not held back by a failing operating
    read: on a month's first run it left that partition missing, and `eager()` waited for it; on
    any other day the operating asset's blocking check never ran (its step failed), and "every
    dep's blocking checks passed" waited for it. Either held the features and every forecast back
    while prices were stored. The features read what operating data there is; an unknown value is
    a feature the model reads as missing. Not on rows a blocking check of raw_prices did not pass
    (even in a later run), nor on operating rows a blocking check ran on and failed."""
    operating_deps = dg.AssetSelection.assets(*operating)
    eager = (A.in_latest_time_window() & updated_and_idle()
             & ~A.any_deps_missing().ignore(operating_deps)).with_label("eager, operating data optional")
    bad_operating = A.any_deps_match(A.any_checks_match(A.check_failed(), blocking_only=True)).allow(operating_deps)
    return (eager & A.all_deps_blocking_checks_passed().ignore(operating_deps)
            & ~bad_operating.with_label("an operating blocking check failed"))


def accuracy_condition() -> dg.AutomationCondition:
    """`eager()` for the newest day, and for a day of the last LATE_SCORING_DAYS never scored
    (its prices were incomplete: an hour XM published late) once its deps update: `eager()`
    looks at the newest partition only, so such a day was never scored."""
    recent = A.in_latest_time_window() | (A.in_latest_time_window(timedelta(days=LATE_SCORING_DAYS)) & A.missing())
    return (updated_and_idle() & ~A.any_deps_missing() & recent).with_label(
        f"eager, and days of the last {LATE_SCORING_DAYS} not scored yet")


def after_any_update() -> dg.AutomationCondition:
    """Republished after any of its deps updates. Not `eager()`: that waits until no partition of
    its daily deps is missing, and a platform only forecasts and scores recent days (the demo 28,
    a live home from its first morning): the file was never republished by automation."""
    return updated_and_idle().with_label("after any update of its deps")
