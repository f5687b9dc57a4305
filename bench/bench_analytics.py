"""Analytics benchmark: publishing ten years into `analytics.duckdb`, the analysts' example
queries, and the dashboard's first render.

Run: `.venv/bin/python -W ignore bench/bench_analytics.py` (writes bench/results/analytics.md).
The warehouse is a temporary home on the project's disk holding the full sample (2015-2024,
87,672 hourly prices) plus a year of synthetic forecasts of two model versions, their realised
accuracy, drift checks and alerts (energy_platform_tests.test_analytics.seed_warehouse).
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import date
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from energy_platform.dashboard import APP, streamlit_command  # noqa: E402
from energy_platform.warehouse.analytics import EXAMPLE_QUERIES, publish_analytics  # noqa: E402
from energy_platform_tests.test_analytics import seed_warehouse  # noqa: E402

PUBLISH_TARGET, QUERY_TARGET_MS, RENDER_TARGET = 5.0, 50.0, 3.0
CHROMIUM = Path("/usr/bin/chromium")

APPTEST = """
import sys, time
from streamlit.testing.v1 import AppTest
at = AppTest.from_file(sys.argv[1], default_timeout=60)
t = time.perf_counter(); at.run(); seconds = time.perf_counter() - t
assert not at.exception, at.exception
print(seconds)
"""


def apptest_first_render(home: Path) -> float:
    """AppTest run of the page in a fresh process: cold Streamlit cache, imports already done."""
    env = {**os.environ, "ENERGY_PLATFORM_HOME": str(home)}
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", APPTEST, str(APP)], env=env,
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def browser_first_render(home: Path) -> list[float] | None:
    """Seconds from navigation to the three charts drawn in headless Chromium: the first page of
    a freshly started server (whose first session used to pay the page's imports; the server now
    preloads them), then a second browser page on the now warm server."""
    if not CHROMIUM.exists():
        return None
    from playwright.sync_api import sync_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(streamlit_command(port=port), env={**os.environ, "ENERGY_PLATFORM_HOME": str(home)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                urllib.request.urlopen(f"{url}/_stcore/health", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run"])
            seconds = []
            for _ in range(2):
                page = browser.new_page(viewport={"width": 1500, "height": 1000})
                started = time.perf_counter()
                page.goto(url, wait_until="domcontentloaded")
                page.wait_for_function(
                    "document.querySelectorAll('.vega-embed canvas, .vega-embed svg').length >= 3", timeout=60_000)
                seconds.append(time.perf_counter() - started)
                page.close()
            browser.close()
        return seconds
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> None:
    base = Path(tempfile.mkdtemp(prefix="bench-analytics-", dir=ROOT / "bench" / "results"))
    home = base / "home"
    home.mkdir()
    t = time.perf_counter()
    warehouse = seed_warehouse(home, start=date(2015, 1, 1), end=date(2024, 12, 31), forecast_days=365)
    seed_seconds = time.perf_counter() - t
    analytics = home / "analytics.duckdb"

    publishes = [publish_analytics(warehouse, analytics) for _ in range(5)]
    publish_times = [p["seconds"] for p in publishes]
    summary = publishes[-1]

    conn = duckdb.connect(str(analytics), read_only=True)
    query_rows = []
    for title, sql in EXAMPLE_QUERIES:
        runs = []
        for _ in range(7):
            t = time.perf_counter()
            rows = conn.execute(sql).fetchall()
            runs.append((time.perf_counter() - t) * 1000)
        query_rows.append((title, len(rows), statistics.median(runs), max(runs)))
    conn.close()
    open_runs = []
    for _ in range(7):
        t = time.perf_counter()
        duckdb.connect(str(analytics), read_only=True).close()
        open_runs.append((time.perf_counter() - t) * 1000)

    apptest = [apptest_first_render(home) for _ in range(3)]
    browser = browser_first_render(home)

    ok = lambda good: "yes" if good else "**no**"  # noqa: E731
    lines = [
        "# Analytics benchmark",
        "",
        "Command: `.venv/bin/python -W ignore bench/bench_analytics.py` "
        f"({os.cpu_count()} CPUs, duckdb {duckdb.__version__}).",
        "",
        f"Warehouse: full sample 2015-01-01..2024-12-31 plus synthetic ML rows "
        f"(seeded in {seed_seconds:.1f} s). Rows: "
        + ", ".join(f"`{k}` {v:,}" for k, v in summary["warehouse_rows"].items()) + ".",
        f"Published file: {summary['bytes'] / 1e6:.1f} MB.",
        "",
        "| measurement | median | worst | target | met |",
        "|---|---|---|---|---|",
        f"| publish (build temp file + atomic swap), 5 runs | {statistics.median(publish_times):.2f} s | "
        f"{max(publish_times):.2f} s | < {PUBLISH_TARGET:.0f} s | {ok(max(publish_times) < PUBLISH_TARGET)} |",
        f"| open `analytics.duckdb` read-only | {statistics.median(open_runs):.1f} ms | {max(open_runs):.1f} ms | | |",
    ]
    for i, (title, n, median, worst) in enumerate(query_rows, 1):
        lines.append(f"| example query {i}: {title} ({n} rows), 7 runs | {median:.1f} ms | {worst:.1f} ms | "
                     f"< {QUERY_TARGET_MS:.0f} ms | {ok(median < QUERY_TARGET_MS)} |")
    lines.append(f"| dashboard first render (AppTest, cold cache, fresh process), 3 runs | "
                 f"{statistics.median(apptest):.2f} s | {max(apptest):.2f} s | < {RENDER_TARGET:.0f} s | "
                 f"{ok(statistics.median(apptest) < RENDER_TARGET)} |")
    if browser is not None:
        lines.append(f"| dashboard in headless Chromium: navigation to 3 charts drawn, just-started server | "
                     f"{browser[0]:.2f} s | | | |")
        lines.append(f"| dashboard in headless Chromium: navigation to 3 charts drawn, running server | "
                     f"{browser[1]:.2f} s | | < {RENDER_TARGET:.0f} s | {ok(browser[1] < RENDER_TARGET)} |")
    else:
        lines.append("| dashboard in headless Chromium | skipped: /usr/bin/chromium missing | | | |")
    lines += [
        "",
        "Published tables (rows): " + ", ".join(f"`{k}` {v:,}" for k, v in summary["tables"].items()) + ".",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    (ROOT / "bench" / "results" / "analytics.md").write_text(text)
    for path in sorted(base.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    base.rmdir()


if __name__ == "__main__":
    main()
