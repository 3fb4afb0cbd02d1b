"""Exit rules for a held long position. First rule that fires wins."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ExitRules:
    stop_loss_pct: float
    take_profit_pct: float
    max_hold_days: int
    exit_on_bearish: bool
    bearish_min_conviction: int


def exit_reason(
    *,
    entry_price: float,
    price: float,
    days_held: int,
    rules: ExitRules,
    bearish_conviction: int | None = None,
) -> str | None:
    """Why the position should be closed now, or None to keep it.

    bearish_conviction is the strongest bearish score for the symbol since entry (None if none).
    """
    change_pct = (price / entry_price - 1.0) * 100.0
    if change_pct <= -rules.stop_loss_pct:
        return "stop_loss"
    if change_pct >= rules.take_profit_pct:
        return "take_profit"
    if days_held >= rules.max_hold_days:
        return "max_hold"
    if rules.exit_on_bearish and bearish_conviction is not None and bearish_conviction >= rules.bearish_min_conviction:
        return "bearish_news"
    return None
