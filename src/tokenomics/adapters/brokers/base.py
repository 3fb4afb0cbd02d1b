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
    qty: float
    price: float
    fee: float
    ts: str


@dataclass(frozen=True)
class OrderUpdate:
    client_order_id: str
    status: str  # submitted | partially_filled | filled | rejected | canceled
    broker_order_id: str = ""
    fills: tuple[Fill, ...] = field(default_factory=tuple)
    error: str = ""

    @property
    def filled_qty(self) -> float:
        return sum(f.qty for f in self.fills)


class Broker(Protocol):
    name: str

    def get_order(self, client_order_id: str) -> OrderUpdate | None:
        """The broker's view of an order, or None if it never received it."""

    def submit(self, req: OrderRequest) -> OrderUpdate: ...
