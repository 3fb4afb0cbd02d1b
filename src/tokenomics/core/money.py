"""Decimal-safe rounding at the broker edge: cents, lot sizes, price ticks."""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal

CENT = Decimal("0.01")


def cents(x: float) -> float:
    return float(Decimal(str(x)).quantize(CENT, rounding=ROUND_HALF_EVEN))


def pct(x: float) -> str:
    """A percentage for messages: 2 decimals at most, no float noise (7.5765 -> '7.58', 10.0 -> '10')."""
    return f"{round(float(x), 2):g}"


def usd(x: float) -> str:
    """Money for messages: cents."""
    return f"{float(x):.2f}"


def floor_to(x: float, step: float) -> float:
    """Round x down to a multiple of step (never buy more than the cash allows)."""
    d, s = Decimal(str(x)), Decimal(str(step))
    return float((d / s).to_integral_value(rounding=ROUND_DOWN) * s)


def round_to(x: float, step: float) -> float:
    d, s = Decimal(str(x)), Decimal(str(step))
    return float((d / s).to_integral_value(rounding=ROUND_HALF_EVEN) * s)


def lot_size(asset_class: str) -> float:
    """Smallest tradable quantity: fractional shares to 1e-6, crypto to 1e-8."""
    return 1e-8 if asset_class == "crypto" else 1e-6
