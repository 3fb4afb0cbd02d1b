"""Domain records shared by every layer. Pure data: no I/O, no SDK imports."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

Sentiment = Literal["bullish", "bearish", "neutral"]
SENTIMENTS: tuple[Sentiment, ...] = ("bearish", "bullish", "neutral")
Side = Literal["buy", "sell"]


@dataclass(frozen=True)
class Article:
    """A news item as every news provider delivers it."""

    id: str  # provider-scoped natural key, e.g. "sim:42" or "alpaca:123456"
    headline: str
    symbols: tuple[str, ...]
    created_at: datetime
    provider: str = "sim"
    summary: str = ""
    source: str = ""
    url: str = ""

    @property
    def text(self) -> str:
        return f"{self.headline}. {self.summary}".strip(". ") if self.summary else self.headline


@dataclass(frozen=True)
class Score:
    """One scorer's view of one article for one symbol."""

    article_id: str
    symbol: str
    sentiment: Sentiment
    conviction: int  # 0..100
    reason: str = ""
    scorer: str = ""


@dataclass(frozen=True)
class Position:
    symbol: str
    qty: float
    avg_price: float
    opened_at: datetime
    source: str = ""
    signal_id: str = ""
    high_water: float = 0.0


@dataclass(frozen=True)
class Signal:
    """A wish to trade, before sizing and the risk gate."""

    id: str
    symbol: str
    side: Side
    source: str  # "sentiment", "model", "exit"
    strength: float  # 0..1 (conviction / 100 or a model probability)
    created_at: datetime
    reason: str = ""
    ref: str = ""  # the article id, model name or position behind it
    asset_class: str = "equity"
    extra: dict = field(default_factory=dict)
