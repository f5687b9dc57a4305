"""The live source: XM's public API (`servapibi.xm.com.co`), read with a small client of our own.

Why not the official `pydataxm` package: importing it applies `nest_asyncio` and silences all
warnings process-wide, constructing its reader makes a network call, and it leaves hourly values
as strings. This client is a few hundred lines of httpx that we can read, test against a local
server and trust: 30-day chunking (the API's limit), bounded retries with exponential backoff on
transient failures only, and strict parsing that refuses any answer it does not understand,
because a silently shifted hour or a comma-decimal read as garbage would poison training data
without anyone noticing.

Time: Colombia has no daylight saving; `Hour01` is 00:00-01:00 local time, stored as hour 0 on a
naive local timestamp.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import httpx
import polars as pl

from energy_platform.sources.base import SourceError, with_calendar_columns

log = logging.getLogger(__name__)

BOGOTA = ZoneInfo("America/Bogota")
HISTORY_START = date(2015, 1, 1)
"""The platform's history start: the embedded sample and backfills begin here."""

MAX_DAYS_PER_REQUEST = 30
"""XM answers at most 30 days per hourly or daily request."""

DEFAULT_ENTITY = "Sistema"
HOUR_KEYS = tuple(f"Hour{h:02d}" for h in range(1, 25))
_HOUR_INDEX = {key: i for i, key in enumerate(HOUR_KEYS)}  # Hour01 -> 0 ... Hour24 -> 23
_RETRY_STATUS = {429}  # plus every 5xx
_MAX_BACKOFF_SECONDS = 60.0
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")

Granularity = Literal["hourly", "daily"]


@dataclass(frozen=True)
class Metric:
    """An XM metric we know how to read: its id, its endpoint and what it measures."""

    id: str
    granularity: Granularity
    description: str
    unit: str


PrecBolsNaci = Metric("PrecBolsNaci", "hourly", "national wholesale (bolsa) price", "COP/kWh")
DemaReal = Metric("DemaReal", "hourly", "real demand", "kWh")
AporEner = Metric("AporEner", "daily", "hydro inflows, energy", "kWh")
PorcVoluUtilDiar = Metric("PorcVoluUtilDiar", "daily", "useful reservoir volume", "fraction")

PRICE = PrecBolsNaci
METRICS: dict[str, Metric] = {m.id: m for m in (PrecBolsNaci, DemaReal, AporEner, PorcVoluUtilDiar)}

HOURLY_SCHEMA = {"ts": pl.Datetime("us"), "date": pl.Date, "hour": pl.Int32, "value": pl.Float64}
DAILY_SCHEMA = {"date": pl.Date, "value": pl.Float64}


class XmApiError(SourceError):
    """XM could not be read, or answered something we refuse to store.

    The message always names the metric, the entity and the date range of the request, then the
    cause, so a failed ingestion run says exactly what to re-run.
    """

    def __init__(
        self,
        problem: str,
        *,
        metric: str,
        entity: str,
        start: date,
        end: date,
        status: int | None = None,
    ):
        self.problem = problem
        self.metric = metric
        self.entity = entity
        self.start = start
        self.end = end
        self.status = status
        super().__init__(f"XM {metric} (entity {entity}) {start}..{end}: {problem}")


class _Transient(Exception):
    """A failure worth retrying (timeout, connection error, 5xx, 429)."""


def _resolve(metric: str | Metric) -> Metric:
    if isinstance(metric, Metric):
        return metric
    try:
        return METRICS[metric]
    except KeyError:
        raise ValueError(f"unknown XM metric {metric!r}; known: {', '.join(METRICS)}") from None


def _metric_id(metric: str | Metric, granularity: Granularity) -> str:
    """The id to send; a known metric asked at the wrong granularity is a caller's bug."""
    metric_id = metric.id if isinstance(metric, Metric) else metric
    known = METRICS.get(metric_id)
    if known is not None and known.granularity != granularity:
        raise ValueError(f"XM metric {metric_id} is {known.granularity}, not {granularity}")
    return metric_id


