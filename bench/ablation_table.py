"""The operating-data ablation table (bench/results/ablation.md) from bench/results/validation.jsonl.

Rows: the runs labelled `ablation:<groups>` (bench/validate_forecaster.py --groups ...) on the
validation periods co_val18 and co_val22; MAE / naive_d MAE uses the naive_d run of the same
period. Validation periods only: the test periods are run once by the lead.

    .venv/bin/python bench/ablation_table.py            # prints the Markdown table
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "results" / "validation.jsonl"
PERIODS = {"co_val18": "2018-01-01..2018-12-31", "co_val22": "2022-01-01..2022-12-31"}


def rows(label_prefix: str = "ablation:") -> list[dict]:
    runs = [json.loads(line) for line in OUT.read_text().splitlines() if line.strip()]
    runs = [r for r in runs if r.get("period") in PERIODS and str(r.get("label", "")).startswith(label_prefix)]
    naive = {r["period"]: r for r in runs if r["model"] == "naive_d"}
    latest: dict[tuple[str, str], dict] = {}
    for r in runs:
        if r["model"] == "forecaster":
            latest[(r["period"], r["label"])] = r  # a rerun replaces the earlier line
    out = []
    for (period, label), r in sorted(latest.items()):
        nd = naive.get(period)
        out.append({
            "period": period, "label": label[len(label_prefix):], "groups": ",".join(r.get("operating_groups") or []) or "none",
            "rmae": r["rmae"], "mae": r["mae"], "ratio": r["mae"] / nd["mae"] if nd else None, "coverage": r["coverage_80"],
        })
    return out


def table(label_prefix: str = "ablation:") -> str:
    lines = ["| period | variant | groups | rMAE | MAE (COP/kWh) | MAE / naive_d MAE | coverage 10-90 |", "|---|---|---|---|---|---|---|"]
    for r in rows(label_prefix):
        ratio = f"{r['ratio']:.3f}" if r["ratio"] is not None else "-"
        lines.append(f"| {r['period']} ({PERIODS[r['period']]}) | {r['label']} | {r['groups']} | {r['rmae']:.4f} | {r['mae']:.2f} | {ratio} | {r['coverage']:.3f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(sys.argv[1] if len(sys.argv) > 1 else "ablation:"))
