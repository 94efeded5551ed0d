"""Percentiles, nearest-rank, in the unit given."""

from __future__ import annotations

import math


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)

    def rank(p: float) -> float:
        return round(ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)], 2)

    return {"p50": rank(50), "p99": rank(99), "max": round(ordered[-1], 2), "n": len(ordered)}
