"""A fake XM API for tests: a real HTTP server on 127.0.0.1 that answers in XM's documented shape.

It serves a dataset you give it (dates -> 24 hourly values, or dates -> one daily value, per
metric), enforces the 30-day limit per request, records every request it receives (to assert
chunking and that nothing was downloaded twice) and can be told to misbehave for the next
request(s): an HTTP error status, a raw body, a stall longer than the client's timeout, a
dropped connection, a body dripped one byte at a time, or a huge body.

    with FakeXm({date(2024, 1, 1): [100.0] * 24}) as xm:
        XmSource(base_url=xm.url, today=date(2024, 1, 2)).hourly_prices(...)
        assert len(xm.requests) == 1

It also answers GET for text files (`serve_text`), so NOAA's `oni.ascii.txt` is served from the
same loopback server (a header-only file at ONI_PATH by default).

No dependency on `energy_platform.sources.xm`: the fake encodes the documented API on its own,
so the client is tested against the contract rather than against itself.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import socket
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import polars as pl

PRICE_METRIC = "PrecBolsNaci"
MAX_DAYS = 30
HOURLY_METRICS = {"PrecBolsNaci", "DemaReal", "Gene"}
DAILY_METRICS = {"AporEner", "PorcVoluUtilDiar", "PorcApor"}
ONI_PATH = "/data/indices/oni.ascii.txt"  # where NOAA CPC serves the ONI text file

HourlyData = Mapping[date, Sequence[float | None]]
DailyData = Mapping[date, float | None]


@dataclass
class RecordedRequest:
    """One request the fake received, and the status it answered."""

    method: str
    path: str
    body: Any  # decoded JSON, or the raw text if it was not JSON
    status: int | None = None  # None if the connection was dropped or the client had gone
    bytes_sent: int = 0  # body bytes written to the socket, kernel buffers included (drip, huge)

    @property
    def endpoint(self) -> str:
        return self.path.strip("/")

    @property
    def metric(self) -> str | None:
        return self.body.get("MetricId") if isinstance(self.body, dict) else None

    @property
    def entity(self) -> str | None:
        return self.body.get("Entity") if isinstance(self.body, dict) else None

    @property
    def start(self) -> date | None:
        return _maybe_date(self.body, "StartDate")

    @property
    def end(self) -> date | None:
        return _maybe_date(self.body, "EndDate")

    @property
    def range(self) -> tuple[date | None, date | None]:
        return (self.start, self.end)


@dataclass
class _Fault:
    kind: str  # "status" | "body" | "stall" | "drop" | "drip" | "huge"
    status: int = 200
    body: bytes | None = None
    seconds: float = 0.0
    size: int = 0
    declare_length: bool = True
    content_type: str = "application/json"


@dataclass
class _Series:
    granularity: str  # "hourly" | "daily"
    entity: str
    data: dict[date, Any] = field(default_factory=dict)


def _maybe_date(body: Any, key: str) -> date | None:
    if not isinstance(body, dict):
        return None
    try:
        return date.fromisoformat(body.get(key, ""))
    except (TypeError, ValueError):
        return None


def _fmt(value: float | None) -> str:
    """XM sends every value as a string, and a missing one as ''."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return repr(float(value))


def hourly_from_frame(
    frame: pl.DataFrame, value_column: str = "price"
) -> dict[date, list[float | None]]:
    """A platform hourly frame (`date`, `hour`, value column; or `ts` + value) as FakeXm data.

    Hours missing from the frame are served as '' (missing), like XM does.
    """
    if "date" not in frame.columns or "hour" not in frame.columns:
        frame = frame.with_columns(
            pl.col("ts").dt.date().alias("date"), pl.col("ts").dt.hour().alias("hour")
        )
    out: dict[date, list[float | None]] = {}
    for day, hour, value in frame.select("date", "hour", value_column).iter_rows():
        out.setdefault(day, [None] * 24)[hour] = value
    return out


