"""raw_operating_daily, raw_hydrology, raw_enso: materialized for real into a DuckDB file, from
each source (the embedded sample, a CSV folder, XM + NOAA on a loopback server)."""

import gzip
import io
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from dagster._core.errors import DagsterAssetCheckFailedError

from energy_platform.defs import INGEST_JOB
from energy_platform.defs.operating import build_operating_checks
from energy_platform.defs.resources import SourceResource
from energy_platform.sources import SampleSource
from energy_platform.sources.base import SourceError
from energy_platform.warehouse.db import connect
from energy_platform_tests.platform_env import make_env
from energy_platform_tests.xm_server import ONI_PATH

# The shared files as the package embeds them (gzipped): the suite needs no ../shared beside it.
EMBEDDED = Path(__file__).resolve().parents[1] / "energy_platform" / "sources" / "data"


def _embedded_text(name: str) -> str:
    return gzip.decompress((EMBEDDED / f"colombia_{name}.gz").read_bytes()).decode()
ASSETS = ("raw_operating_daily", "raw_hydrology", "raw_enso")
TABLES = {"raw_operating_daily": "raw.operating_daily", "raw_hydrology": "raw.hydrology_monthly", "raw_enso": "raw.enso_oni"}


def _counts(warehouse: Path) -> dict[str, int]:
    with connect(warehouse, read_only=True) as conn:
        return {a: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for a, t in TABLES.items()}


def _materialize(env, partition_key: str, source: SourceResource | None = None, config: dict | None = None, checks: bool = True):
    defs = env.defs
    assets = [defs.get_assets_def(a) for a in ASSETS]
    resources = {**defs.resources, **({"source": source} if source else {})}
    result = dg.materialize(
        [*assets, *(build_operating_checks(*assets) if checks else [])], partition_key=partition_key, resources=resources, instance=env.instance,
        run_config={"ops": {a: {"config": config} for a in ("raw_operating_daily", "raw_hydrology")}} if config else None,
    )
    assert result.success
    return result


def _meta(result, asset: str) -> dict:
    return {k: v.value for k, v in result.asset_materializations_for_node(asset)[-1].metadata.items()}


def _checks(result) -> dict[str, bool]:
    return {c.check_name: c.passed for c in result.get_asset_check_evaluations()}


def test_the_sample_as_of_a_replay_day_twice_leaves_one_copy(tmp_path):
    env = make_env(tmp_path)
    assert env.defs.resolve_assets_def("raw_operating_daily").partitions_def == env.defs.resolve_assets_def("raw_prices").partitions_def
    ingest = env.defs.resolve_job_def(INGEST_JOB).asset_layer.selected_asset_keys
    assert {k.to_user_string() for k in ingest} == {"raw_prices", *ASSETS}  # `make demo` loads them
    source = SourceResource(spec="sample", as_of="2016-01-20")
    first = _materialize(env, "2016-01-01", source)
    # Days to as_of; months ended by then; ONI usable on 2016-01-21 (centre months to 2015-11).
    expected = {"raw_operating_daily": 20, "raw_hydrology": 12, "raw_enso": 65 * 12 + 11}
    assert _counts(env.warehouse) == expected
    assert _meta(first, "raw_operating_daily")["window"] == "2016-01-01..2016-01-31"
    assert "| date" in _meta(first, "raw_operating_daily")["preview (latest written)"]
    checks = _checks(first)
    assert len(checks) == 15 and all(checks.values()), checks  # no prices stored: nothing to be current against

    again = _materialize(env, "2016-01-01", source, checks=False)
    assert _counts(env.warehouse) == expected
    assert _meta(again, "raw_operating_daily")["dagster/row_count"] == 0  # nothing missing, nothing fetched
    assert _meta(again, "raw_hydrology")["dagster/row_count"] == 3  # a file's recent months are read again (revisions)
    assert _meta(again, "raw_enso")["dagster/row_count"] == expected["raw_enso"]  # ONI is re-read whole (revisions)

    full = _materialize(env, "2016-01-01", source, config={"full_refresh": True}, checks=False)
    assert _meta(full, "raw_operating_daily")["dagster/row_count"] == 20
    assert _counts(env.warehouse) == expected