def chunk_range(
    start: date, end: date, days: int = MAX_DAYS_PER_REQUEST
) -> Iterator[tuple[date, date]]:
    """Split [start, end] (inclusive) into consecutive windows of at most `days` days."""
    if start > end:
        raise ValueError(f"start {start} is after end {end}")
    while start <= end:
        chunk_end = min(start + timedelta(days=days - 1), end)
        yield start, chunk_end
        start = chunk_end + timedelta(days=1)


class XmClient:
    """Reads XM metrics over HTTP into Polars frames.

    `max_retries` is the number of retries after the first attempt, for timeouts, connection
    errors, HTTP 5xx and 429 only; the wait doubles from `backoff_seconds`. Anything else (4xx,
    an error `Message`, a malformed answer) fails at once: retrying cannot fix it. `transport` is
    passed to httpx (tests, proxies).
    """

    def __init__(
        self,
        base_url: str,
        timeout: float = 30.0,
        max_retries: int = 4,
        backoff_seconds: float = 1.0,
        transport: httpx.BaseTransport | None = None,
    ):
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_seconds = backoff_seconds
        self._http = httpx.Client(
            timeout=timeout,
            transport=transport,
            headers={"Accept": "application/json", "User-Agent": "energy_platform"},
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> XmClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- public reads -------------------------------------------------------------------------

    def fetch(
        self, metric: str | Metric, start: date, end: date, entity: str = DEFAULT_ENTITY
    ) -> pl.DataFrame:
        """Fetch a known metric by name, from the endpoint of its granularity."""
        m = _resolve(metric)
        if m.granularity == "hourly":
            return self.fetch_hourly(m, start, end, entity)
        return self.fetch_daily(m, start, end, entity)

    def fetch_hourly(
        self, metric: str | Metric, start: date, end: date, entity: str = DEFAULT_ENTITY
    ) -> pl.DataFrame:
        """`ts`, `date`, `hour` (Int32, 0-23), `value` (Float64, null where XM had ``""``).

        One row per hour of every day XM returned; days XM did not return are absent (the
        caller decides whether a gap is acceptable), and missing hours are never filled.
        """
        metric_id = _metric_id(metric, "hourly")
        dates: list[date] = []
        hours: list[int] = []
        values: list[float | None] = []
        for chunk_start, chunk_end in chunk_range(start, end):
            payload = self._request("hourly", metric_id, entity, chunk_start, chunk_end)
            parsed = _parse(payload, "hourly", metric_id, entity, chunk_start, chunk_end)
            for day, day_values in parsed:
                dates.extend([day] * 24)
                hours.extend(range(24))
                values.extend(day_values)
        frame = pl.DataFrame(
            {"date": dates, "hour": hours, "value": values},
            schema={"date": pl.Date, "hour": pl.Int32, "value": pl.Float64},
        )
        frame = frame.with_columns(
            (pl.col("date").cast(pl.Datetime("us")) + pl.duration(hours=pl.col("hour"))).alias("ts")
        )
        return frame.select(*HOURLY_SCHEMA).sort("ts")

    def fetch_daily(
        self, metric: str | Metric, start: date, end: date, entity: str = DEFAULT_ENTITY
    ) -> pl.DataFrame:
        """`date`, `value` (Float64, null where XM had ``""``), one row per day XM returned."""
        metric_id = _metric_id(metric, "daily")
        rows: list[tuple[date, float | None]] = []
        for chunk_start, chunk_end in chunk_range(start, end):
            payload = self._request("daily", metric_id, entity, chunk_start, chunk_end)
            rows.extend(_parse(payload, "daily", metric_id, entity, chunk_start, chunk_end))
        frame = pl.DataFrame(rows, schema=DAILY_SCHEMA, orient="row")
        return frame.sort("date")

    # -- HTTP ---------------------------------------------------------------------------------

    def _request(
        self, endpoint: str, metric: str, entity: str, start: date, end: date
    ) -> dict[str, Any] | None:
        """POST one chunk, with retries; the decoded JSON object, or None for HTTP 204."""
        body = {
            "MetricId": metric,
            "Entity": entity,
            "StartDate": start.isoformat(),
            "EndDate": end.isoformat(),
            "Filter": [],
        }
        url = f"{self.base_url}/{endpoint}"
        attempts = self.max_retries + 1
        last_cause = "no attempt made"
        for attempt in range(attempts):
            try:
                return self._attempt(url, body, metric, entity, start, end)
            except _Transient as exc:
                last_cause = str(exc)
            if attempt + 1 < attempts:
                wait = min(self.backoff_seconds * 2**attempt, _MAX_BACKOFF_SECONDS)
                log.warning(
                    "XM %s %s..%s attempt %d/%d failed (%s); retrying in %.3gs",
                    metric, start, end, attempt + 1, attempts, last_cause, wait,
                )
                time.sleep(wait)
        raise XmApiError(
            f"gave up after {attempts} attempts; last error: {last_cause}",
            metric=metric, entity=entity, start=start, end=end,
        )

    def _attempt(
        self, url: str, body: dict, metric: str, entity: str, start: date, end: date
    ) -> dict[str, Any] | None:
        def error(problem: str, status: int | None = None) -> XmApiError:
            return XmApiError(
                problem, metric=metric, entity=entity, start=start, end=end, status=status
            )

        try:
            response = self._http.post(url, json=body)
        except httpx.TimeoutException as exc:
            kind = type(exc).__name__
            raise _Transient(f"timeout after {self.timeout}s ({kind}) on {url}") from exc
        except httpx.TransportError as exc:
            raise _Transient(f"connection error ({type(exc).__name__}: {exc}) on {url}") from exc

        status = response.status_code
        if status >= 500 or status in _RETRY_STATUS:
            raise _Transient(f"HTTP {status}{_message_suffix(response)} from {url}")
        if status == 204:
            return None
        if status != 200:
            raise error(f"HTTP {status}{_message_suffix(response)} from {url}", status)
        if not response.content.strip():
            raise error(f"HTTP 200 with an empty body from {url}", status)
        try:
            payload = json.loads(response.content)
        except ValueError as exc:
            snippet = response.text[:120]
            problem = f"malformed JSON from {url} ({exc}); body starts {snippet!r}"
            raise error(problem, status) from exc
        if not isinstance(payload, dict):
            raise error(f"expected a JSON object, got {type(payload).__name__}", status)
        message = payload.get("Message")
        if message not in (None, ""):
            raise error(f"XM answered with Message: {message}", status)
        return payload


def _message_suffix(response: httpx.Response) -> str:
    """`: <Message>` when an error answer carries XM's `Message` field, else ''."""
    try:
        payload = response.json()
    except ValueError:
        return ""
    if isinstance(payload, dict) and payload.get("Message"):
        return f": {payload['Message']}"
    return ""


# -- parsing ----------------------------------------------------------------------------------


def _parse(
    payload: dict[str, Any] | None,
    granularity: Granularity,
    metric: str,
    entity: str,
    start: date,
    end: date,
) -> list[tuple[date, Any]]:
    """Validate one chunk's answer: [(day, 24 values)] for hourly, [(day, value)] for daily."""

    def error(problem: str) -> XmApiError:
        return XmApiError(problem, metric=metric, entity=entity, start=start, end=end)

    if payload is None:  # HTTP 204: no data for this range
        return []
    if "Items" not in payload:
        raise error(f"answer has no 'Items' key (keys: {sorted(payload)})")
    items = payload["Items"]
    if items is None:
        return []
    if not isinstance(items, list):
        raise error(f"'Items' must be a list, got {type(items).__name__}")

    entities_key = "HourlyEntities" if granularity == "hourly" else "DailyEntities"
    value_keys = set(HOUR_KEYS) if granularity == "hourly" else {"Value"}
    out: list[tuple[date, Any]] = []
    seen: set[date] = set()
    for n, item in enumerate(items):
        where = f"Items[{n}]"
        if not isinstance(item, dict):
            raise error(f"{where} must be an object, got {type(item).__name__}")
        unknown = set(item) - {"Date", entities_key}
        if unknown:
            raise error(
                f"{where}: unexpected field(s) {sorted(unknown)} (want 'Date', {entities_key!r})"
            )
        day = _parse_date(item.get("Date"), error, where)
        where = f"{where} (Date {day})"
        if not start <= day <= end:
            raise error(f"{where}: date outside the requested range")
        if day in seen:
            raise error(f"{where}: duplicate date")
        seen.add(day)

        entities = item.get(entities_key)
        if not isinstance(entities, list):
            raise error(f"{where}: {entities_key!r} must be a list, got {type(entities).__name__}")
        if len(entities) != 1:
            raise error(
                f"{where}: expected exactly one entity in {entities_key}, got {len(entities)}"
            )
        ent = entities[0]
        if not isinstance(ent, dict):
            raise error(f"{where}: entity must be an object, got {type(ent).__name__}")
        unknown = set(ent) - {"Id", "Values"}
        if unknown:
            raise error(
                f"{where}: unexpected entity field(s) {sorted(unknown)} (want 'Id', 'Values')"
            )
        raw = ent.get("Values")
        if not isinstance(raw, dict):
            raise error(f"{where}: entity 'Values' must be an object, got {type(raw).__name__}")
        unknown = set(raw) - value_keys - {"code"}
        if unknown:
            allowed = "'code', 'Hour01'..'Hour24'" if granularity == "hourly" else "'code', 'Value'"
            raise error(
                f"{where}: unexpected key(s) in Values {sorted(unknown)} (allowed: {allowed})"
            )

        if granularity == "hourly":
            # An absent HourNN means the same as "": no value. Renamed keys are caught above.
            hourly = [
                _parse_number(raw.get(key), error, f"{where} hour {i} ({key})")
                for i, key in enumerate(HOUR_KEYS)
            ]
            out.append((day, hourly))
        else:
            if "Value" not in raw:
                raise error(f"{where}: Values has no 'Value' key")
            out.append((day, _parse_number(raw["Value"], error, f"{where} Value")))
    return out


def _parse_date(raw: Any, error, where: str) -> date:
    if not isinstance(raw, str):
        raise error(f"{where}: 'Date' must be a string 'YYYY-MM-DD', got {raw!r}")
    text = raw[:-9] if raw.endswith("T00:00:00") else raw
    if _DATE_RE.fullmatch(text):  # fromisoformat alone would also take '20241201', week dates
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    raise error(f"{where}: unparsable Date {raw!r} (want 'YYYY-MM-DD')")


def _parse_number(raw: Any, error, where: str) -> float | None:
    """XM sends numbers as strings; '' (or null) is a missing value, anything else must parse."""
    if raw is None:
        return None
    if isinstance(raw, bool):
        raise error(f"{where}: non-numeric value {raw!r}")
    if isinstance(raw, int | float):
        value = float(raw)
    elif isinstance(raw, str):
        text = raw.strip()
        if text == "":
            return None
        try:
            value = float(text)
        except ValueError:
            raise error(f"{where}: non-numeric value {raw!r}") from None
    else:
        raise error(f"{where}: non-numeric value {raw!r}")
    if not math.isfinite(value):
        raise error(f"{where}: non-finite value {raw!r}")
    return value


# -- the PriceSource ------------------------------------------------------------------------


class XmSource:
    """The `xm` price source: `PrecBolsNaci` for Sistema, in the platform's hourly frame.

    `last_date` is yesterday in Bogota: XM publishes a day's bolsa price after the day ends.
    `today` can be injected so tests and replays do not depend on the clock.
    """

    name = "xm"

    def __init__(
        self,
        base_url: str | None = None,
        client: XmClient | None = None,
        today: date | None = None,
    ):
        if client is None:
            if base_url is None:
                # Lazy: reading settings creates the platform's home folders.
                from energy_platform.settings import get_settings

                base_url = get_settings().xm_base_url
            client = XmClient(base_url)
        self.client = client
        self._today = today

    def close(self) -> None:
        self.client.close()

    def first_date(self) -> date:
        return HISTORY_START

    def last_date(self) -> date:
        today = self._today or datetime.now(BOGOTA).date()
        return today - timedelta(days=1)

    def hourly_prices(self, start: date, end: date) -> pl.DataFrame:
        """Bolsa prices for [start, end], clipped to [first_date, last_date]; nulls kept."""
        start = max(start, self.first_date())
        end = min(end, self.last_date())
        if start > end:
            frame = pl.DataFrame(schema={"ts": pl.Datetime("us"), "price": pl.Float64})
        else:
            frame = self.client.fetch_hourly(PrecBolsNaci, start, end).select(
                "ts", pl.col("value").alias("price")
            )
        return with_calendar_columns(frame)
