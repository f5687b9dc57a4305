"""The Streamlit dashboard through Streamlit's own AppTest, on real published files."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from energy_platform.dashboard import APP, streamlit_command
from energy_platform.warehouse.analytics import publish_analytics
from energy_platform_tests.test_analytics import seed_warehouse

HEADINGS = [
    "Pronóstico para mañana",
    "Pronóstico frente a precio real",
    "Precisión por versión del modelo frente al naive semanal",
    "Estado de deriva",
    "Registro de modelos: versiones y alias",
]


@pytest.fixture(scope="module")
def published_home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("home")
    publish_analytics(seed_warehouse(home), home / "analytics.duckdb")
    return home


def _run(monkeypatch, home: Path) -> AppTest:
    monkeypatch.setenv("ENERGY_PLATFORM_HOME", str(home))
    return AppTest.from_file(str(APP), default_timeout=30).run()


def _texts(elements) -> str:
    return " ".join(str(e.value) for e in elements)


def test_full_dashboard_renders_every_section(monkeypatch, published_home):
    at = _run(monkeypatch, published_home)  # its speed is measured in bench/bench_analytics.py, not here
    assert not at.exception, at.exception
    assert not at.error, _texts(at.error)
    assert [s.value for s in at.subheader] == HEADINGS
    assert len(at.get("vega_lite_chart")) >= 3  # tomorrow, forecast vs actual, accuracy (Altair)
    assert len(at.get("download_button")) == 2  # one HTML report per drift check
    links = [m.value for m in at.markdown if "Informe en MLflow" in m.value]  # http, not a file:// a browser refuses
    assert len(links) == 2 and all("](http://127.0.0.1:5000/#/experiments/" in v for v in links), links
    assert any("2025-01-02" in m.label for m in at.metric), [m.label for m in at.metric]
    assert any("rMAE" in m.label for m in at.metric)
    assert len(at.dataframe) >= 4


def test_missing_file_says_to_run_the_demo(monkeypatch, tmp_path):
    at = _run(monkeypatch, tmp_path / "nothing-here")
    assert not at.exception
    assert "Aún no hay datos publicados: ejecute `make demo`" in _texts(at.info)
    assert not (tmp_path / "nothing-here").exists(), "the dashboard must not create the home"


def test_empty_snapshot_explains_each_empty_section(monkeypatch, tmp_path):
    publish_analytics(tmp_path / "warehouse.duckdb", tmp_path / "analytics.duckdb")
    at = _run(monkeypatch, tmp_path)
    assert not at.exception and not at.error, _texts(at.error)
    assert "vacío" in _texts(at.warning)
    infos = _texts(at.info)
    for expected in ("No hay pronósticos publicados", "ni pronósticos", "precisión realizada", "deriva",
                     "registro de modelos está vacío"):
        assert expected in infos, (expected, infos)
    assert [s.value for s in at.subheader] == HEADINGS


def test_date_range_without_forecasts_warns(monkeypatch, published_home):
    at = _run(monkeypatch, published_home)
    at.date_input(key="rango").set_value((date(2024, 9, 10), date(2024, 9, 20))).run()
    assert not at.exception and not at.error
    assert "No hay pronósticos entre 2024-09-10 y 2024-09-20" in _texts(at.warning)
    assert len(at.get("vega_lite_chart")) >= 3  # the actual prices are still drawn


def test_model_version_without_forecasts_says_so(monkeypatch, published_home):
    at = _run(monkeypatch, published_home)
    at.selectbox(key="version").set_value("3").run()
    assert not at.exception and not at.error
    assert "La versión 3 no tiene pronósticos publicados" in _texts(at.info)
    at.selectbox(key="version").set_value("1").run()
    assert not at.exception and "no tiene pronósticos" not in _texts(at.info)


def test_a_new_publish_is_shown_on_the_next_run(monkeypatch, tmp_path):
    publish_analytics(tmp_path / "warehouse.duckdb", tmp_path / "analytics.duckdb")
    at = _run(monkeypatch, tmp_path)
    assert "vacío" in _texts(at.warning)
    publish_analytics(seed_warehouse(tmp_path), tmp_path / "analytics.duckdb")
    at.run()
    assert "vacío" not in _texts(at.warning) and not at.exception  # (its forecasts are for 2025: a stale-day warning)
    assert len(at.get("vega_lite_chart")) >= 3


def test_run_dashboard_command_uses_the_venv_streamlit():
    cmd = streamlit_command(port=8765, host="0.0.0.0")
    assert cmd[0] == sys.executable  # the venv's interpreter, which holds streamlit and the page's imports
    assert cmd[1:5] == ["-m", "energy_platform.dashboard.serve", "run", str(APP)]
    joined = " ".join(cmd)
    for part in ("--server.address 0.0.0.0", "--server.port 8765", "--server.headless true",
                 "--browser.gatherUsageStats false"):
        assert part in joined


# ---------------------------------------------------------------------------------------------
# What a reader sees: Spanish words, rounded numbers, no "None", no raw JSON
# ---------------------------------------------------------------------------------------------


def test_a_snapshot_published_before_report_urls_still_renders(monkeypatch, tmp_path):
    import duckdb

    publish_analytics(seed_warehouse(tmp_path), tmp_path / "analytics.duckdb")
    with duckdb.connect(str(tmp_path / "analytics.duckdb")) as conn:  # as an older version published it
        conn.execute("ALTER TABLE drift_checks DROP COLUMN report_url")
    at = _run(monkeypatch, tmp_path)
    assert not at.exception, at.exception
    assert len(at.get("download_button")) == 2  # the reports' files are still offered
    assert not [m.value for m in at.markdown if "Informe en MLflow" in m.value]


def test_a_forecast_made_without_operating_data_says_so(monkeypatch, tmp_path):
    """The predictions asset records the groups unknown at the cutoff; the trader reads it in
    words above tomorrow's chart. An older snapshot without the column still renders."""
    import duckdb

    from energy_platform.warehouse.db import connect

    warehouse = seed_warehouse(tmp_path)
    with connect(warehouse) as conn:
        conn.execute("UPDATE ml.predictions SET operating_unknown = 'hydrology,enso' "
                     "WHERE target_date = (SELECT max(target_date) FROM ml.predictions)")
    publish_analytics(warehouse, tmp_path / "analytics.duckdb")
    at = _run(monkeypatch, tmp_path)
    assert not at.exception, at.exception
    warned = _texts(at.warning)
    assert "Pronóstico hecho sin la hidrología (embalses y aportes) y el índice ENSO (ONI)" in warned, warned
    with duckdb.connect(str(tmp_path / "analytics.duckdb")) as conn:  # as an older version published it
        conn.execute("ALTER TABLE forecasts DROP COLUMN operating_unknown")
    at = _run(monkeypatch, tmp_path)
    assert not at.exception and "Pronóstico hecho sin" not in _texts(at.warning), (at.exception, _texts(at.warning))
    assert len(at.get("vega_lite_chart")) >= 3


