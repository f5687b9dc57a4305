"""The XM client against a real HTTP server on 127.0.0.1 (no mocks of httpx).

Good answers (chunking, parsing, hour mapping, missing hours), then each bad answer the live API
can give: transient errors retried with backoff, permanent ones refused at once with a message
that names the metric, the entity and the range.
"""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import polars as pl
import pytest

from energy_platform.sources import get_source
from energy_platform.sources.base import BASE_COLUMNS, SourceError
from energy_platform.sources.sample import SampleSource
from energy_platform.sources.xm import (
    METRICS,
    AporEner,
    PrecBolsNaci,
    XmApiError,
    XmClient,
    XmSource,
    chunk_range,
)
from energy_platform_tests.xm_server import FakeXm, closed_port_url, synthetic_prices

JAN1 = date(2024, 1, 1)


def days(start: date, n: int) -> list[date]:
    return [start + timedelta(days=i) for i in range(n)]


def client(url: str, **kw) -> XmClient:
    """Fast settings for tests: tiny backoff, short timeout."""
    kw.setdefault("timeout", 2.0)
    kw.setdefault("max_retries", 2)
    kw.setdefault("backoff_seconds", 0.001)
    return XmClient(url, **kw)


def hourly_body(day: str, values: dict) -> dict:
    return {"Items": [{"Date": day, "HourlyEntities": [{"Id": "Sistema", "Values": values}]}]}


def full_hours(**override) -> dict:
    values = {"code": "Sistema", **{f"Hour{h:02d}": "100.5" for h in range(1, 25)}}
    values.update(override)
    return values


@pytest.fixture
def xm(fake_xm: FakeXm) -> FakeXm:
    """The shared `fake_xm` fixture from conftest: a running FakeXm with no data."""
    return fake_xm


# -- good answers -----------------------------------------------------------------------------


def test_75_days_are_fetched_in_three_chunks_and_parsed(xm):
    prices = synthetic_prices(JAN1, JAN1 + timedelta(days=74))
    prices[date(2024, 2, 10)][5] = None  # XM's "" for a missing hour
    xm.set_prices(prices)

    with client(xm.url) as c:
        frame = c.fetch_hourly("PrecBolsNaci", JAN1, date(2024, 3, 15))

    assert xm.requested_ranges() == [
        (date(2024, 1, 1), date(2024, 1, 30)),
        (date(2024, 1, 31), date(2024, 2, 29)),
        (date(2024, 3, 1), date(2024, 3, 15)),
    ]
    assert [r.endpoint for r in xm.requests] == ["hourly"] * 3
    assert xm.requests[0].body == {
        "MetricId": "PrecBolsNaci",
        "Entity": "Sistema",
        "StartDate": "2024-01-01",
        "EndDate": "2024-01-30",
        "Filter": [],
    }
    assert frame.columns == ["ts", "date", "hour", "value"]
    assert frame.schema["ts"] == pl.Datetime("us")
    assert frame.schema["date"] == pl.Date
    assert frame.schema["hour"] == pl.Int32
    assert frame.schema["value"] == pl.Float64
    assert frame.height == 75 * 24
    assert frame["ts"].is_sorted() and frame["ts"].n_unique() == frame.height

    # Hour01 (00:00-01:00 local) is hour 0; Hour24 is hour 23.
    first = frame.row(0, named=True)
    assert first["ts"] == datetime(2024, 1, 1, 0) and first["hour"] == 0
    assert first["value"] == prices[JAN1][0]
    last = frame.row(-1, named=True)
    assert last["ts"] == datetime(2024, 3, 15, 23) and last["hour"] == 23
    assert last["value"] == prices[date(2024, 3, 15)][23]

    # The missing hour is kept as a null row, never filled.
    missing = frame.filter(pl.col("value").is_null())
    assert missing.select("date", "hour").rows() == [(date(2024, 2, 10), 5)]


