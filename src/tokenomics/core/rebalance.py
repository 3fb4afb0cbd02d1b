"""Rebalancing arithmetic: simple target weights, drift, and the trades that move current to target.

Pure: plain floats and dicts in, plain data out. The optimisers (HRP, mean-variance) live in the
portfolio library behind `adapters.optimizer`; this module does what is not that library's job.

Weights are fractions of equity (cash + positions at current prices). Targets are fully invested:
they sum to 1 over the target symbols, so the target cash weight is 0.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field, replace

from tokenomics.core import risk


# --- simple target weights -------------------------------------------------------------------
def equal_weights(symbols: list[str]) -> dict[str, float]:
    if not symbols:
        raise ValueError("equal weights need at least one symbol")
    return {s: 1.0 / len(symbols) for s in symbols}


def volatility(returns: list[float]) -> float:
    """Sample standard deviation (ddof=1) of the finite returns."""
    xs = [r for r in returns if r is not None and math.isfinite(r)]
    if len(xs) < 2:
        raise ValueError("volatility needs at least two returns")
    mean = sum(xs) / len(xs)
    return math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1))


def inverse_vol_weights(vols: dict[str, float]) -> dict[str, float]:
    """Weights proportional to 1 / volatility (the naive risk parity)."""
    bad = [s for s, v in vols.items() if not (v > 0 and math.isfinite(v))]
    if bad or not vols:
        raise ValueError(f"inverse volatility needs a positive volatility for every symbol (not: {bad})")
    inv = {s: 1.0 / v for s, v in vols.items()}
    total = sum(inv.values())
    return {s: x / total for s, x in inv.items()}


def clip_weights(weights: dict[str, float], min_weight: float, max_weight: float) -> dict[str, float]:
    """Fit weights into {sum = 1, min <= w <= max} as clip(t * w, min, max) for the one scale t that
    makes them sum to 1: weights off the bounds keep their proportions. Raises ValueError when the
    bounds cannot hold a fully invested portfolio of these weights."""
    check_bounds(len(weights), min_weight, max_weight)
    if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
        raise ValueError("weights must be non-negative with a positive sum")

    def fitted(t: float) -> dict[str, float]:
        return {s: min(max(t * w, min_weight), max_weight) for s, w in weights.items()}

    lo, hi = 0.0, 1.0
    for _ in range(200):
        if sum(fitted(hi).values()) >= 1.0:
            break
        hi *= 2.0
    else:
        raise ValueError("weights could not be fitted within the bounds")
    for _ in range(200):  # bisection on the scale: the sum is continuous and non-decreasing in t
        mid = (lo + hi) / 2.0
        lo, hi = (mid, hi) if sum(fitted(mid).values()) < 1.0 else (lo, mid)
    return fitted(hi)


def check_bounds(n: int, min_weight: float, max_weight: float) -> None:
    if not 0 <= min_weight <= max_weight <= 1:
        raise ValueError(f"need 0 <= min weight ({min_weight}) <= max weight ({max_weight}) <= 1")
    if n * min_weight > 1 + 1e-12:
        raise ValueError(f"{n} symbols at min weight {min_weight} exceed 100%")
    if n * max_weight < 1 - 1e-12:
        raise ValueError(f"{n} symbols at max weight {max_weight} cannot reach 100%")


# --- drift -----------------------------------------------------------------------------------
def weights_of(values: dict[str, float], cash: float) -> dict[str, float]:
    """Current weights of positions in equity (cash + positions); cash's own weight is 1 - sum."""
    eq = cash + sum(values.values())
    if eq <= 0:
        raise ValueError(f"equity must be positive to have weights (got {eq:.2f})")
    return {s: v / eq for s, v in values.items()}


def drift_score(current: dict[str, float], target: dict[str, float]) -> float:
    """Half the L1 distance between two allocations, cash included (0 = on target, 1 = disjoint)."""
    symbols = set(current) | set(target)
    cash_c = 1.0 - sum(current.values())
    cash_t = 1.0 - sum(target.values())
    gap = sum(abs(current.get(s, 0.0) - target.get(s, 0.0)) for s in symbols) + abs(cash_c - cash_t)
    return gap / 2.0


# --- the plan --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Trade:
    symbol: str
    side: str  # buy | sell
    current_weight: float
    target_weight: float
    notional: float  # USD, positive
    qty: float | None  # sells: the quantity to sell; buys: None (sent as notional)
    price: float
    fee: float
    slippage: float
    status: str  # planned | skipped
    reason: str  # why planned / why skipped

    def as_dict(self) -> dict:
        return {"symbol": self.symbol, "side": self.side, "current_weight": round(self.current_weight, 6),
                "target_weight": round(self.target_weight, 6),
                "weight_change": round(self.target_weight - self.current_weight, 6),
                "notional": round(self.notional, 2), "qty": self.qty, "price": self.price,
                "fee": round(self.fee, 2), "slippage": round(self.slippage, 2), "status": self.status,
                "reason": self.reason}


