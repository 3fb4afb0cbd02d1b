"""Position sizing: how many dollars a signal asks for (before the risk gate caps it)."""

from __future__ import annotations


def fixed_range(strength: float, *, min_usd: float, max_usd: float, floor: float = 0.0) -> float:
    """Map strength (0..1) linearly onto min_usd..max_usd, with `floor` mapping to min_usd.

    With floor = min_conviction / 100, a signal at the threshold gets min_usd and a
    certain one (strength 1) gets max_usd.
    """
    if not 0.0 <= floor < 1.0:
        raise ValueError("floor must be in [0, 1)")
    s = min(max(strength, floor), 1.0)
    frac = (s - floor) / (1.0 - floor)
    return round(min_usd + frac * (max_usd - min_usd), 2)
