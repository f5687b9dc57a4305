"""Streamlit dashboard over `analytics.duckdb` (read-only): `energy-platform dashboard`.

Sections: tomorrow's forecast with its 80% band, forecast against actual over a date range,
realised accuracy per model version against the weekly naive, drift status with its reports,
and the model registry. Every failure is a message on the page, never a traceback.
"""

from __future__ import annotations

from datetime import timedelta

import altair as alt
import polars as pl
import streamlit as st

from energy_platform.dashboard import data, labels
from energy_platform.price_display import price_decimals

BAND = "#9ecae1"
P50 = "#08519c"
FORECAST = "#f16913"
ACTUAL = "#252525"
SEVERITY = {
    "pass": ("green", "OK"),
    "warn": ("orange", "Advertencia"),
    "error": ("red", "Error"),
    "not_enough_data": ("gray", "Datos insuficientes"),
}

st.set_page_config(page_title="Precio de la electricidad · pronóstico", page_icon="⚡", layout="wide")
alt.data_transformers.disable_max_rows()
# any market's page (the platform runs on other markets' files): XM's "precio de bolsa" is named
# where the data are XM's, in the published tables' comments
TITLE = "⚡ Precio de la electricidad — pronóstico horario"


def time_axis(days: int) -> alt.Axis:
    """A date axis with one label per day at most: over a few days Vega put ticks at noon too,
    each labelled with its day (29/12 twice); tickMinStep does not stop it on a time scale."""
    return alt.Axis(format="%d/%m", labelAngle=0, tickCount={"interval": "day", "step": 1} if days <= 14 else 10)


PRICE_DIGITS = 1  # decimals of a price, set from the published prices in main(): any market's unit


def fmt(value, digits: int | None = None, suffix: str = "", sign: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value:{'+' if sign else ''},.{PRICE_DIGITS if digits is None else digits}f}{suffix}".replace(",", " ")


def table(where, frame: pl.DataFrame, names: dict[str, object], fill: dict[str, str] | None = None,
          **kwargs) -> None:
    """`st.dataframe` with Spanish headers and words for missing cells (never "None"). `names`
    maps a column to its header or to a column_config; a column that had to become text (it had
    gaps) keeps only the header of its config."""
    shown = labels.for_display(frame, fill)
    config = {}
    for column, spec in names.items():
        if column not in shown.columns:
            continue
        if isinstance(spec, str):
            config[column] = spec
        elif shown.schema[column] == pl.String and frame.schema[column] != pl.String:
            config[column] = spec["label"]
        else:
            config[column] = spec
    where.dataframe(shown, hide_index=True, column_config=config, **kwargs)


def section(title: str, render, *args) -> None:
    """A heading and its body; an error in one section is shown there and the rest still render."""
    st.subheader(title)
    try:
        render(*args)
    except Exception as exc:
        st.error(f"No se pudo mostrar esta sección: {type(exc).__name__}: {exc}")


# --------------------------------------------------------------------------------------------