def test_exact_values_and_hour_mapping_from_a_literal_answer(xm):
    values = full_hours(Hour01="124.68727", Hour02="", Hour24=" 99 ")
    xm.respond_with(hourly_body("2024-12-01", values))
    with client(xm.url) as c:
        frame = c.fetch_hourly("PrecBolsNaci", date(2024, 12, 1), date(2024, 12, 1))
    assert frame.height == 24
    assert frame["value"][0] == pytest.approx(124.68727)
    assert frame["value"][1] is None
    assert frame["value"][23] == 99.0
    assert frame["ts"][1] == datetime(2024, 12, 1, 1)


def test_daily_metric_by_name(xm):
    inflows = {d: 1e8 + i for i, d in enumerate(days(JAN1, 40))}
    inflows[date(2024, 1, 3)] = None
    xm.set_daily("AporEner", inflows)

    with client(xm.url) as c:
        frame = c.fetch("AporEner", JAN1, date(2024, 2, 9))

    assert [r.endpoint for r in xm.requests] == ["daily", "daily"]
    assert xm.requested_ranges() == [
        (JAN1, date(2024, 1, 30)),
        (date(2024, 1, 31), date(2024, 2, 9)),
    ]
    assert frame.columns == ["date", "value"]
    assert frame.schema["value"] == pl.Float64
    assert frame.height == 40
    assert frame["value"][0] == 1e8
    assert frame.filter(pl.col("date") == date(2024, 1, 3))["value"][0] is None


def test_metrics_know_their_granularity(xm):
    assert PrecBolsNaci.granularity == "hourly" and METRICS["DemaReal"].granularity == "hourly"
    assert AporEner.granularity == "daily" and METRICS["PorcVoluUtilDiar"].granularity == "daily"
    xm.set_hourly("DemaReal", {JAN1: [1.0] * 24})
    with client(xm.url) as c:
        assert c.fetch(METRICS["DemaReal"], JAN1, JAN1).height == 24
        with pytest.raises(ValueError, match="unknown XM metric"):
            c.fetch("NotAMetric", JAN1, JAN1)
        with pytest.raises(ValueError, match="AporEner is daily"):
            c.fetch_hourly("AporEner", JAN1, JAN1)
    assert [r.endpoint for r in xm.requests] == ["hourly"]


def test_chunk_range_edges():
    assert list(chunk_range(JAN1, JAN1)) == [(JAN1, JAN1)]
    assert list(chunk_range(JAN1, date(2024, 1, 30))) == [(JAN1, date(2024, 1, 30))]
    assert len(list(chunk_range(JAN1, date(2024, 1, 31)))) == 2
    with pytest.raises(ValueError):
        list(chunk_range(date(2024, 1, 2), JAN1))


def test_the_fake_refuses_more_than_30_days(xm):
    answer = httpx.post(
        f"{xm.url}/hourly",
        json={"MetricId": "PrecBolsNaci", "Entity": "Sistema", "StartDate": "2024-01-01",
              "EndDate": "2024-01-31", "Filter": []},
    )
    assert answer.status_code == 400 and "30 days" in answer.json()["Message"]


# -- transient failures: retried ------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 503, 429])
def test_transient_status_then_success_is_retried(xm, status):
    xm.set_prices({JAN1: [10.0] * 24})
    xm.fail_next(2, status=status)
    with client(xm.url, max_retries=2) as c:
        frame = c.fetch_hourly("PrecBolsNaci", JAN1, JAN1)
    assert frame.height == 24
    assert [r.status for r in xm.requests] == [status, status, 200]