def test_drift_cards_show_words_not_json(monkeypatch, published_home):
    at = _run(monkeypatch, published_home)
    captions = _texts(at.caption)
    assert "{" not in captions and "1.2345678901234567" not in captions
    assert "Columnas con deriva (distancia): ninguna" in captions  # the passing check: {} stored
    assert "— de —" not in captions and "deriva en el " in captions


def test_no_table_shows_none_or_english_headers(monkeypatch, published_home):
    at = _run(monkeypatch, published_home)
    for frame in at.dataframe:
        shown = frame.value
        assert not shown.isna().any().any(), shown.columns[shown.isna().any()].tolist()
        assert "None" not in str(shown.astype(str).to_numpy().tolist())
    flagged = next(f for f in at.dataframe if "drifted_columns" in f.value.columns)
    import json

    headers = {c: v.get("label") for c, v in json.loads(flagged.proto.columns).items()}  # column_config
    for column in flagged.value.columns:
        assert headers.get(column), f"{column} shows its English name"
    assert headers["dia"] == "Día"
    assert set(flagged.value["severity"]) <= {"Advertencia", "Error"}
    assert "price_lag_1 (1.23)" in set(flagged.value["drifted_columns"])


def test_labels_say_what_is_missing():
    import polars as pl

    from energy_platform.dashboard import labels

    assert labels.drifted_columns('{"a": 0.1, "b": 2.123456789}') == "b (2.12), a (0.10)"
    assert labels.drifted_columns("{}") == labels.drifted_columns(None) == "ninguna"
    assert labels.drifted_columns('["a", "b"]') == "a, b"  # older snapshots stored a list
    assert labels.drift_share(None, None, "not_enough_data") == "sin medir: datos insuficientes"
    assert labels.drift_share(0.35, 12, "warn") == "deriva en el 35 % de 12 columnas"
    frame = pl.DataFrame({"until": [None, date(2025, 1, 1)], "x": [1.0, None], "s": ["a", None]},
                         schema={"until": pl.Date, "x": pl.Float64, "s": pl.String})
    shown = labels.for_display(frame, fill={"until": "vigente"})
    assert shown.rows() == [("vigente", "1.00", "a"), ("2025-01-01", "—", "—")]