def header(ov: dict[str, pl.DataFrame]) -> None:
    fresh = ov["freshness"].row(0, named=True)
    st.title(TITLE)
    st.caption(
        f"Snapshot publicado {fresh['published_at'] or '—'} · precios reales hasta "
        f"{fresh['last_price_date'] or '—'} · pronósticos hasta {fresh['last_forecast_date'] or '—'} · "
        f"{data.price_unit(ov['metadata'])}, hora local · fuente `analytics.duckdb` (solo lectura)"
    )
    tomorrow, last, summary = ov["tomorrow"], ov["last_actual"], ov["accuracy_summary"]
    champion = ov["model_versions"].filter(pl.col("is_champion"))
    champion_version = champion["version"][0] if champion.height else None
    if champion.height and champion["kind"][0] == "baseline":
        st.warning(
            f"Sirve la **referencia de persistencia** (v{champion_version}: mañana repite el último día conocido), "
            f"no un modelo entrenado. Motivo: {champion['gate_reason'][0] or 'ningún modelo ha pasado la compuerta'}.",
            icon="⚠️",
        )
    cols = st.columns(5)
    if tomorrow.height:
        mean_p50 = tomorrow["p50"].mean()
        last_mean = last["price"].mean() if last.height else None
        peak = tomorrow.sort("p50", descending=True).row(0, named=True)
        cols[0].metric(
            f"Media pronosticada {tomorrow['target_date'][0]}",
            fmt(mean_p50),
            delta=None if last_mean is None else f"{fmt(mean_p50 - last_mean, sign=True)} vs último día real",
            delta_color="off", delta_arrow="off",
            border=True,
        )
        cols[1].metric(f"Pico pronosticado (hora {peak['hour']:02d})", fmt(peak["p50"]),
                       delta=f"banda {fmt(peak['p10'], PRICE_DIGITS - 1)}–{fmt(peak['p90'], PRICE_DIGITS - 1)}", delta_color="off",
                       delta_arrow="off", border=True)
    else:
        cols[0].metric("Media pronosticada mañana", "—", border=True)
        cols[1].metric("Pico pronosticado", "—", border=True)
    cols[2].metric("Último día real (media)", fmt(last["price"].mean() if last.height else None),
                   delta=str(last["date"][0]) if last.height else None, delta_color="off", delta_arrow="off",
                   border=True)
    row = summary.filter(pl.col("version") == champion_version) if champion_version else summary.head(0)
    rmae = row["rmae_28d"][0] if row.height else None
    cols[3].metric(f"rMAE campeón v{champion_version} (28 días)" if champion_version else "rMAE campeón (28 días)", fmt(rmae, 2),
                   delta=None if rmae is None else ("mejor que naive" if rmae < 1 else "peor que naive"),
                   delta_color="normal" if rmae is None or rmae < 1 else "inverse", border=True,
                   help="Últimos 28 días con precio real (la ventana del chequeo de Dagster), todas las horas juntas: suma de errores absolutos del "
                        "modelo / suma de errores del naive semanal (precio de d-7, misma hora). Menor que 1 es mejor.")
    drift = ov["drift_latest"]
    flagged = drift.filter(pl.col("severity").is_in(["warn", "error"])).height
    cols[4].metric("Chequeos de deriva en alerta", f"{flagged} / {drift.height}" if drift.height else "—",
                   delta=("sin alertas" if not flagged else "revisar informes") if drift.height else None,
                   delta_color="normal" if not flagged else "inverse", delta_arrow="off", border=True)


def stale_forecast_note(day, last_price_day) -> str | None:
    """A warning when the newest forecast is for a day before tomorrow in the market's time zone:
    with the data stuck (a source down, an export that stopped) the page showed a 2022 forecast as
    tomorrow's with no word (helper K, session 20)."""
    tomorrow = data.market_today() + timedelta(days=1)
    if day >= tomorrow:
        return None
    prices = f"; los precios publicados terminan el {last_price_day}" if last_price_day else ""
    return (f"El pronóstico más reciente es para el {day}, no para mañana ({tomorrow}){prices}: la ingesta o la "
            "publicación no se han actualizado (o son datos históricos de demostración).")