@dataclass(frozen=True)
class Plan:
    equity: float
    cash: float
    current: dict[str, float]
    target: dict[str, float]
    drift: float
    trades: list[Trade] = field(default_factory=list)

    @property
    def planned(self) -> list[Trade]:
        return [t for t in self.trades if t.status == "planned"]

    @property
    def turnover(self) -> float:
        return sum(t.notional for t in self.planned)

    @property
    def fees(self) -> float:
        return sum(t.fee for t in self.planned)

    @property
    def slippage(self) -> float:
        return sum(t.slippage for t in self.planned)

    def after(self) -> dict[str, float]:
        """Estimated weights once the planned trades fill (costs taken from cash)."""
        values = {s: w * self.equity for s, w in self.current.items()}
        for t in self.planned:
            values[t.symbol] = values.get(t.symbol, 0.0) + (t.notional if t.side == "buy" else -t.notional)
        eq = self.equity - self.fees - self.slippage
        return {s: max(v, 0.0) / eq for s, v in values.items() if v > 1e-9}


def plan_rebalance(*, values: dict[str, float], qtys: dict[str, float], prices: dict[str, float], cash: float,
                   target: dict[str, float], min_trade_usd: float, band: float, fee_bps: float,
                   slippage_bps: float) -> Plan:
    """The trades that move current weights to `target`.

    values/qtys: market value and quantity of each held position; prices: current price of every
    held or target symbol. A symbol whose weight is within `band` of its target (absolute weight,
    e.g. 0.01 = one percentage point) is left alone, as is a trade under `min_trade_usd`; a held
    symbol outside the target (target 0) is always sold, its whole quantity. Targets are sized on equity net
    of the estimated costs of the trades, so the buys stay affordable.
    """
    if band < 0 or min_trade_usd < 0:
        raise ValueError("band and min_trade_usd must not be negative")
    total = sum(target.values())
    if not target or abs(total - 1.0) > 1e-6 or any(w < -1e-12 for w in target.values()):
        raise ValueError(f"target weights must be non-negative and sum to 1 (sum {total:.6f})")
    equity = cash + sum(values.values())
    current = weights_of(values, cash)
    rate = (fee_bps + slippage_bps) / 1e4
    # costs come out of equity: size on equity net of the costs of the gross turnover
    gross = sum(abs(target.get(s, 0.0) * equity - values.get(s, 0.0)) for s in set(target) | set(values))
    investable = equity - gross * rate
    trades = []
    for s in sorted(set(target) | set(values)):
        cw, tw = current.get(s, 0.0), target.get(s, 0.0)
        delta = tw * investable - values.get(s, 0.0)
        side = "buy" if delta > 0 else "sell"
        full_exit = tw == 0.0 and qtys.get(s, 0.0) > 0
        notional = values.get(s, 0.0) if full_exit else abs(delta)
        price = prices[s]
        qty = None
        if side == "sell":
            qty = qtys.get(s, 0.0) if full_exit else min(notional / price, qtys.get(s, 0.0))
        status, reason = "planned", ("not in the target: sell all" if full_exit else f"{side} to target")
        if full_exit:
            pass  # a position outside the target is always closed, however small
        elif band > 0 and abs(tw - cw) <= band:
            status, reason = "skipped", f"within the no-trade band ({band:g})"
        elif notional < min_trade_usd or notional <= 0:
            status, reason = "skipped", f"below min_trade_usd ({min_trade_usd:g})"
        trades.append(Trade(s, side, cw, tw, notional, qty, price, notional * fee_bps / 1e4,
                            notional * slippage_bps / 1e4, status, reason))
    trades.sort(key=lambda t: (t.side != "sell", t.symbol))  # sells first: they free the cash for buys
    return Plan(equity, cash, current, dict(target), drift_score(current, target), trades)


def plan_id(target: dict[str, float], day: str) -> str:
    """Deterministic id of 'these target weights, this day': executing it twice sends nothing new."""
    doc = json.dumps({"day": day, "target": {s: round(w, 6) for s, w in sorted(target.items())}},
                     separators=(",", ":"))
    return hashlib.sha256(doc.encode()).hexdigest()[:16]


def gate_buy(symbol: str, notional: float, held_value: float, pf: risk.Portfolio, limits: risk.RiskLimits,
             cost_rate: float, asset_class: str = "equity") -> risk.GateDecision:
    """The pre-trade gate for a rebalance buy: the one gate every buy passes (risk.gate). A new position
    is an ordinary entry; a top-up of a held position is gated as a top_up: halts, the stop-loss
    cooldown, max_position_pct on the whole position, and the asset-class cap and max_leverage
    counting the value held (the already-held and open-positions rules, meant for new entries, do not
    apply: it opens no position)."""
    if held_value > 0:
        pf = replace(pf, positions={**pf.positions, symbol: held_value})
        return risk.gate(risk.Proposal(symbol, "buy", notional, "top_up", cost_rate, asset_class), pf, limits)
    return risk.gate(risk.Proposal(symbol, "buy", notional, "entry", cost_rate, asset_class), pf, limits)