def test_header_and_table_give_one_pooled_rmae(monkeypatch, published_home):
    """One accuracy on the page: the header's 28-day rMAE (the Dagster check's window) is the table's, pooled over hours."""
    import duckdb

    with duckdb.connect(str(published_home / "analytics.duckdb"), read_only=True) as conn:
        version, pooled = conn.execute("""
            SELECT a.model_version, sum(a.mae * a.hours) / sum(a.naive_w_mae * a.hours)
            FROM forecast_accuracy_daily a JOIN model_versions m ON m.version = a.model_version AND m.is_champion
            WHERE a.target_date > (SELECT max(target_date) FROM forecast_accuracy_daily
                                   WHERE model_version = a.model_version) - INTERVAL 28 DAY
            GROUP BY ALL""").fetchone()
    at = _run(monkeypatch, published_home)
    header = next(m for m in at.metric if m.label.startswith("rMAE campeón"))
    assert header.value == f"{pooled:.2f}"
    summary = next(f for f in at.dataframe if "rmae_28d" in f.value.columns).value
    assert summary.set_index("version").loc[version, "rmae_28d"] == pytest.approx(pooled)


def test_another_markets_unit_is_what_the_page_and_the_file_say(monkeypatch, tmp_path):
    """A market other than XM's bolsa (ENERGY_PLATFORM_PRICE_UNIT) publishes its unit into the
    snapshot, and the page labels prices with it; a snapshot from before the column was XM's."""
    import duckdb

    publish_analytics(seed_warehouse(tmp_path), tmp_path / "analytics.duckdb", price_unit="EUR/MWh")
    with duckdb.connect(str(tmp_path / "analytics.duckdb"), read_only=True) as conn:
        assert conn.execute("SELECT DISTINCT price_unit FROM metadata").fetchall() == [("EUR/MWh",)]
        comments = [c for (c,) in conn.execute(
            "SELECT comment FROM duckdb_columns() WHERE comment IS NOT NULL AND table_name <> 'metadata'").fetchall()]
        assert any("EUR/MWh" in c for c in comments) and not any("COP/kWh" in c for c in comments)
        # XM's specifics are named as XM's, not as every market's (a bare "Bolsa price", "(America/Bogota)")
        every = comments + [c for (c,) in conn.execute("SELECT comment FROM duckdb_tables() WHERE comment IS NOT NULL").fetchall()]
        assert not any("Bolsa price" in c or "Realised bolsa" in c or "(America/Bogota)" in c for c in every), every
    at = _run(monkeypatch, tmp_path)
    assert not at.exception, at.exception
    assert "EUR/MWh" in _texts(at.caption) and "COP/kWh" not in _texts(at.caption)
    specs = [c.proto.spec for c in at.get("vega_lite_chart")]
    assert '"title": "EUR/MWh"' in specs[0] and '"title": "EUR/MWh"' in specs[1], specs[:2]  # tomorrow, vs actual
    assert not any("COP/kWh" in s for s in specs)
    assert [t.value for t in at.title] == ["⚡ Precio de la electricidad — pronóstico horario"]  # not XM's "bolsa nacional"
    with duckdb.connect(str(tmp_path / "analytics.duckdb")) as conn:  # as an older version published it
        conn.execute("ALTER TABLE metadata DROP COLUMN price_unit")
    at = _run(monkeypatch, tmp_path)
    assert not at.exception, at.exception
    assert "COP/kWh" in _texts(at.caption)


def test_two_sessions_formatting_tables_at_once_do_not_hang_the_server():
    """A polars `map_elements` callback in `for_display` ran on polars' thread pool and needed the
    GIL, which another session's `to_pandas` (st.dataframe) held while waiting on that pool: with
    a few viewers the server hung for good (review helper D, stack dump of the hung server)."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent("""
        import threading, time
        import polars as pl
        from energy_platform.dashboard import labels
        frame = pl.DataFrame({"v": [1.5, None] * 2000, "w": [None, 2.0] * 2000, "s": ["a", None] * 2000})
        stop = time.monotonic() + 8
        def a():
            while time.monotonic() < stop:
                labels.for_display(frame)
        def b():
            while time.monotonic() < stop:
                labels.for_display(frame).to_pandas(); frame.to_pandas()
        threads = [threading.Thread(target=f, daemon=True) for f in (a, b, a)]
        for t in threads: t.start()
        for t in threads: t.join(timeout=30)
        print("hung" if any(t.is_alive() for t in threads) else "ok", flush=True)
        import os; os._exit(0)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=90)
    assert proc.stdout.strip() == "ok", proc.stdout + proc.stderr