def tomorrow_section(ov: dict[str, pl.DataFrame]) -> None:
    tomorrow, last = ov["tomorrow"], ov["last_actual"]
    if tomorrow.height == 0:
        st.info("No hay pronósticos publicados todavía: el modelo campeón aún no ha pronosticado ningún día.")
        return
    day, version = tomorrow["target_date"][0], tomorrow["model_version"][0]
    note = " (ninguna fila marcada como del campeón: se muestra el último pronóstico disponible)" if tomorrow["fallback"][0] else ""
    st.caption(f"Día objetivo **{day}** · modelo versión **{version}** · banda 80 % = p10–p90{note}")
    stale = stale_forecast_note(day, last["date"][0] if last.height else None)
    if stale:
        st.warning(stale)
    unknown = tomorrow["operating_unknown"][0] if "operating_unknown" in tomorrow.columns else None
    if unknown:
        st.warning(f"Pronóstico hecho sin {labels.operating_groups(unknown)}: no se conocían al corte de los datos "
                   "(fuente atrasada o detenida). El modelo los trató como faltantes; tómelo con más cautela.")
    base = alt.Chart(tomorrow).encode(x=alt.X("hour:O", title="Hora", axis=alt.Axis(labelAngle=0)))
    band = base.mark_area(opacity=0.45, color=BAND).encode(
        y=alt.Y("p10:Q", title=data.price_unit(ov["metadata"]), scale=alt.Scale(zero=False)), y2="p90:Q",
        tooltip=[alt.Tooltip("hour:O", title="Hora"), alt.Tooltip("p10:Q", format=f".{PRICE_DIGITS}f"),
                 alt.Tooltip("p50:Q", format=f".{PRICE_DIGITS}f"), alt.Tooltip("p90:Q", format=f".{PRICE_DIGITS}f")],
    )
    lines = [tomorrow.select("hour", pl.col("p50").alias("valor"), pl.lit("Pronóstico p50").alias("serie"))]
    if (tomorrow["forecast"] - tomorrow["p50"]).abs().max() > 1e-6:
        lines.append(tomorrow.select("hour", pl.col("forecast").alias("valor"), pl.lit("Pronóstico puntual").alias("serie")))
    if last.height:
        lines.append(last.select("hour", pl.col("price").alias("valor"), pl.lit(f"Real {last['date'][0]}").alias("serie")))
    long = pl.concat(lines)
    names = long["serie"].unique(maintain_order=True).to_list()
    colors = [P50 if n.endswith("p50") else FORECAST if n.endswith("puntual") else "#969696" for n in names]
    dashes = [[5, 3] if n.startswith("Real") else [1, 0] for n in names]
    line = alt.Chart(long).mark_line(point=alt.OverlayMarkDef(size=25), strokeWidth=2.2).encode(
        x="hour:O", y="valor:Q",
        color=alt.Color("serie:N", title=None, scale=alt.Scale(domain=names, range=colors),
                        legend=alt.Legend(orient="top")),
        strokeDash=alt.StrokeDash("serie:N", scale=alt.Scale(domain=names, range=dashes), legend=None),
        tooltip=[alt.Tooltip("serie:N"), alt.Tooltip("hour:O", title="Hora"), alt.Tooltip("valor:Q", format=f".{PRICE_DIGITS}f")],
    )
    left, right = st.columns([3, 1])
    left.altair_chart((band + line).properties(height=330), width="stretch")
    right.dataframe(
        tomorrow.select(pl.col("hour").alias("Hora"), pl.col("p10").round(PRICE_DIGITS), pl.col("p50").round(PRICE_DIGITS),
                        pl.col("p90").round(PRICE_DIGITS)),
        hide_index=True, height=330,
    )


