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
    partial: float = 0.0  # gain (before fees) of the parts sold while the position stays open
    sold_qty: float = 0.0  # quantity of those parts
    sold_cost: float = 0.0  # and their share of the cost


def apply_fill(
    *, qty: float, avg_price: float, cost: float, fees: float, side: str, fill_qty: float, price: float, fee: float,
    partial: float = 0.0, sold_qty: float = 0.0, sold_cost: float = 0.0,
) -> FillResult:
    """Apply one fill to a long position (qty may be 0 for a new one).

    cost is the position's gross cost in cents as its fills paid it, fees its fees, and partial the
    gain of the parts already sold (a partial exit, a partial rebalance sell), so the realized P&L of
    a round trip, however many fills it took, equals the sum of its fills' cash flows to the cent.
    """
    gross = cents(fill_qty * price)
    if side == "buy":
        new_qty = round(qty + fill_qty, 12)  # lots are >= 1e-8: drop float noise, keep whole lots
        return FillResult(new_qty, (qty * avg_price + fill_qty * price) / new_qty, cents(cost + gross),
                          cents(fees + fee), None, partial, sold_qty, sold_cost)
    if fill_qty > qty + 1e-12:
        raise ValueError(f"sell of {fill_qty} exceeds the position of {qty}")
    remaining = round(qty - fill_qty, 12)  # 0.00991482 - 0.00330494 is 0.0066098799...: a lot short
    if remaining <= 1e-12:
        total_fees = cents(fees + fee)
        return FillResult(0.0, avg_price, 0.0, total_fees, cents(gross - cost + partial - total_fees),
                          partial, sold_qty + fill_qty, cents(sold_cost + cost))
    part_cost = cents(cost * fill_qty / qty)
    return FillResult(remaining, avg_price, cents(cost - part_cost), cents(fees + fee), None,
                      cents(partial + gross - part_cost), sold_qty + fill_qty, cents(sold_cost + part_cost))


def cash_flow(side: str, qty: float, price: float, fee: float) -> float:
    """Signed cash effect of a fill, in cents: buys spend, sells receive, fees always cost."""
    gross = cents(qty * price)  # as apply_fill books it: the notional in cents, then the fee
    return cents(-gross - fee if side == "buy" else gross - fee)


def equity(cash: float, market_values: list[float]) -> float:
    return cents(cash + sum(market_values))
