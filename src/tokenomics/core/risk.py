"""The pre-trade risk gate and the loss-limit halts. Every entry order passes through `gate`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from tokenomics.core.money import pct, usd

Decision = Literal["accept", "shrink", "reject"]


@dataclass(frozen=True)
class RiskLimits:
    max_open_positions: int
    max_position_pct: float  # of equity, in percent
    min_order_usd: float
    daily_loss_limit_pct: float
    monthly_loss_limit_pct: float
    long_only: bool = True
    max_leverage: float = 1.0  # gross exposure after the order, as a multiple of equity
    max_drawdown_pct: float = 100.0  # fall from the equity peak that latches a halt
    max_asset_class_pct: dict[str, float] = field(default_factory=dict)  # class -> % of equity (absent: no cap)


@dataclass(frozen=True)
class Portfolio:
    cash: float
    equity: float
    positions: dict[str, float] = field(default_factory=dict)  # symbol -> market value
    pending_entries: dict[str, float] = field(default_factory=dict)  # symbol -> notional not yet filled
    halts: tuple[str, ...] = ()  # rules currently halting new entries
    asset_classes: dict[str, str] = field(default_factory=dict)  # symbol -> asset class (default equity)
    cooling: tuple[str, ...] = ()  # symbols in their cooldown after a stop-loss exit

    def exposure(self, asset_class: str | None = None, exclude: str = "") -> float:
        """Market value of positions plus pending entries (of one asset class, or all)."""
        total = 0.0
        for book in (self.positions, self.pending_entries):
            for sym, value in book.items():
                if sym != exclude and (asset_class is None or self.asset_classes.get(sym, "equity") == asset_class):
                    total += value
        return total


@dataclass(frozen=True)
class Proposal:
    symbol: str
    side: Literal["buy", "sell"]
    notional: float
    intent: Literal["entry", "exit", "top_up"] = "entry"  # top_up: a buy of a symbol already held (rebalance)
    cost_rate: float = 0.0  # fees + slippage as a fraction of notional
    asset_class: str = "equity"


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
    """Accept, shrink or reject one proposed order, naming the rule that decided. Every buy passes
    here, a rebalance top-up of a held position included (intent top_up): it may add to the position
    (no already-held or open-positions rule: it opens none), and every cap counts what is held."""
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
    top_up = p.intent == "top_up" and p.symbol in pf.positions
    held = pf.positions.get(p.symbol, 0.0) if top_up else 0.0
    if p.symbol in pf.positions and not top_up:
        return GateDecision("reject", 0.0, "already_held", f"already holding {p.symbol}")
    if p.symbol in pf.cooling:
        return GateDecision("reject", 0.0, "stop_loss_cooldown",
                            f"{p.symbol} was stopped out recently (risk.stop_loss_cooldown_hours)")
    others_pending = {s: v for s, v in pf.pending_entries.items() if s != p.symbol}
    open_count = len(pf.positions) + len(others_pending)
    if open_count >= limits.max_open_positions and not top_up:
        return GateDecision(
            "reject", 0.0, "max_open_positions",
            f"{open_count} open or pending positions, limit {limits.max_open_positions}",
        )
    approved, rule, detail = p.notional, "all_limits", "within every limit"
    cap = limits.max_position_pct / 100.0 * pf.equity - held
    if approved > cap:
        approved, rule = max(cap, 0.0), "max_position_pct"
        detail = f"capped at {pct(limits.max_position_pct)}% of equity {pf.equity:.2f} = {cap + held:.2f}" + (
            f" for the whole position (held {held:.2f})" if held else "")
    class_cap = limits.max_asset_class_pct.get(p.asset_class)
    if class_cap is not None:
        room = class_cap / 100.0 * pf.equity - pf.exposure(p.asset_class, exclude=p.symbol) - held
        if approved > room:
            approved, rule = max(room, 0.0), "max_asset_class_pct"
            detail = (f"{p.asset_class} exposure capped at {pct(class_cap)}% of equity {pf.equity:.2f}; "
                      f"room left {max(room, 0.0):.2f}")
    room = limits.max_leverage * pf.equity - pf.exposure(exclude=p.symbol) - held
    if approved > room:
        approved, rule = max(room, 0.0), "max_leverage"
        detail = f"gross exposure capped at {pct(limits.max_leverage)}x equity {pf.equity:.2f}; room left {max(room, 0.0):.2f}"
    available = pf.cash - sum(others_pending.values())
    affordable = max(available, 0.0) / (1.0 + p.cost_rate)
    if approved > affordable:
        approved, rule = affordable, "cash"
        detail = f"shrunk to the cash available after pending entries and costs: {affordable:.2f}"
    approved = int(approved * 100) / 100.0  # round down to the cent: never exceed a cap
    if approved < limits.min_order_usd or approved <= 0:
        return GateDecision("reject", 0.0, rule if rule != "all_limits" else "min_order_usd",
                            f"{detail}; below min_order_usd {usd(limits.min_order_usd)}")
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
                                  f"limit {pct(limit)}%"))
    return out


def drawdown_halt(*, equity: float, peak: float | None, limits: RiskLimits) -> tuple[str, str] | None:
    """The max-drawdown rule: fires (and latches, until a person lifts it) at the limit."""
    if not peak or peak <= 0:
        return None
    dd_pct = (peak - equity) / peak * 100.0
    if dd_pct >= limits.max_drawdown_pct:
        return ("max_drawdown", f"equity {equity:.2f} is {dd_pct:.2f}% below the peak {peak:.2f}; "
                                f"limit {pct(limits.max_drawdown_pct)}%; lift with `tokenomics risk resume`")
    return None