def versus_section(ov: dict[str, pl.DataFrame], path: str, token: tuple) -> None:
    fresh, unit = ov["freshness"].row(0, named=True), data.price_unit(ov["metadata"])
    lo = fresh["first_forecast_date"] or fresh["first_price_date"]
    hi = fresh["last_forecast_date"] or fresh["last_price_date"]
    if lo is None:
        st.info("El snapshot no tiene precios ni pronósticos todavía.")
        return
    versions = ov["model_versions"]["version"].to_list()
    for v in ov["forecast_versions"]["model_version"].to_list():
        if v not in versions:
            versions.append(v)
    c1, c2 = st.columns([2, 1])
    default_start = max(lo, hi - timedelta(days=13))
    picked = c1.date_input("Rango de fechas", value=(default_start, hi), min_value=min(lo, fresh["first_price_date"] or lo),
                           max_value=hi, format="YYYY-MM-DD", key="rango")
    version = c2.selectbox(
        "Versión del modelo", [data.CHAMPION, *versions], placeholder="Elija una versión",
        format_func=lambda v: "Campeón vigente en cada día" if v == data.CHAMPION else f"Versión {v}", key="version",
    )
    if not isinstance(picked, (tuple, list)) or len(picked) != 2:
        st.info("Elija también la fecha final del rango.")
        return
    start, end = picked
    rows = data.load_forecast_vs_actual(path, token, start, end, version)
    actual = data.load_actual(path, token, start, end)
    if rows.height == 0:
        if version != data.CHAMPION and version not in ov["forecast_versions"]["model_version"].to_list():
            st.info(f"La versión {version} no tiene pronósticos publicados (por ejemplo, fue rechazada por la compuerta de promoción).")
        elif actual.height:
            st.warning(f"No hay pronósticos entre {start} y {end} para esta selección; se muestran solo los precios reales.")
        else:
            st.warning(f"No hay datos entre {start} y {end}.")
        if actual.height == 0:
            return
    axis = time_axis((end - start).days + 1)
    layers = []
    if rows.height:
        layers.append(alt.Chart(rows).mark_area(opacity=0.4, color=BAND).encode(
            x=alt.X("ts:T", title=None, axis=axis), y=alt.Y("p10:Q", title=unit, scale=alt.Scale(zero=False)), y2="p90:Q"))
    long = pl.concat([
        actual.select("ts", pl.col("actual").alias("valor"), pl.lit("Real").alias("serie")),
        rows.select("ts", pl.col("forecast").alias("valor"), pl.lit("Pronóstico").alias("serie")),
    ])
    layers.append(alt.Chart(long).mark_line(strokeWidth=1.6).encode(
        x=alt.X("ts:T", title=None, axis=axis), y=alt.Y("valor:Q", title=unit, scale=alt.Scale(zero=False)),
        color=alt.Color("serie:N", title=None, scale=alt.Scale(domain=["Real", "Pronóstico"], range=[ACTUAL, FORECAST]),
                        legend=alt.Legend(orient="top")),
        tooltip=[alt.Tooltip("ts:T", title="Hora", format="%Y-%m-%d %H:%M"), "serie:N",
                 alt.Tooltip("valor:Q", format=f".{PRICE_DIGITS}f")],
    ))
    st.altair_chart(alt.layer(*layers).properties(height=320), width="stretch")
    done = rows.filter(pl.col("actual").is_not_null())
    if done.height:
        m = st.columns(4)
        m[0].metric("MAE del rango", fmt(done["error"].abs().mean()), border=True)
        m[1].metric("Sesgo (pronóstico − real)", fmt(done["error"].mean()), border=True)
        coverage = 100 * done["in_band_80"].cast(pl.Float64).mean()
        m[2].metric("Horas dentro de la banda p10–p90", fmt(coverage, 0, " %"), border=True,
                    delta=labels.coverage_words(coverage), delta_color="off", delta_arrow="off",
                    help="La banda está hecha para contener el precio real en el 80 % de las horas.")
        m[3].metric("Horas evaluadas", f"{done.height}", border=True)
    elif rows.height:
        st.caption("Los días elegidos aún no tienen precio real: no hay error que medir.")


