"""The broker interface every adapter implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class OrderRequest:
    client_order_id: str
    symbol: str
    side: str  # "buy" | "sell"
    asset_class: str
    notional: float | None = None  # buys: dollars to spend
    qty: float | None = None  # sells (and qty buys): units


@dataclass(frozen=True)
class Fill:
    id: str
    qty: float  # units traded
    price: float
    fee: float  # in fee_currency
    ts: str
    fee_currency: str = ""  # "" = the quote currency (cash); a crypto buy's fee may come out of the coin received


@dataclass(frozen=True)
class Leg:
    """A child order the broker holds for one of ours (a bracket's take-profit or stop-loss)."""

    client_order_id: str
    broker_order_id: str
    kind: str  # take_profit | stop_loss
    status: str
    qty: float


@dataclass(frozen=True)
class OrderUpdate:
    client_order_id: str
    status: str  # submitted | partially_filled | filled | rejected | canceled
    broker_order_id: str = ""
    fills: tuple[Fill, ...] = field(default_factory=tuple)
    error: str = ""
    legs: tuple[Leg, ...] = field(default_factory=tuple)

    @property
    def filled_qty(self) -> float:
        return sum(f.qty for f in self.fills)


class Broker(Protocol):
    name: str

    def get_order(self, client_order_id: str) -> OrderUpdate | None:
        """The broker's view of an order, or None if it never received it."""

    def submit(self, req: OrderRequest) -> OrderUpdate: ...
