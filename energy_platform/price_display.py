"""How many decimals a price needs on screen: the platform runs on any market's unit."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable


def price_decimals(prices: Iterable[float | None]) -> int:
    """Enough decimals for three significant figures of a typical price: one for XM's COP/kWh
    (hundreds) or EUR/MWh (tens), four for EUR/kWh (0.04), where a fixed one printed 0.0."""
    sizes = [abs(p) for p in prices if p is not None and math.isfinite(p) and p != 0]
    if not sizes:
        return 1
    return max(1, min(6, 2 - math.floor(math.log10(statistics.median(sizes)))))