def accuracy_section(ov: dict[str, pl.DataFrame]) -> None:
    acc = ov["accuracy"]
    if acc.height == 0:
        st.info("Aún no hay precisión realizada: se calcula cuando llegan los precios reales de los días pronosticados.")
        return
    acc = acc.with_columns(pl.concat_str(pl.lit("v"), pl.col("model_version")).alias("version"))
    axis = time_axis((acc["target_date"].max() - acc["target_date"].min()).days + 1)
    daily = alt.Chart(acc).mark_circle(size=14, opacity=0.35).encode(
        x=alt.X("target_date:T", title=None, axis=axis), y=alt.Y("rmae:Q", title="rMAE (vs naive semanal)"),
        color=alt.Color("version:N", title="Versión", scale=alt.Scale(scheme="tableau10"),
                        legend=alt.Legend(orient="top")))
    rolling = alt.Chart(acc).mark_line(strokeWidth=2.2).encode(
        x=alt.X("target_date:T", title=None, axis=axis), y="rmae_7d:Q", color="version:N",
        tooltip=[alt.Tooltip("target_date:T", title="Día"), "version:N", alt.Tooltip("rmae:Q", format=".2f"),
                 alt.Tooltip("rmae_7d:Q", title="rMAE 7 días", format=".2f"), alt.Tooltip("mae:Q", format=f".{PRICE_DIGITS}f")])
    rule = alt.Chart(pl.DataFrame({"y": [1.0], "label": ["naive semanal = 1.0"]})).mark_rule(
        color="#cb181d", strokeDash=[6, 4], strokeWidth=1.5).encode(y="y:Q")
    label = alt.Chart(pl.DataFrame({"y": [1.0], "label": ["naive semanal = 1.0"]})).mark_text(
        align="left", dx=4, dy=-7, color="#cb181d").encode(y="y:Q", text="label:N", x=alt.value(0))
    left, right = st.columns([3, 2])
    left.altair_chart((daily + rolling + rule + label).properties(height=300), width="stretch")
    left.caption("Puntos: rMAE de cada día; línea: rMAE de los últimos 7 días, todas sus horas juntas. "
                 "Por debajo de 1.0 el modelo le gana al naive semanal.")
    summary = ov["accuracy_summary"]
    table(
        right, summary, column_order=["version", "days", "hasta", "mae", "rmae", "rmae_28d", "coverage_80"],
        names={
            "version": "Versión", "days": st.column_config.NumberColumn("Días"),
            "hasta": st.column_config.DateColumn("Último día", format="YYYY-MM-DD"),
            "mae": st.column_config.NumberColumn("MAE", format=f"%.{PRICE_DIGITS}f"),
            "rmae": st.column_config.NumberColumn("rMAE", format="%.2f",
                                                  help="Todas las horas evaluadas: Σ error del modelo / Σ error del naive"),
            "coverage_80": st.column_config.ProgressColumn("Cobertura 80 %", min_value=0, max_value=1, format="percent"),
            "rmae_28d": st.column_config.NumberColumn("rMAE 28 d", format="%.2f",
                                                      help="Igual, solo los últimos 28 días (la cifra del encabezado)"),
        },
    )


def drift_section(ov: dict[str, pl.DataFrame]) -> None:
    latest = ov["drift_latest"]
    if latest.height == 0:
        st.info("Aún no se ha ejecutado ningún chequeo de deriva.")
        return
    for i, row in enumerate(latest.iter_rows(named=True)):
        color, label = SEVERITY.get(row["severity"], ("gray", row["severity"]))
        with st.container(border=True):
            c = st.columns([2.2, 1.1, 2.2, 2.5])
            c[0].markdown(f"**{row['check_name']}**  \n`{row['asset']}` · {row['checked_at']:%Y-%m-%d %H:%M}")
            with c[1]:
                st.badge(label, color=color)
                st.caption(labels.drift_share(row["drift_share"], row["n_columns"], row["severity"]))
            c[2].caption(f"Actual {row['current_start']} → {row['current_end']}  \n"
                         f"Referencia {row['reference_start']} → {row['reference_end']}  \n"
                         f"Columnas con deriva (distancia): {labels.drifted_columns(row['drifted_columns'])}")
            if row.get("report_url"):  # served by MLflow over http: a browser opens it, a file:// link it would not
                c[3].markdown(f"[Informe en MLflow]({row['report_url']})")
            if row["report_path"]:
                body = data.read_report(row["report_path"])
                resolved = data.resolve_report(row["report_path"])
                if body is not None:
                    c[3].download_button("Descargar informe", body, file_name=resolved.name, mime="text/html",
                                         key=f"report-{i}", icon=":material/download:")
                else:
                    c[3].caption("El archivo del informe no está en esta máquina "
                                 "(o se borró: se guardan ENERGY_PLATFORM_REPORTS_KEEP_DAYS días).")
            else:
                c[3].caption("Sin informe HTML.")
    flagged = ov["drift_flagged"]
    with st.expander(f"Días con deriva señalada ({flagged.height})"):
        if flagged.height:
            flagged = flagged.with_columns(
                pl.col("severity").replace_strict(labels.SEVERITY_ES, default=pl.col("severity")),
                pl.Series("drifted_columns", [None if v is None else labels.drifted_columns(v)  # no polars UDF: labels.for_display
                                              for v in flagged["drifted_columns"].to_list()], dtype=pl.String),
            )
            table(st, flagged, {
                "dia": st.column_config.DateColumn("Día", format="YYYY-MM-DD"), "check_name": "Chequeo",
                "asset": "Asset", "severity": "Severidad",
                "drift_share": st.column_config.ProgressColumn("Columnas con deriva", min_value=0, max_value=1,
                                                               format="percent"),
                "drifted_columns": "Columnas (distancia)",
            })
        else:
            st.write("Ningún chequeo ha señalado deriva.")


