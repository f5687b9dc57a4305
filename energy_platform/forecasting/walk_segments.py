"""A walk forward split into contiguous segments, each walked in its own process.

A daily-recalibration backtest is a chain of warm refits (each day starts from the previous
day's nets): one core's work, however many the machine has. Cut into segments, the chain runs
on all of them. Each segment is walked by fresh copies of the models, so it starts with a cold
fit as any backtest's first day does: segment k's forecasts are exactly those of a backtest run
from its first day (`test_backtest_workers.py`), and the only change against one process is the
warm chain cut at the boundaries. Segments start on a refit day, so every model refits on the
same days as in one process.
"""

from __future__ import annotations

import math
import multiprocessing
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import date

import numpy as np


def segment_bounds(n_days: int, recalibrate_every: int, workers: int) -> list[tuple[int, int]]:
    """[start, end) day indices of at most `workers` contiguous segments, each starting on a
    refit day (a multiple of `recalibrate_every`), their numbers of refits as equal as can be."""
    blocks = math.ceil(n_days / recalibrate_every)
    k = max(1, min(workers, blocks))
    sizes = [blocks // k + (1 if i < blocks % k else 0) for i in range(k)]
    bounds, done = [], 0
    for size in sizes:
        start, done = done * recalibrate_every, done + size
        bounds.append((start, min(done * recalibrate_every, n_days)))
    return bounds


def walk_in_segments(walk: Callable[..., dict], panel, models: Sequence, days: list[date], recalibrate_every: int,
                     window_days: int, workers: int) -> dict:
    """`walk(panel, models, days, recalibrate_every, window_days, None)` over the segments in
    parallel processes (spawned: torch's thread pools do not survive a fork), merged as one walk's
    record. The caller's models are not fitted: each process fits its own copies."""
    bounds = segment_bounds(len(days), recalibrate_every, workers)
    with ProcessPoolExecutor(max_workers=len(bounds), mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(walk, panel, list(models), days[a:b], recalibrate_every, window_days, None) for a, b in bounds]
        parts = [f.result() for f in futures]
    return {name: _merge([p[name] for p in parts]) for name in parts[0]}


def _merge(records: list[dict]) -> dict:
    return {
        "q": np.concatenate([r["q"] for r in records]),
        "fit": sum(r["fit"] for r in records),
        "fits": sum(r["fits"] for r in records),
        "pred": sum(r["pred"] for r in records),
        "spread": [s for r in records for s in r["spread"]],
        "groups": dict(sum((Counter(r["groups"]) for r in records), Counter())),
    }