def test_5xx_forever_gives_up_with_a_clear_error(xm):
    xm.fail_next(100, status=502, message="Bad gateway")
    started = time.monotonic()
    with client(xm.url, max_retries=3, backoff_seconds=0.01) as c, pytest.raises(XmApiError) as err:
        c.fetch_hourly("PrecBolsNaci", JAN1, date(2024, 1, 10))
    assert len(xm.requests) == 4  # 1 + max_retries, then stop
    assert time.monotonic() - started >= 0.01 + 0.02 + 0.04  # exponential backoff was applied
    text = str(err.value)
    for part in (
        "PrecBolsNaci", "Sistema", "2024-01-01", "2024-01-10", "4 attempts", "502", "Bad gateway"
    ):
        assert part in text
    assert isinstance(err.value, SourceError)
    assert err.value.metric == "PrecBolsNaci" and err.value.entity == "Sistema"
    assert (err.value.start, err.value.end) == (JAN1, date(2024, 1, 10))


def test_a_failing_later_chunk_names_that_chunk(xm):
    xm.set_prices(synthetic_prices(JAN1, date(2024, 2, 29)))
    xm.respond_with(hourly_body("2024-01-01", full_hours()))  # first chunk answers
    xm.fail_next(10)
    with (
        client(xm.url, max_retries=1) as c,
        pytest.raises(XmApiError, match=r"2024-01-31\.\.2024-02-29"),
    ):
        c.fetch_hourly("PrecBolsNaci", JAN1, date(2024, 2, 29))


def test_timeout_then_success_is_retried(xm):
    xm.set_prices({JAN1: [10.0] * 24})
    xm.stall_next(1.0)
    with client(xm.url, timeout=0.2, max_retries=1) as c:
        frame = c.fetch_hourly("PrecBolsNaci", JAN1, JAN1)
    assert frame.height == 24
    assert len(xm.requests) == 2


def test_timeout_forever_gives_up(xm):
    xm.stall_next(1.0, n=2)
    with client(xm.url, timeout=0.2, max_retries=1) as c, pytest.raises(XmApiError) as err:
        c.fetch_hourly("PrecBolsNaci", JAN1, JAN1)
    assert "timeout" in str(err.value) and "PrecBolsNaci" in str(err.value)
    assert len(xm.requests) == 2


def test_dropped_connection_then_success_is_retried(xm):
    xm.set_prices({JAN1: [10.0] * 24})
    xm.drop_next()
    with client(xm.url) as c:
        assert c.fetch_hourly("PrecBolsNaci", JAN1, JAN1).height == 24
    assert len(xm.requests) == 2


def test_connection_refused_gives_up_with_a_clear_error():
    with client(closed_port_url(), max_retries=2) as c, pytest.raises(XmApiError) as err:
        c.fetch_daily("AporEner", JAN1, date(2024, 1, 5))
    text = str(err.value)
    assert "connection error" in text and "3 attempts" in text
    assert "AporEner" in text and "2024-01-01..2024-01-05" in text


# -- bounded calls: a total deadline per attempt and per fetch, a size cap per answer -----------


def test_a_dripping_server_is_cut_at_the_request_deadline(xm):
    """One byte every 0.7 s: each read succeeds, so only a total deadline ends the attempt, and
    it ends at the deadline (1.0 s), not at the next byte (1.4 s): the socket is shut."""
    xm.drip_next(0.7, n=1)
    xm.set_prices({JAN1: [10.0] * 24})
    started = time.monotonic()
    with client(xm.url, timeout=5.0, request_deadline=1.0, max_retries=1) as c:
        frame = c.fetch_hourly("PrecBolsNaci", JAN1, JAN1)  # the retry gets a good answer
    first = time.monotonic() - started
    assert frame.height == 24 and len(xm.requests) == 2
    assert 1.0 <= first < 5.0, first  # the read timeout (5 s) never fires on a 0.7 s drip: the deadline did
    assert 2 <= xm.requests[0].bytes_sent <= 3  # cut at ~1.0 s, before the fourth byte (2.1 s)