def test_the_missing_day_of_the_source_stays_missing_and_warns(tmp_path):
    env = make_env(tmp_path)
    _materialize(env, "2015-12-01", SourceResource(spec="sample", as_of="2016-01-02"), checks=False)
    with connect(env.warehouse, read_only=True) as conn:
        days = [r[0] for r in conn.execute("SELECT date FROM raw.operating_daily ORDER BY date").fetchall()]
    assert len(days) == 30 and date(2015, 12, 31) not in days
    # The gap is only a gap once a later day is stored: load January's first days too.
    result = _materialize(env, "2016-01-01", SourceResource(spec="sample", as_of="2016-01-02"))
    evaluation = next(c for c in result.get_asset_check_evaluations() if c.check_name == "operating_days_missing_periods")
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert evaluation.metadata["examples"].value == ["2015-12-31"]


def _write_market(folder: Path, with_operating: bool = True) -> Path:
    """A CSV price file for Jan-Feb 2016 and, beside it, the operating files in the shared format."""
    folder.mkdir(parents=True)
    prices = SampleSource().hourly_prices(date(2016, 1, 1), date(2016, 2, 29))
    path = folder / "prices.csv"
    prices.select(pl.col("ts").dt.strftime("%Y-%m-%d %H:%M:%S").alias("timestamp"), "price").write_csv(path)
    if with_operating:
        daily = pl.read_csv(io.StringIO(_embedded_text("operating_daily.csv")), infer_schema=False)
        daily.filter(pl.col("date") < "2016-03-01").write_csv(folder / "operating_daily.csv")
        for name in ("hydrology_monthly.csv", "oni_monthly.csv"):
            (folder / name).write_text(_embedded_text(name))
    return path


def test_a_csv_folder_source(tmp_path):
    prices = _write_market(tmp_path / "market")
    env = make_env(tmp_path / "home", source=f"csv:{prices}")
    result = _materialize(env, "2016-02-01", checks=False)
    assert _counts(env.warehouse) == {"raw_operating_daily": 29, "raw_hydrology": 120, "raw_enso": 900}
    assert _meta(result, "raw_operating_daily")["source"] == f"csv:{prices}"
    with connect(env.warehouse, read_only=True) as conn:
        assert conn.execute("SELECT DISTINCT source FROM raw.operating_daily").fetchall() == [(f"csv:{tmp_path / 'market'}",)]


def test_a_bad_csv_file_is_refused_with_file_line_and_problem_and_nothing_is_written(tmp_path):
    prices = _write_market(tmp_path / "market")
    bad = tmp_path / "market" / "operating_daily.csv"
    lines = bad.read_text().splitlines()
    lines[40] = lines[40].split(",", 1)[0] + ",-12.5," + lines[40].split(",", 2)[2]  # a negative demand
    bad.write_text("\n".join(lines) + "\n")
    env = make_env(tmp_path / "home", source=f"csv:{prices}")
    with pytest.raises(SourceError, match=rf"{bad}: line 41: column 'demand_gwh': value -12\.5 outside 10\.\.1000"):
        _materialize(env, "2016-02-01", checks=False)
    assert _counts(env.warehouse)["raw_operating_daily"] == 0


def test_a_csv_price_file_without_operating_files_gives_empty_assets_with_a_note(tmp_path):
    prices = _write_market(tmp_path / "market", with_operating=False)
    env = make_env(tmp_path / "home", source=f"csv:{prices}")
    result = _materialize(env, "2016-01-01")
    assert _counts(env.warehouse) == {a: 0 for a in ASSETS}
    for asset, name in zip(ASSETS, ("operating_daily.csv", "hydrology_monthly.csv", "oni_monthly.csv"), strict=True):
        meta = _meta(result, asset)
        assert meta["dagster/row_count"] == 0 and f"no {name}" in meta["note"]
    assert all(_checks(result).values())


ONI_TEXT = " SEAS  YR   TOTAL   ANOM\n" + "".join(
    f"  {season} 2015  27.00  {0.5 + i / 10:.2f}\n"
    for i, season in enumerate(("DJF", "JFM", "FMA", "MAM", "AMJ", "MJJ", "JJA", "JAS", "ASO", "SON", "OND", "NDJ"))
)


def _serve_operating(fake_xm, month: date, days: int, porc_apor: float = 0.92):
    hourly_kwh = [8_000_000.0 + 100_000 * h for h in range(24)]  # 8.0-10.3 GWh per hour
    demand = {month + timedelta(days=i): list(hourly_kwh) for i in range(days) if i != 9}  # day 10 missing
    if days > 4:
        demand[month + timedelta(days=4)][3] = None  # one hour missing on day 5: no demand total that day
    generation = {day: [v * 1.01 for v in hourly_kwh] for day in [month + timedelta(days=i) for i in range(days) if i != 9]}
    fake_xm.set_hourly("DemaReal", demand).set_hourly("Gene", generation)
    previous = (month - timedelta(days=1)).replace(day=1)
    level_days = [previous + timedelta(days=i) for i in range((month - previous).days)] + [month + timedelta(days=i) for i in range(20)]
    fake_xm.set_daily("PorcVoluUtilDiar", {d: 0.6 for d in level_days})
    fake_xm.set_daily("PorcApor", {d: porc_apor for d in level_days})
    fake_xm.serve_text(ONI_PATH, ONI_TEXT)


