"""The pre-trade risk gate and the loss-limit halts. Every entry order passes through `gate`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Decision = Literal["accept", "shrink", "reject"]


@dataclass(frozen=True)
class RiskLimits:
    max_open_positions: int
    max_position_pct: float  # of equity, in percent
    min_order_usd: float
    daily_loss_limit_pct: float
    monthly_loss_limit_pct: float
    long_only: bool = True


@dataclass(frozen=True)
class Portfolio:
    cash: float
    equity: float
    positions: dict[str, float] = field(default_factory=dict)  # symbol -> market value
    pending_entries: dict[str, float] = field(default_factory=dict)  # symbol -> notional not yet filled
    halts: tuple[str, ...] = ()  # rules currently halting new entries


@dataclass(frozen=True)
class Proposal:
    symbol: str
    side: Literal["buy", "sell"]
    notional: float
    intent: Literal["entry", "exit"] = "entry"
    cost_rate: float = 0.0  # fees + slippage as a fraction of notional


@dataclass(frozen=True)
class GateDecision:
    decision: Decision
    approved: float
    rule: str
    detail: str

    @property
    def accepted(self) -> bool:
        return self.decision != "reject"


def gate(p: Proposal, pf: Portfolio, limits: RiskLimits) -> GateDecision:
    """Accept, shrink or reject one proposed order, naming the rule that decided."""
    if p.intent == "exit":
        if p.symbol not in pf.positions:
            return GateDecision("reject", 0.0, "no_position", f"no open position in {p.symbol} to exit")
        return GateDecision("accept", p.notional, "exit", "exits reduce risk and are always allowed")
    if pf.halts:
        return GateDecision("reject", 0.0, pf.halts[0], f"new entries halted by {', '.join(pf.halts)}")
    if p.notional <= 0:
        return GateDecision("reject", 0.0, "positive_size", "order size must be positive")
    if p.side == "sell" and limits.long_only:
        return GateDecision("reject", 0.0, "long_only", "short entries are disabled (risk.long_only)")
    if p.symbol in pf.positions:
        return GateDecision("reject", 0.0, "already_held", f"already holding {p.symbol}")
    others_pending = {s: v for s, v in pf.pending_entries.items() if s != p.symbol}
    open_count = len(pf.positions) + len(others_pending)
    if open_count >= limits.max_open_positions:
        return GateDecision(
            "reject", 0.0, "max_open_positions",
            f"{open_count} open or pending positions, limit {limits.max_open_positions}",
        )
    approved, rule, detail = p.notional, "all_limits", "within every limit"
    cap = limits.max_position_pct / 100.0 * pf.equity
    if approved > cap:
        approved, rule = cap, "max_position_pct"
        detail = f"capped at {limits.max_position_pct}% of equity {pf.equity:.2f} = {cap:.2f}"
    available = pf.cash - sum(others_pending.values())
    affordable = max(available, 0.0) / (1.0 + p.cost_rate)
    if approved > affordable:
        approved, rule = affordable, "cash"
        detail = f"shrunk to the cash available after pending entries and costs: {affordable:.2f}"
    approved = int(approved * 100) / 100.0  # round down to the cent: never exceed a cap
    if approved < limits.min_order_usd or approved <= 0:
        return GateDecision("reject", 0.0, rule if rule != "all_limits" else "min_order_usd",
                            f"{detail}; below min_order_usd {limits.min_order_usd}")
    if approved < p.notional:
        return GateDecision("shrink", approved, rule, detail)
    return GateDecision("accept", approved, rule, detail)


def loss_halts(
    *, equity: float, day_start: float | None, month_start: float | None, limits: RiskLimits
) -> list[tuple[str, str]]:
    """The loss-limit rules that halt new entries for the rest of the current period."""
    out = []
    for rule, start, limit in (
        ("daily_loss_limit", day_start, limits.daily_loss_limit_pct),
        ("monthly_loss_limit", month_start, limits.monthly_loss_limit_pct),
    ):
        if start and start > 0:
            loss_pct = (start - equity) / start * 100.0
            if loss_pct >= limit:
                out.append((rule, f"equity {equity:.2f} is {loss_pct:.2f}% below the period start {start:.2f}; "
                                  f"limit {limit}%"))
    return out