def test_a_dripping_server_for_ever_ends_at_the_fetch_deadline_naming_it(xm):
    xm.drip_next(0.2, n=10)
    started = time.monotonic()
    with (client(xm.url, timeout=5.0, request_deadline=0.8, fetch_deadline=2.0, max_retries=4, backoff_seconds=0.05) as c,
          pytest.raises(XmApiError) as err):
        c.fetch_hourly("PrecBolsNaci", JAN1, JAN1)
    elapsed = time.monotonic() - started
    assert elapsed < 2.5, elapsed
    text = str(err.value)
    assert "fetch deadline of 2 s passed" in text and "0.8 s request deadline" in text and "bytes received" in text
    assert "PrecBolsNaci" in text and "2024-01-01..2024-01-01" in text


def test_the_request_deadline_also_bounds_a_silent_server(xm):
    """A stall before any header: the per-read timeout is clamped to the time left."""
    xm.stall_next(3.0)
    started = time.monotonic()
    with client(xm.url, timeout=30.0, request_deadline=0.5, max_retries=0) as c, pytest.raises(
        XmApiError, match=r"no complete answer within the 0.5 s request deadline \(0 bytes received\)"
    ):
        c.fetch_hourly("PrecBolsNaci", JAN1, JAN1)
    assert time.monotonic() - started < 1.0


def test_a_huge_declared_body_is_refused_unread(xm):
    xm.huge_next(400_000_000)
    with client(xm.url, max_response_bytes=1_000_000) as c, pytest.raises(XmApiError) as err:
        c.fetch_hourly("PrecBolsNaci", JAN1, JAN1)
    assert "answer of 400,000,000 bytes (Content-Length) exceeds the 1,000,000-byte cap; not read" in str(err.value)
    assert len(xm.requests) == 1  # not retried: the same answer would come back
    assert xm.requests[0].bytes_sent < 20_000_000


def test_a_huge_undeclared_body_is_cut_at_the_cap(xm):
    xm.huge_next(400_000_000, declare_length=False)
    started = time.monotonic()
    with client(xm.url, max_response_bytes=1_000_000) as c, pytest.raises(XmApiError) as err:
        c.fetch_hourly("PrecBolsNaci", JAN1, JAN1)
    assert time.monotonic() - started < 2.0
    assert "answer exceeds the 1,000,000-byte cap (stopped after 1,0" in str(err.value)
    assert len(xm.requests) == 1
    assert xm.requests[0].bytes_sent < 20_000_000  # the client stopped reading: not 400 MB


def test_the_default_bounds_are_set():
    c = XmClient("http://127.0.0.1:9")
    assert (c.request_deadline, c.max_response_bytes, c.fetch_deadline) == (60.0, 20_000_000, 1800.0)
    with pytest.raises(ValueError, match="must be > 0"):
        XmClient("http://127.0.0.1:9", request_deadline=0)
    c.close()


def test_a_negative_daily_value_is_refused(xm):
    xm.set_daily("AporEner", {JAN1: -3.0})
    with client(xm.url) as c, pytest.raises(XmApiError, match=r"Value: negative value '-3.0' \(below the floor 0\)"):
        c.fetch_daily("AporEner", JAN1, JAN1)


# -- permanent failures: refused at once ---------------------------------------------------------


def test_4xx_is_not_retried(xm):
    xm.fail_next(1, status=400, message="Invalid MetricId")
    with client(xm.url) as c, pytest.raises(XmApiError, match="HTTP 400: Invalid MetricId") as err:
        c.fetch_hourly("PrecBolsNaci", JAN1, JAN1)
    assert err.value.status == 400
    assert len(xm.requests) == 1


def test_malformed_json_is_refused(xm):
    xm.respond_with('{"Items": [{"Date": "2024-01-01", ')
    with client(xm.url) as c, pytest.raises(XmApiError, match="malformed JSON"):
        c.fetch_hourly("PrecBolsNaci", JAN1, JAN1)
    assert len(xm.requests) == 1