def test_the_xm_source_on_a_loopback_server(tmp_path, fake_xm):
    month = date(2016, 1, 1)
    _serve_operating(fake_xm, month, days=31)
    env = make_env(tmp_path, source="xm", ENERGY_PLATFORM_XM_URL=fake_xm.url,
                   ENERGY_PLATFORM_ONI_URL=fake_xm.text_url())
    result = _materialize(env, month.isoformat())
    assert _counts(env.warehouse) == {"raw_operating_daily": 30, "raw_hydrology": 2, "raw_enso": 12}
    with connect(env.warehouse, read_only=True) as conn:
        day1 = conn.execute("SELECT demand_gwh, generation_gwh FROM raw.operating_daily WHERE date = '2016-01-01'").fetchone()
        day5 = conn.execute("SELECT demand_gwh, generation_gwh FROM raw.operating_daily WHERE date = '2016-01-05'").fetchone()
        hydro = conn.execute("SELECT month, reservoir_useful_volume_pct, inflows_pct_of_historical_mean, days_observed "
                             "FROM raw.hydrology_monthly ORDER BY month").fetchall()
    assert day1[0] == pytest.approx(sum(8.0 + 0.1 * h for h in range(24)))  # kWh summed to GWh: 219.6
    assert day1[1] == pytest.approx(day1[0] * 1.01)
    assert day5[0] is None and day5[1] is not None  # an incomplete day gets no total, never a partial sum
    assert hydro == [(date(2015, 12, 1), pytest.approx(60.0), pytest.approx(92.0), 31),
                     (date(2016, 1, 1), pytest.approx(60.0), pytest.approx(92.0), 20)]
    assert {r.metric for r in fake_xm.requests if r.method == "POST"} == {"DemaReal", "Gene", "PorcVoluUtilDiar", "PorcApor"}
    assert sorted(set(fake_xm.requested_days("DemaReal"))) == [month + timedelta(days=i) for i in range(31)]
    checks = _checks(result)
    assert not checks["operating_days_values_present"] and not checks["operating_days_missing_periods"]  # WARN
    assert not checks["hydrology_months_missing_periods"]  # January averaged over 20 of 31 days: WARN
    assert checks["operating_days_unique"] and checks["operating_days_within_plausible_ranges"]

    fake_xm.clear_requests()
    _materialize(env, month.isoformat(), checks=False)
    # Only the still-incomplete days are asked again (Jan 5 and Jan 10), not the whole month.
    assert sorted(set(fake_xm.requested_days("DemaReal"))) == [month + timedelta(days=i) for i in range(4, 10)]


def test_xm_percentages_in_the_wrong_unit_are_refused(tmp_path, fake_xm):
    _serve_operating(fake_xm, date(2016, 1, 1), days=3, porc_apor=92.0)  # percent where XM sends a fraction
    env = make_env(tmp_path, source="xm", ENERGY_PLATFORM_XM_URL=fake_xm.url,
                   ENERGY_PLATFORM_ONI_URL=fake_xm.text_url())
    with pytest.raises(SourceError, match=r"XM hydrology month 2015-12-01: inflows_pct_of_historical_mean: value 9200\.0 outside"):
        _materialize(env, "2016-01-01", checks=False)
    assert _counts(env.warehouse)["raw_hydrology"] == 0


def test_an_impossible_stored_value_is_a_blocking_error(tmp_path):
    env = make_env(tmp_path)
    source = SourceResource(spec="sample", as_of="2016-01-05")
    _materialize(env, "2016-01-01", source, checks=False)
    with connect(env.warehouse) as conn:  # written behind the readers' back: only the checks can see it
        conn.execute("INSERT INTO raw.operating_daily VALUES ('2014-12-31', -5, 150, NULL, NULL, NULL, 'x', now())")
    with pytest.raises(DagsterAssetCheckFailedError, match="1 blocking asset check failed with ERROR severity") as info:
        _materialize(env, "2016-01-01", source)
    assert "operating_days_within_plausible_ranges" in str(info.value)