def synthetic_prices(
    start: date, end: date, seed: int = 0, base: float = 250.0
) -> dict[date, list[float | None]]:
    """Plausible hourly prices (COP/kWh) for [start, end]: a daily shape plus noise."""
    rng = random.Random(seed)
    out = {}
    day = start
    while day <= end:
        out[day] = [
            round(base + 60 * math.sin((h - 6) / 24 * 2 * math.pi) + rng.uniform(-20, 20), 5)
            for h in range(24)
        ]
        day += timedelta(days=1)
    return out


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class FakeXm:
    """A fake XM API on 127.0.0.1 (port chosen by the OS), in a background thread.

    `prices` is `PrecBolsNaci` for `Sistema`: a dict date -> 24 values (None = missing hour,
    served as '') or a platform hourly frame. Add other metrics with `set_hourly`/`set_daily`.
    Dates with no data are left out of `Items`; a request whose range has no data at all
    answers HTTP 204 (or `{"Items": []}` if `empty_as_204=False`). A request spanning more than
    `max_days` days is refused with HTTP 400 and a `Message`, as the real API limits it.

    Faults apply to the next requests in the order they were queued, one per request.
    """

    def __init__(
        self,
        prices: HourlyData | pl.DataFrame | None = None,
        *,
        max_days: int = MAX_DAYS,
        empty_as_204: bool = True,
    ):
        self.max_days = max_days
        self.empty_as_204 = empty_as_204
        self._series: dict[str, _Series] = {}
        self._texts: dict[str, bytes] = {ONI_PATH: b" SEAS  YR   TOTAL   ANOM\n"}  # NOAA's file, no data yet
        self._faults: deque[_Fault] = deque()
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        if prices is not None:
            self.set_prices(prices)

    # -- data -----------------------------------------------------------------------------

    def set_prices(self, prices: HourlyData | pl.DataFrame) -> FakeXm:
        """Replace the `PrecBolsNaci` series."""
        return self.set_hourly(PRICE_METRIC, prices)

    def set_hourly(
        self, metric: str, data: HourlyData | pl.DataFrame, entity: str = "Sistema",
        value_column: str = "price",
    ) -> FakeXm:
        """Serve `metric` on /hourly: date -> 24 values (None = missing), or a frame."""
        if isinstance(data, pl.DataFrame):
            data = hourly_from_frame(data, value_column)
        clean = {}
        for day, values in data.items():
            values = list(values)
            if len(values) != 24:
                raise ValueError(f"{metric} {day}: need 24 hourly values, got {len(values)}")
            clean[day] = values
        with self._lock:
            self._series[metric] = _Series("hourly", entity, clean)
        return self

    def set_daily(self, metric: str, data: DailyData, entity: str = "Sistema") -> FakeXm:
        """Serve `metric` on /daily: date -> value (None = missing)."""
        with self._lock:
            self._series[metric] = _Series("daily", entity, dict(data))
        return self

    def serve_text(self, path: str, text: str) -> FakeXm:
        """Answer GET `path` with `text` as text/plain (e.g. NOAA's oni.ascii.txt at ONI_PATH)."""
        with self._lock:
            self._texts[path] = text.encode()
        return self

    def text_url(self, path: str = ONI_PATH) -> str:
        return self.url + path

    # -- faults ---------------------------------------------------------------------------

    def fail_next(
        self, n: int = 1, status: int = 503, message: str | None = "Service unavailable"
    ) -> FakeXm:
        """The next `n` requests answer HTTP `status` (with a `Message` body unless None)."""
        body = json.dumps({"Message": message}).encode() if message is not None else b""
        for _ in range(n):
            self._queue(_Fault("status", status=status, body=body))
        return self

    def respond_with(
        self,
        body_or_status: int | str | bytes | Mapping | list,
        *,
        status: int = 200,
        times: int = 1,
        content_type: str = "application/json",
    ) -> FakeXm:
        """The next request(s) get exactly this: an int is a bare status (e.g. 204); str/bytes
        are sent verbatim (e.g. malformed JSON); a dict/list is sent as JSON with `status`."""
        if isinstance(body_or_status, int) and not isinstance(body_or_status, bool):
            fault = _Fault("status", status=body_or_status, body=b"")
        else:
            if isinstance(body_or_status, bytes):
                raw = body_or_status
            elif isinstance(body_or_status, str):
                raw = body_or_status.encode()
            else:
                raw = json.dumps(body_or_status).encode()
            fault = _Fault("body", status=status, body=raw, content_type=content_type)
        for _ in range(times):
            self._queue(fault)
        return self

    def stall_next(self, seconds: float, n: int = 1) -> FakeXm:
        """The next `n` requests wait `seconds` before answering normally (client timeouts)."""
        for _ in range(n):
            self._queue(_Fault("stall", seconds=seconds))
        return self

    def drop_next(self, n: int = 1) -> FakeXm:
        """The next `n` requests get their connection closed without any answer."""
        for _ in range(n):
            self._queue(_Fault("drop"))
        return self

    def drip_next(self, interval: float, n: int = 1, size: int = 100_000) -> FakeXm:
        """The next `n` requests get a 200 with a `size`-byte Content-Length, then one byte every
        `interval` seconds: each read succeeds, so a per-read timeout never fires."""
        for _ in range(n):
            self._queue(_Fault("drip", seconds=interval, size=size))
        return self

    def huge_next(self, size: int, n: int = 1, declare_length: bool = True) -> FakeXm:
        """The next `n` requests get a 200 body of `size` bytes (JSON whitespace, as fast as the
        client reads), with a Content-Length or, if not `declare_length`, until the close."""
        for _ in range(n):
            self._queue(_Fault("huge", size=size, declare_length=declare_length))
        return self

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _queue(self, fault: _Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    # -- requests received ------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._requests)

    def requests_for(self, metric: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.metric == metric]

    def requested_ranges(self, metric: str | None = None) -> list[tuple[date | None, date | None]]:
        """(StartDate, EndDate) of each request (for `metric` if given), in arrival order."""
        reqs = self.requests if metric is None else self.requests_for(metric)
        return [r.range for r in reqs]

    def requested_days(self, metric: str = PRICE_METRIC) -> list[date]:
        """Every day covered by a request for `metric`, with repeats if asked twice."""
        days = []
        for start, end in self.requested_ranges(metric):
            if start is None or end is None:
                continue
            day = start
            while day <= end:
                days.append(day)
                day += timedelta(days=1)
        return days

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeXm is not started: use it as a context manager or call start()")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeXm:
        if self._server is not None:
            return self
        self._stopping.clear()
        server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        server.daemon_threads = True  # a stalled handler must not block stop()
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="FakeXm", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()  # wakes stalled handlers
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeXm:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- answering ----------------------------------------------------------------------------

    def _next_fault(self) -> _Fault | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _answer(self, endpoint: str, body: Any) -> tuple[int, bytes]:
        """The normal (fault-free) answer to a request: (status, JSON body or b'')."""

        def message(status: int, text: str) -> tuple[int, bytes]:
            return status, json.dumps({"Message": text}).encode()

        if endpoint not in ("hourly", "daily"):
            return message(404, f"unknown endpoint /{endpoint}")
        if not isinstance(body, dict):
            return message(400, "request body must be a JSON object")
        expected = {"MetricId", "Entity", "StartDate", "EndDate", "Filter"}
        if set(body) != expected:
            return message(400, f"request body keys must be {sorted(expected)}, got {sorted(body)}")
        start, end = _maybe_date(body, "StartDate"), _maybe_date(body, "EndDate")
        if start is None or end is None or start > end:
            return message(400, "StartDate/EndDate must be YYYY-MM-DD with StartDate <= EndDate")
        if (end - start).days + 1 > self.max_days:
            return message(400, f"at most {self.max_days} days per request")
        metric, entity = body["MetricId"], body["Entity"]
        with self._lock:
            series = self._series.get(metric)
        granularity = series.granularity if series else (
            "hourly" if metric in HOURLY_METRICS else "daily" if metric in DAILY_METRICS else None
        )
        if granularity is None:
            return message(200, f"metric {metric} does not exist")
        if granularity != endpoint:
            return message(200, f"metric {metric} is not available on /{endpoint}")
        items = []
        if series is not None and entity == series.entity:
            day = start
            while day <= end:
                if day in series.data:
                    items.append(_item(day, entity, series.granularity, series.data[day]))
                day += timedelta(days=1)
        if not items and self.empty_as_204:
            return 204, b""
        return 200, json.dumps({"Items": items}).encode()


def _item(day: date, entity: str, granularity: str, value: Any) -> dict:
    if granularity == "hourly":
        values = {"code": entity, **{f"Hour{h + 1:02d}": _fmt(v) for h, v in enumerate(value)}}
        return {"Date": day.isoformat(), "HourlyEntities": [{"Id": entity, "Values": values}]}
    values = {"code": entity, "Value": _fmt(value)}
    return {"Date": day.isoformat(), "DailyEntities": [{"Id": entity, "Values": values}]}


def _make_handler(fake: FakeXm) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

        def do_GET(self) -> None:
            self._handle()

        def do_POST(self) -> None:
            self._handle()

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body: Any = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode("utf-8", "replace")
            record = RecordedRequest(self.command, self.path.split("?")[0], body)
            fake._record(record)

            fault = fake._next_fault()
            if fault is not None and fault.kind == "drop":
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            if fault is not None and fault.kind in ("drip", "huge"):
                record.status = 200
                self._stream(fault, record)
                return
            if fault is not None and fault.kind == "stall":
                if fake._stopping.wait(fault.seconds):
                    return
                fault = None
            if fault is not None:
                status, payload, ctype = fault.status, fault.body or b"", fault.content_type
            elif self.command == "GET" and record.path in fake._texts:
                status, payload, ctype = 200, fake._texts[record.path], "text/plain"
            elif self.command != "POST":
                status, payload = 405, json.dumps({"Message": "use POST"}).encode()
                ctype = "application/json"
            else:
                status, payload = fake._answer(record.endpoint, body)
                ctype = "application/json"
            record.status = status  # before writing: the client may read the record right after
            try:
                self.send_response(status)
                if status != 204 and status >= 200:
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if status != 204 and payload:
                    self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                record.status = None  # the client gave up (timeout) before we answered

        def _stream(self, fault: _Fault, record: RecordedRequest) -> None:
            """Send `fault.size` body bytes: one per `fault.seconds` (drip) or in 64 KB blocks."""
            self.close_connection = True
            block = b" " * (1 if fault.kind == "drip" else 65_536)
            try:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                if fault.declare_length:
                    self.send_header("Content-Length", str(fault.size))
                self.end_headers()
                while record.bytes_sent < fault.size and not fake._stopping.is_set():
                    piece = block[: fault.size - record.bytes_sent]
                    self.wfile.write(piece)
                    self.wfile.flush()
                    record.bytes_sent += len(piece)
                    if fault.kind == "drip" and fake._stopping.wait(fault.seconds):
                        return
            except (BrokenPipeError, ConnectionResetError, OSError):
                pass  # the client stopped reading: what the tests want

    return Handler
