"""What the dashboard's readers see instead of raw values: Spanish words, rounded numbers, no "None".

Plain functions over Python values and Polars frames (no Streamlit), so the wording is tested
directly. Streamlit draws a missing cell as the word "None"; `for_display` replaces those.
"""

from __future__ import annotations

import json

import polars as pl

MISSING = "—"


def number(value: float | None, digits: int = 2) -> str:
    return MISSING if value is None else f"{value:,.{digits}f}".replace(",", " ")


def drifted_columns(raw: str | None) -> str:
    """`drift_checks.drifted_columns` (JSON: {column: score}, or a list in older snapshots) as
    'price_lag_1 (0.62), price_lag_7 (0.55)', largest score first, or 'ninguna'."""
    if not raw:
        return "ninguna"
    try:
        parsed = json.loads(raw)
    except ValueError:
        return raw
    if isinstance(parsed, dict):
        ranked = sorted(parsed.items(), key=lambda kv: -(kv[1] if isinstance(kv[1], (int, float)) else 0))
        items = [f"{c} ({number(s)})" if isinstance(s, (int, float)) else str(c) for c, s in ranked]
    elif isinstance(parsed, list):
        items = [str(c) for c in parsed]
    else:
        items = [str(parsed)]
    return ", ".join(items) if items else "ninguna"


def drift_share(share: float | None, n_columns: int | None, severity: str | None) -> str:
    """'deriva 35 % de 12 columnas'; a check that could not measure says why instead of '— de —'."""
    if share is None:
        if severity == "not_enough_data":
            return "sin medir: datos insuficientes"
        return "sin medir"
    columns = f" de {n_columns} columnas" if n_columns else ""
    return f"deriva en el {share * 100:.0f} %{columns}"


def coverage_words(percent: float | None) -> str | None:
    """Realised coverage of the 80 % band against its promise, as a trader reads it."""
    if percent is None:
        return None
    if percent > 88:
        return "de 80 % esperado: banda más ancha de lo necesario"
    if percent < 72:
        return "de 80 % esperado: banda demasiado estrecha, riesgo subestimado"
    return "de 80 % esperado: banda bien calibrada"


SEVERITY_ES = {"pass": "OK", "warn": "Advertencia", "error": "Error", "not_enough_data": "Datos insuficientes"}


def for_display(
    frame: pl.DataFrame, fill: dict[str, str] | None = None, digits: dict[str, int] | None = None
) -> pl.DataFrame:
    """Dates and times as text, and every missing value as words: `fill[column]` if given
    (e.g. 'vigente' for an open period), else '—'. Numeric columns without gaps stay numeric
    (sortable); those with gaps become text rounded to `digits[column]` (default 2)."""
    fill, digits = fill or {}, digits or {}
    out = []
    for name, dtype in frame.schema.items():
        col = pl.col(name)
        text = fill.get(name, MISSING)
        if dtype == pl.Date:
            out.append(col.dt.strftime("%Y-%m-%d").fill_null(text))
        elif isinstance(dtype, pl.Datetime):
            out.append(col.dt.strftime("%Y-%m-%d %H:%M").fill_null(text))
        elif dtype == pl.Boolean and frame[name].null_count():
            out.append(col.replace_strict({True: "sí", False: "no"}, default=text, return_dtype=pl.String))
        elif dtype.is_numeric() and frame[name].null_count():
            d = digits.get(name, 0 if dtype.is_integer() else 2)
            # formatted in Python, not in a polars `map_elements`: its callback runs on polars' thread
            # pool and needs the GIL, which another session's `to_pandas` holds while it waits on that
            # pool: two viewers at once hung the server for good
            values = [text if v is None else number(v, d) for v in frame[name].to_list()]
            out.append(pl.lit(pl.Series(name, values, dtype=pl.String)))
        elif dtype == pl.String:
            out.append(pl.when(col.is_null() | (col.str.strip_chars() == "")).then(pl.lit(text)).otherwise(col))
        else:
            out.append(col)
    return frame.select([e.alias(n) for e, n in zip(out, frame.columns, strict=True)])


OPERATING_GROUP_NAMES = {"demand": "la demanda", "hydrology": "la hidrología (embalses y aportes)", "enso": "el índice ENSO (ONI)"}


def operating_groups(text: str) -> str:
    """'hydrology,enso' (operating_features.format_groups) -> 'la hidrología (embalses y aportes) y el índice ENSO (ONI)'."""
    names = [OPERATING_GROUP_NAMES.get(g.strip(), g.strip()) for g in text.split(",") if g.strip()]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " y " + names[-1]