def test_a_failed_operating_read_on_a_month_s_first_run_does_not_hold_the_features_back(tmp_path):
    """Live source, 2025-02-02: the morning run stores the prices of 02-01 (the first of February's
    partition) but XM's operating read fails, so raw_operating_daily[2025-02] was never
    materialized. `eager()` waited for it: no features, no forecast, for as long as the outage
    lasted (mid-month the same failure held nothing back). The features go on without it."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    import dagster as dg

    env = make_env(tmp_path, source="xm")
    now = datetime(2025, 2, 2, 6, 30, tzinfo=ZoneInfo("America/Bogota"))
    months = [date(y, m, 1).isoformat() for y in range(2015, 2026) for m in range(1, 13) if date(y, m, 1) <= date(2025, 1, 1)]
    with dg.instance_for_test() as instance:
        def mat(key: str, partition: str | None = None) -> None:
            instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=key, partition=partition))

        for month in months:
            mat("raw_prices", month)
            mat("raw_operating_daily", month)
        for key in ("raw_hydrology", "raw_enso", "features"):
            mat(key)
        first = dg.evaluate_automation_conditions(defs=env.defs, instance=instance, evaluation_time=now)
        mat("raw_prices", "2025-02-01")  # the operating read of the same run failed
        result = dg.evaluate_automation_conditions(defs=env.defs, instance=instance, evaluation_time=now, cursor=first.cursor)
    # the condition's eager half (the other: raw_prices' blocking checks passed, not reported here)
    [features] = [r for r in result.results if r.key == dg.AssetKey("features")]
    [eager] = [c for c in features.child_results if (c.condition.get_label() or "").startswith("eager")]
    assert eager.true_subset.size == 1


def test_an_operating_read_failing_mid_month_does_not_hold_the_features_back(tmp_path):
    """A daemon run (steps go on after one fails) stores a month's prices while the operating read
    fails: the operating asset's blocking check then never ran, and the features' condition, which
    asked every dep's blocking checks to have passed, held the features and every forecast back
    until the read recovered. Only a check that ran and failed holds them back now."""
    from datetime import datetime

    from energy_platform.defs import FEATURES_JOB
    from energy_platform.orchestration import run_job

    op = tmp_path / "op"
    op.mkdir()
    for name in ("operating_daily.csv", "hydrology_monthly.csv", "oni_monthly.csv"):
        (op / name).write_text(_embedded_text(name))
    prices = tmp_path / "prices.csv"  # the embedded prices to 2016-02: every month partition materialized below
    SampleSource().frame.filter(pl.col("date") < date(2016, 3, 1)).select(
        pl.col("ts").dt.strftime("%Y-%m-%d %H:%M:%S").alias("Date"), pl.col("price").alias("Price")).write_csv(prices)
    env = make_env(tmp_path / "home", source=f"csv:{prices}", ENERGY_PLATFORM_OPERATING_DIR=str(op))
    run_job(env.defs, INGEST_JOB, env.instance, partition_range=("2015-01-01", "2016-02-01"))
    run_job(env.defs, FEATURES_JOB, env.instance)
    now = datetime(2016, 3, 2, 7, 0)
    first = dg.evaluate_automation_conditions(defs=env.defs, instance=env.instance, evaluation_time=now)
    (op / "operating_daily.csv").write_text(_embedded_text("operating_daily.csv") + "2016-03-01,not a number,1,1,1,1\n")
    job = env.defs.resolve_job_def(INGEST_JOB)
    result = job.execute_in_process(instance=env.instance, partition_key="2016-02-01", raise_on_error=False)  # as the daemon runs it
    assert not result.success and result.asset_materializations_for_node("raw_prices")
    after = dg.evaluate_automation_conditions(defs=env.defs, instance=env.instance, evaluation_time=now, cursor=first.cursor)
    [features] = [r for r in after.results if r.key == dg.AssetKey("features")]
    assert features.true_subset.size == 1


def test_an_oni_answer_without_a_season_says_so(tmp_path):
    """Helper J (session 19): a header-only NOAA answer got "no new rows: nothing was missing", but
    ONI is read whole each time; the stored series stays and the note says what came."""
    oni = tmp_path / "operating" / "oni_monthly.csv"
    oni.parent.mkdir()
    oni.write_text("month,oni,season\n")
    env = make_env(tmp_path / "home")
    result = _materialize(env, "2016-01-01", SourceResource(spec="sample", operating_dir=str(oni.parent)), checks=False)
    meta = _meta(result, "raw_enso")
    assert meta["dagster/row_count"] == 0 and meta["note"].startswith("the source answered no season at all"), meta