def test_a_viewer_reads_the_new_snapshot_while_another_viewer_still_reads_the_old(tmp_path):
    """`duckdb.connect(path)` made while another connection of the process to that path is open
    reuses it: the snapshot before the last republish (the file is swapped), cached for minutes
    under the new file's token (review helper D, at the DuckDB level)."""
    import time

    from energy_platform.dashboard import data

    warehouse = seed_warehouse(tmp_path)
    path = tmp_path / "analytics.duckdb"
    publish_analytics(warehouse, path)
    newest = ("SELECT max(published_at) FROM metadata", [])
    import duckdb

    held = duckdb.connect(str(path), read_only=True)  # another viewer's query in flight, opened as before
    before = held.sql(newest[0]).fetchone()[0]
    time.sleep(1.1)
    publish_analytics(warehouse, path)
    after = data._frames(str(path), {"m": newest})["m"].item()
    assert after > before and held.sql(newest[0]).fetchone()[0] == before
    held.close()


def _x_ticks(spec: str) -> list[object]:
    import json

    def walk(node):
        if isinstance(node, dict):
            x = node.get("encoding", {}).get("x", {})
            if isinstance(x, dict) and "axis" in x:
                yield x["axis"].get("tickCount")
            for value in node.values():
                yield from walk(value)
        elif isinstance(node, list):
            for value in node:
                yield from walk(value)

    return list(walk(json.loads(spec)))


@pytest.mark.parametrize("days, ticks", [(2, {"interval": "day", "step": 1}), (60, 10)])
def test_date_axes_label_each_day_once(monkeypatch, tmp_path, days, ticks):
    """Session 18's helper D (checked in headless chromium since): the accuracy chart of two days
    put a tick at noon, labelled 30/12 twice. A short range ticks once a day; a long one ~10 times."""
    publish_analytics(seed_warehouse(tmp_path, forecast_days=days), tmp_path / "analytics.duckdb")
    at = _run(monkeypatch, tmp_path)
    assert not at.exception, at.exception
    accuracy = _x_ticks(at.get("vega_lite_chart")[2].proto.spec)
    assert accuracy and all(t == ticks for t in accuracy), accuracy
    assert _x_ticks(at.get("vega_lite_chart")[1].proto.spec)[0] == {"interval": "day", "step": 1}  # 14 days by default


def test_prices_in_a_small_unit_keep_their_digits(monkeypatch, tmp_path):
    """Helper G (session 19): NP in EUR/kWh (~0.04) showed 0.0 for every forecast and MAE (one
    fixed decimal). The decimals follow the published prices' size."""
    from energy_platform.price_display import price_decimals
    from energy_platform.warehouse.db import connect

    assert [price_decimals(p) for p in ([250.0, 900.0], [40.0], [0.047, 0.05], [], [None, 0.0])] == [1, 1, 4, 1, 1]
    warehouse = seed_warehouse(tmp_path)
    with connect(warehouse) as conn:
        conn.execute("UPDATE raw.prices_hourly SET price = price / 10000")
        conn.execute("UPDATE ml.predictions SET forecast = forecast / 10000, p10 = p10 / 10000, p50 = p50 / 10000, "
                     "p90 = p90 / 10000")
    publish_analytics(warehouse, tmp_path / "analytics.duckdb", price_unit="EUR/kWh")
    at = _run(monkeypatch, tmp_path)
    assert not at.exception, at.exception
    mean = next(m for m in at.metric if m.label.startswith("Media pronosticada"))
    assert float(mean.value.replace(" ", "")) > 0.001, mean.value  # was "0.0"
    assert mean.delta.startswith(("+", "-")) and mean.delta.endswith(" vs último día real"), mean.delta  # signed
    table = next(f.value for f in at.dataframe if "Hora" in f.value.columns)
    assert (table["p50"] > 0).all(), table


def test_a_forecast_for_a_day_already_past_is_not_shown_as_tomorrow_s(monkeypatch, published_home):
    """Helper K (session 20): with the data stuck, the page showed a 2022 forecast under
    "Pronóstico para mañana" with no word; the seeded snapshot's newest forecast is for 2025-01-02."""
    from energy_platform.dashboard import data

    at = _run(monkeypatch, published_home)  # the clock: 2026 or later
    warned = _texts(at.warning)
    assert "El pronóstico más reciente es para el 2025-01-02, no para mañana" in warned, warned
    monkeypatch.setattr(data, "market_today", lambda: date(2025, 1, 1))  # the morning it was made for
    at = _run(monkeypatch, published_home)
    assert not at.exception and "no para mañana" not in _texts(at.warning)