def registry_section(ov: dict[str, pl.DataFrame]) -> None:
    versions = ov["model_versions"]
    if versions.height == 0:
        st.info("El registro de modelos está vacío: aún no se ha entrenado ninguna versión.")
    else:
        table(
            st, versions, fill={"first_champion_at": "nunca", "aliases": "ninguno"},
            names={
                "version": "Versión", "is_champion": st.column_config.CheckboxColumn("Campeón"),
                "aliases": "Alias", "gate_decision": "Compuerta", "kind": "Tipo (modelo / referencia)",
                "gate_reason": "Motivo de la compuerta",
                "registered_at": st.column_config.DatetimeColumn("Registrada", format="YYYY-MM-DD HH:mm"),
                "train_start": st.column_config.DateColumn("Entrena desde", format="YYYY-MM-DD"),
                "train_end": st.column_config.DateColumn("Entrena hasta", format="YYYY-MM-DD"),
                "backtest_start": st.column_config.DateColumn("Backtest desde", format="YYYY-MM-DD"),
                "backtest_end": st.column_config.DateColumn("Backtest hasta", format="YYYY-MM-DD"),
                "backtest_mae": st.column_config.NumberColumn("MAE backtest", format=f"%.{PRICE_DIGITS}f"),
                "backtest_rmae": st.column_config.NumberColumn("rMAE backtest", format="%.2f"),
                "backtest_coverage_80": st.column_config.NumberColumn("Cobertura 80 %", format="%.2f"),
                "first_champion_at": "Campeón desde", "times_champion": "Veces campeón",
                "forecast_days": "Días pronosticados", "mlflow_run_id": "Run MLflow",
            },
        )
    c1, c2 = st.columns(2)
    with c1:
        st.markdown("**Historial del alias `champion`**")
        if ov["champion_periods"].height:
            table(st, ov["champion_periods"], {
                "version": "Versión", "champion_from": "Desde", "champion_until": "Hasta",
                "previous_version": "Anterior", "reason": "Motivo"}, fill={"champion_until": "vigente"})
        else:
            st.caption("El alias champion no se ha movido todavía.")
    with c2:
        st.markdown("**Alertas recientes**")
        if ov["alerts"].height:
            table(st, ov["alerts"], {
                "raised_at": "Fecha", "kind": "Tipo", "job_name": "Job", "message": "Mensaje"})
        else:
            st.caption("Sin alertas.")


def main() -> None:
    path = data.analytics_path()
    token = data.snapshot_token(path)
    if token is None:
        st.title(TITLE)
        st.info(f"Aún no hay datos publicados: ejecute `make demo` (se espera `{path}`).")
        return
    try:
        ov = data.load_overview(str(path), token)
    except Exception as exc:
        st.title(TITLE)
        st.error(f"No se pudo leer `{path}`: {type(exc).__name__}: {exc}")
        return
    global PRICE_DIGITS
    PRICE_DIGITS = price_decimals([*ov["last_actual"]["price"], *ov["tomorrow"]["p50"]])
    header(ov)
    if ov["metadata"]["row_count"].sum() == 0:
        st.warning("El snapshot publicado está vacío: el pipeline aún no ha escrito precios ni pronósticos. "
                   "Ejecute `make demo`.")
    section("Pronóstico para mañana", tomorrow_section, ov)
    section("Pronóstico frente a precio real", versus_section, ov, str(path), token)
    section("Precisión por versión del modelo frente al naive semanal", accuracy_section, ov)
    section("Estado de deriva", drift_section, ov)
    section("Registro de modelos: versiones y alias", registry_section, ov)


main()
