"""Account arithmetic: fills into positions, positions into equity, closed positions into trades."""

from __future__ import annotations

from dataclasses import dataclass

from tokenomics.core.money import cents


@dataclass(frozen=True)
class FillResult:
    qty: float  # remaining quantity (0: position closed)
    avg_price: float
    cost: float
    fees: float
    realized: float | None  # P&L of the round trip when this fill closes the position


def apply_fill(
    *, qty: float, avg_price: float, cost: float, fees: float, side: str, fill_qty: float, price: float, fee: float
) -> FillResult:
    """Apply one fill to a long position (qty may be 0 for a new one).

    cost is the position's gross cost in cents as its fills paid it and fees its fees, so the
    realized P&L of a round trip equals the sum of its fills' cash flows to the cent.
    """
    gross = cents(fill_qty * price)
    if side == "buy":
        new_qty = qty + fill_qty
        return FillResult(new_qty, (qty * avg_price + fill_qty * price) / new_qty, cents(cost + gross),
                          cents(fees + fee), None)
    if fill_qty > qty + 1e-12:
        raise ValueError(f"sell of {fill_qty} exceeds the position of {qty}")
    remaining = qty - fill_qty
    if remaining <= 1e-12:
        total_fees = cents(fees + fee)
        return FillResult(0.0, avg_price, 0.0, total_fees, cents(gross - cost - total_fees))
    return FillResult(remaining, avg_price, cents(cost * remaining / qty), cents(fees + fee), None)


def cash_flow(side: str, qty: float, price: float, fee: float) -> float:
    """Signed cash effect of a fill, in cents: buys spend, sells receive, fees always cost."""
    gross = qty * price
    return cents(-gross - fee if side == "buy" else gross - fee)


def equity(cash: float, market_values: list[float]) -> float:
    return cents(cash + sum(market_values))
