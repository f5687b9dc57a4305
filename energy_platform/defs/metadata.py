"""Materialization metadata helpers shared by the assets."""

from __future__ import annotations

import dagster as dg
import polars as pl


def markdown_preview(frame: pl.DataFrame, rows: int = 10) -> dg.MetadataValue:
    """A Markdown table the Dagster UI renders (Polars formats it)."""
    with pl.Config(
        tbl_formatting="ASCII_MARKDOWN",
        tbl_hide_column_data_types=True,
        tbl_hide_dataframe_shape=True,
        tbl_rows=rows,
        tbl_cols=-1,
        float_precision=2,
    ):
        return dg.MetadataValue.md(str(frame.head(rows)))