def test_message_error_is_raised_with_the_message(xm):
    xm.respond_with({"Message": "La métrica no existe"})
    with client(xm.url) as c, pytest.raises(XmApiError) as err:
        c.fetch_hourly("PrecBolsNaci", JAN1, JAN1)
    assert "La métrica no existe" in str(err.value) and "PrecBolsNaci" in str(err.value)
    assert len(xm.requests) == 1


def test_fake_answers_unknown_metric_with_a_message(xm):
    with client(xm.url) as c, pytest.raises(XmApiError, match="does not exist"):
        c.fetch_hourly("PrecBolsNacii", JAN1, JAN1)


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ({"Records": []}, "no 'Items' key"),
        ({"Items": {}}, "'Items' must be a list"),
        ([], "expected a JSON object"),
        (
            hourly_body("2024-01-01", full_hours(Hour25="1.0")),
            r"unexpected key\(s\) in Values \['Hour25'\]",
        ),
        (hourly_body("2024-01-01", full_hours(Hour00="1.0")), "Hour00"),
        (
            hourly_body("2024-01-01", full_hours(Value="1.0")),
            r"unexpected key\(s\) in Values \['Value'\]",
        ),
        (hourly_body("2024-01-01", full_hours(extra="x")), "extra"),
        ({"Items": [{"Date": "2024-01-01", "HourlyEntities": [], "Extra": 1}]}, "unexpected field"),
        ({"Items": [{"Date": "2024-01-01", "DailyEntities": []}]}, "unexpected field"),
        ({"Items": [{"Date": "01/01/2024", "HourlyEntities": []}]}, "unparsable Date"),
        (hourly_body("2023-12-31", full_hours()), "outside the requested range"),
        (hourly_body("2024-01-03", full_hours()), "outside the requested range"),
    ],
)
def test_unexpected_shapes_are_refused(xm, body, match):
    xm.respond_with(body)
    with client(xm.url) as c, pytest.raises(XmApiError, match=match) as err:
        c.fetch_hourly("PrecBolsNaci", JAN1, date(2024, 1, 2))
    assert "PrecBolsNaci" in str(err.value) and "2024-01-01..2024-01-02" in str(err.value)
    assert len(xm.requests) == 1


def test_duplicate_dates_are_refused(xm):
    item = hourly_body("2024-01-01", full_hours())["Items"][0]
    xm.respond_with({"Items": [item, item]})
    with client(xm.url) as c, pytest.raises(XmApiError, match="duplicate date"):
        c.fetch_hourly("PrecBolsNaci", JAN1, date(2024, 1, 2))


def test_several_entities_in_one_day_are_refused(xm):
    body = hourly_body("2024-01-01", full_hours())
    body["Items"][0]["HourlyEntities"] *= 2
    xm.respond_with(body)
    with client(xm.url) as c, pytest.raises(XmApiError, match="exactly one entity"):
        c.fetch_hourly("PrecBolsNaci", JAN1, JAN1)


@pytest.mark.parametrize("bad", ["12,5", "abc", "NaN", "inf", "-5", "-0.01"])
def test_non_numeric_value_names_date_hour_and_value(xm, bad):
    xm.respond_with(hourly_body("2024-01-02", full_hours(Hour06=bad)))
    with client(xm.url) as c, pytest.raises(XmApiError) as err:
        c.fetch_hourly("PrecBolsNaci", JAN1, date(2024, 1, 2))
    text = str(err.value)
    assert "2024-01-02" in text and "hour 5 (Hour06)" in text and repr(bad) in text


def test_non_numeric_daily_value_is_refused(xm):
    xm.respond_with(
        {
            "Items": [
                {
                    "Date": "2024-01-01",
                    "DailyEntities": [
                        {"Id": "Sistema", "Values": {"code": "Sistema", "Value": "n/a"}}
                    ],
                }
            ]
        }
    )
    with client(xm.url) as c, pytest.raises(XmApiError, match="non-numeric value 'n/a'"):
        c.fetch_daily("AporEner", JAN1, JAN1)


# -- no data -------------------------------------------------------------------------------------


