"""The live source: XM's public API (`servapibi.xm.com.co`), read with a small client of our own.

Why not the official `pydataxm` package: importing it applies `nest_asyncio` and silences all
warnings process-wide, constructing its reader makes a network call, and it leaves hourly values
as strings. This client is a few hundred lines of httpx that we can read, test against a local
server and trust: 30-day chunking (the API's limit), bounded retries with exponential backoff on
transient failures only, and strict parsing that refuses any answer it does not understand,
because a silently shifted hour or a comma-decimal read as garbage would poison training data
without anyone noticing.

Every call is bounded, because httpx's timeout applies per socket read: a server dripping one
byte every 10 s once held one attempt 638 s, and a 400 MB answer was read whole. So each attempt
has a total deadline (the socket is shut when it passes, whatever the server does), each answer
a size cap (streamed, refused at the cap), and each fetch a deadline over all chunks and retries.

Time: Colombia has no daylight saving; `Hour01` is 00:00-01:00 local time, stored as hour 0 on a
naive local timestamp.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
import socket
import threading
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
    floor: float | None = 0.0  # the lowest possible value; below it is refused like NaN


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
    """A failure worth retrying (timeout, deadline, connection error, 5xx, 429)."""


def _cut_at(response: httpx.Response, deadline: float) -> threading.Timer | None:
    """Shut the answer's socket at `deadline`, which ends any read blocked on a dripping server.

    Uses httpx's documented `network_stream` extension; None when the transport has no socket
    (then the deadline is checked between chunks only).
    """
    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    if sock is None:
        return None

    def cut() -> None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)

    timer = threading.Timer(max(0.0, deadline - time.monotonic()), cut)
    timer.daemon = True
    timer.start()
    return timer


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
    an error `Message`, a malformed answer, an answer over the size cap) fails at once: retrying
    cannot fix it. `transport` is passed to httpx (tests, proxies).

    Bounds: `timeout` per socket read; `request_deadline` for one attempt, headers and body (XM
    answers a 30-day chunk in seconds); `max_response_bytes` per answer (a 30-day hourly chunk
    is ~25 KB: 20 MB is 800x that); `fetch_deadline` for one fetch, all chunks and retries (a
    ten-year backfill is 122 chunks).
    """

    def __init__(
        self,
        base_url: str,
        timeout: float = 30.0,
        max_retries: int = 4,
        backoff_seconds: float = 1.0,
        transport: httpx.BaseTransport | None = None,
        request_deadline: float = 60.0,
        max_response_bytes: int = 20_000_000,
        fetch_deadline: float = 1800.0,
    ):
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if min(request_deadline, fetch_deadline, max_response_bytes) <= 0:
            raise ValueError("request_deadline, fetch_deadline and max_response_bytes must be > 0")
        self.request_deadline = request_deadline
        self.max_response_bytes = max_response_bytes
        self.fetch_deadline = fetch_deadline
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
        floor = _floor(metric_id)
        deadline = time.monotonic() + self.fetch_deadline
        dates: list[date] = []
        hours: list[int] = []
        values: list[float | None] = []
        for chunk_start, chunk_end in chunk_range(start, end):
            payload = self._request("hourly", metric_id, entity, chunk_start, chunk_end, deadline)
            parsed = _parse(payload, "hourly", metric_id, entity, chunk_start, chunk_end, floor)
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
        floor = _floor(metric_id)
        deadline = time.monotonic() + self.fetch_deadline
        rows: list[tuple[date, float | None]] = []
        for chunk_start, chunk_end in chunk_range(start, end):
            payload = self._request("daily", metric_id, entity, chunk_start, chunk_end, deadline)
            rows.extend(_parse(payload, "daily", metric_id, entity, chunk_start, chunk_end, floor))
        frame = pl.DataFrame(rows, schema=DAILY_SCHEMA, orient="row")
        return frame.sort("date")

    # -- HTTP ---------------------------------------------------------------------------------

    def _request(
        self, endpoint: str, metric: str, entity: str, start: date, end: date, fetch_deadline: float
    ) -> dict[str, Any] | None:
        """POST one chunk, with retries, within `fetch_deadline` (a `time.monotonic()` instant)."""
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

        def out_of_time(made: int) -> XmApiError:
            return XmApiError(
                f"fetch deadline of {self.fetch_deadline:g} s passed after {made} attempt(s) at this "
                f"chunk; last error: {last_cause}",
                metric=metric, entity=entity, start=start, end=end,
            )

        for attempt in range(attempts):
            if time.monotonic() >= fetch_deadline:
                raise out_of_time(attempt)
            deadline = min(time.monotonic() + self.request_deadline, fetch_deadline)
            try:
                return self._attempt(url, body, deadline, metric, entity, start, end)
            except _Transient as exc:
                last_cause = str(exc)
            if attempt + 1 < attempts:
                wait = min(self.backoff_seconds * 2**attempt, _MAX_BACKOFF_SECONDS)
                if time.monotonic() + wait >= fetch_deadline:
                    raise out_of_time(attempt + 1)
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
        self, url: str, body: dict, deadline: float, metric: str, entity: str, start: date, end: date
    ) -> dict[str, Any] | None:
        def error(problem: str, status: int | None = None) -> XmApiError:
            return XmApiError(
                problem, metric=metric, entity=entity, start=start, end=end, status=status
            )

        read_timeout = max(0.001, min(self.timeout, deadline - time.monotonic()))
        received = 0
        try:
            with self._http.stream("POST", url, json=body, timeout=read_timeout) as response:
                status = response.status_code
                content, received = self._read_capped(response, deadline, url, error)
        except httpx.TimeoutException as exc:
            if time.monotonic() >= deadline:
                raise _Transient(self._late(url, received)) from exc
            kind = type(exc).__name__
            raise _Transient(f"timeout after {read_timeout:.3g}s ({kind}) on {url}") from exc
        except httpx.TransportError as exc:
            if time.monotonic() >= deadline:
                raise _Transient(self._late(url, received)) from exc
            raise _Transient(f"connection error ({type(exc).__name__}: {exc}) on {url}") from exc

        if status >= 500 or status in _RETRY_STATUS:
            raise _Transient(f"HTTP {status}{_message_suffix(content)} from {url}")
        if status == 204:
            return None
        if status != 200:
            raise error(f"HTTP {status}{_message_suffix(content)} from {url}", status)
        if not content.strip():
            raise error(f"HTTP 200 with an empty body from {url}", status)
        try:
            payload = json.loads(content)
        except ValueError as exc:
            snippet = content[:120].decode("utf-8", "replace")
            problem = f"malformed JSON from {url} ({exc}); body starts {snippet!r}"
            raise error(problem, status) from exc
        if not isinstance(payload, dict):
            raise error(f"expected a JSON object, got {type(payload).__name__}", status)
        message = payload.get("Message")
        if message not in (None, ""):
            raise error(f"XM answered with Message: {message}", status)
        return payload

    def _late(self, url: str, received: int) -> str:
        return (
            f"no complete answer within the {self.request_deadline:g} s request deadline "
            f"({received:,} bytes received) from {url}"
        )

    def _read_capped(self, response: httpx.Response, deadline: float, url: str, error) -> tuple[bytes, int]:
        """The decoded body, refused past `max_response_bytes`; reads end at `deadline`."""
        cap = self.max_response_bytes
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > cap:
            raise error(
                f"answer of {int(declared):,} bytes (Content-Length) exceeds the {cap:,}-byte cap; "
                f"not read, from {url}", response.status_code,
            )
        timer = _cut_at(response, deadline)
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_bytes():  # as received: a chunk size would buffer
                size += len(chunk)
                if size > cap:
                    raise error(
                        f"answer exceeds the {cap:,}-byte cap (stopped after {size:,} bytes) from {url}",
                        response.status_code,
                    )
                if time.monotonic() >= deadline:
                    raise _Transient(self._late(url, size))
                chunks.append(chunk)
        except httpx.HTTPError as exc:
            # A read cut by the deadline surfaces as a transport error: name the deadline.
            if time.monotonic() >= deadline:
                raise _Transient(self._late(url, size)) from exc
            raise
        finally:
            if timer is not None:
                timer.cancel()
        return b"".join(chunks), size


