"""Reading a CSV file's text for the price and operating sources: gzip or plain, and a parser
error told as one line naming the line of the file (polars' own message can quote the whole rest
of a file after an unclosed quote, and speaks of options the user cannot set)."""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path

import polars as pl

from energy_platform.errors import one_line


def read_csv_text(path: Path, error: type[Exception], empty_hint: str = "") -> pl.DataFrame:
    """Every cell as text, for the caller's own parsing; `error` (the source's error type) names
    the file and what is wrong with it, `empty_hint` what an empty file should hold."""
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise error(f"{path}: not a readable gzip file ({exc})") from exc
    if not raw.strip():
        raise error(f"{path}: the file is empty" + (f"; {empty_hint}" if empty_hint else ""))
    try:
        return pl.read_csv(io.BytesIO(raw), infer_schema=False)
    except Exception as exc:  # polars raises several types for unreadable files
        raise error(f"{path}: not a readable CSV: {csv_problem(raw, exc)}") from exc


def csv_problem(raw: bytes, exc: Exception) -> str:
    """Where the file stops being a CSV: a row whose number of fields is not the header's, or a
    quote opened and never closed; else the parser's message, cut to one short line."""
    reader = csv.reader(io.StringIO(raw.decode("utf-8-sig", errors="replace"), newline=""))
    try:
        header = next(reader)
        end = reader.line_num
        for row in reader:
            start, end = end + 1, reader.line_num
            if end > start:
                return f"line {start}: a quoted field opened on this line runs over {end - start + 1} lines (a quote not closed?)"
            if row and len(row) != len(header):
                return f"line {start}: {len(row)} fields, the header has {len(header)}"
    except csv.Error as err:
        return f"line {reader.line_num}: {err}"
    message = one_line(exc)
    return message if len(message) <= 200 else message[:200] + " ..."