def test_http_204_is_no_data_not_an_error(xm):
    xm.respond_with(204)
    with client(xm.url) as c:
        frame = c.fetch_hourly("PrecBolsNaci", JAN1, JAN1)
        daily = c.fetch_daily("AporEner", JAN1, JAN1)  # the fake has no AporEner data: 204 too
    assert frame.height == 0 and frame.columns == ["ts", "date", "hour", "value"]
    assert frame.schema["hour"] == pl.Int32 and frame.schema["value"] == pl.Float64
    assert daily.height == 0 and daily.columns == ["date", "value"]
    assert [r.status for r in xm.requests] == [204, 204]


def test_empty_chunk_between_full_chunks(xm):
    prices = synthetic_prices(JAN1, date(2024, 3, 15))
    for d in days(date(2024, 1, 31), 30):
        del prices[d]
    xm.set_prices(prices)
    xm.empty_as_204 = False  # the middle chunk answers {"Items": []}
    with client(xm.url) as c:
        frame = c.fetch_hourly("PrecBolsNaci", JAN1, date(2024, 3, 15))
    assert frame["date"].n_unique() == 45
    assert len(xm.requests) == 3


# -- the PriceSource --------------------------------------------------------------------------


def test_xm_source_gives_the_base_hourly_frame(xm):
    prices = synthetic_prices(date(2024, 12, 1), date(2024, 12, 31))
    prices[date(2024, 12, 5)][0] = None
    xm.set_prices(prices)
    source = XmSource(base_url=xm.url, today=date(2024, 12, 20))
    assert source.name == "xm"
    assert source.first_date() == date(2015, 1, 1)
    assert source.last_date() == date(2024, 12, 19)

    frame = source.hourly_prices(date(2024, 12, 1), date(2024, 12, 31))  # clipped to yesterday

    assert frame.columns == list(BASE_COLUMNS)
    assert frame.schema["price"] == pl.Float64 and frame.schema["hour"] == pl.Int32
    assert frame["date"].max() == date(2024, 12, 19) and frame.height == 19 * 24
    missing = frame.filter(pl.col("price").is_null()).select("date", "hour")
    assert missing.rows() == [(date(2024, 12, 5), 0)]
    assert xm.requested_ranges() == [(date(2024, 12, 1), date(2024, 12, 19))]
    # Nothing to ask for after yesterday: no request at all.
    assert source.hourly_prices(date(2024, 12, 20), date(2024, 12, 31)).height == 0
    assert len(xm.requests) == 1
    source.close()


def test_xm_source_round_trips_a_platform_frame(xm):
    """What ingestion tests do: serve the embedded sample through the fake, read it back."""
    sample = SampleSource().hourly_prices(date(2024, 6, 1), date(2024, 7, 15))
    xm.set_prices(sample)  # a platform hourly frame is accepted as-is
    source = XmSource(base_url=xm.url, today=date(2025, 1, 1))
    frame = source.hourly_prices(date(2024, 6, 1), date(2024, 7, 15))
    assert frame.equals(sample.select(BASE_COLUMNS))
    assert len(xm.requests) == 2 and xm.requested_days() == days(date(2024, 6, 1), 45)
    source.close()


def test_xm_source_last_date_is_yesterday_in_bogota():
    source = XmSource(base_url="http://127.0.0.1:9")
    assert source.last_date() == datetime.now(ZoneInfo("America/Bogota")).date() - timedelta(days=1)
    source.close()


def test_get_source_xm_uses_the_configured_url(xm, monkeypatch, tmp_path):
    from energy_platform.settings import get_settings

    monkeypatch.setenv("ENERGY_PLATFORM_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.setenv("ENERGY_PLATFORM_XM_URL", xm.url)
    get_settings.cache_clear()
    try:
        source = get_source("xm")
        assert isinstance(source, XmSource)
        assert source.client.base_url == xm.url
    finally:
        get_settings.cache_clear()