def _message_suffix(content: bytes) -> str:
    """`: <Message>` when an error answer carries XM's `Message` field, else ''."""
    try:
        payload = json.loads(content)
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
    floor: float | None = None,
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
                _parse_number(raw.get(key), error, f"{where} hour {i} ({key})", floor)
                for i, key in enumerate(HOUR_KEYS)
            ]
            out.append((day, hourly))
        else:
            if "Value" not in raw:
                raise error(f"{where}: Values has no 'Value' key")
            out.append((day, _parse_number(raw["Value"], error, f"{where} Value", floor)))
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


def _floor(metric_id: str) -> float | None:
    """A known metric's floor (prices, demand, inflows and levels are never negative)."""
    known = METRICS.get(metric_id)
    return known.floor if known is not None else None


def _parse_number(raw: Any, error, where: str, floor: float | None = None) -> float | None:
    """XM sends numbers as strings; '' (or null) is a missing value, anything else must parse,
    be finite and not be below `floor`."""
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
    if floor is not None and value < floor:
        raise error(f"{where}: negative value {raw!r} (below the floor {floor:g})" if floor == 0
                    else f"{where}: value {raw!r} below the floor {floor:g}")
    return value


# -- the PriceSource ------------------------------------------------------------------------


class XmSource:
    """The `xm` price source: `PrecBolsNaci` for Sistema, in the platform's hourly frame.

    `last_date` is yesterday in Bogota: XM publishes a day's bolsa price after the day ends.
    `today` can be injected so tests and replays do not depend on the clock.
    """

    name = "xm"
    local = False

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
        self.notes: list[str] = []  # XM's answers are whole or refused: nothing is left out silently

    def close(self) -> None:
        self.client.close()

    def first_date(self) -> date:
        return HISTORY_START

    def last_date(self) -> date:
        today = self._today or datetime.now(BOGOTA).date()
        return today - timedelta(days=1)

    def data_end(self) -> date:
        return self.last_date()  # XM publishes no forecasts ahead of the prices

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
