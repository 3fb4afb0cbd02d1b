"""The simulated world: a seeded market whose prices react to a simulated news feed.

Headlines are real financial news tweets (TFNS validation split, MIT licence), never the
split the offline scorer was trained on. Each non-neutral headline moves its symbol's price in
the direction of its true label with probability `sim.move_probability`, at the symbol's next
trading step after publication, so a scorer that reads the news well has a measurable edge.

Everything is a pure function of (seed, step): the same store and config replay the same world.
Equities trade only in NYSE sessions (prices are flat while the market is closed); crypto 24/7.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from importlib import resources

import numpy as np

from tokenomics.adapters.calendar import MarketCalendar
from tokenomics.config import Settings
from tokenomics.core.bars import minutes_timeframe
from tokenomics.core.models import Article

BLOCK = 1024  # steps drawn per random block: extending the path never changes earlier steps
LABELS = {0: "bearish", 1: "bullish", 2: "neutral"}
_CASHTAG = re.compile(r"\$[A-Za-z][A-Za-z.]{0,5}\b")
_URL = re.compile(r"https?://\S+")


def load_headlines() -> list[tuple[str, str]]:
    """(text, label) pairs from the vendored TFNS validation split."""
    with resources.files("tokenomics.data").joinpath("tfns_valid.csv").open(encoding="utf-8") as fh:
        return [(row["text"], LABELS[int(row["label"])]) for row in csv.DictReader(fh)]


def ticker_tag(symbol: str) -> str:
    return "$" + symbol.split("/")[0]


def headline_for(text: str, symbol: str) -> str:
    """Put the simulated symbol where the original tweet named its own tickers."""
    text = _URL.sub("", text).strip()
    tag = ticker_tag(symbol)
    if _CASHTAG.search(text):
        return _CASHTAG.sub(tag, text)
    return f"{tag}: {text}"


@dataclass(frozen=True)
class SimNews:
    step: int
    index: int
    symbol: str
    headline: str
    label: str
    direction: int  # the price move it causes: +1, -1 or 0
    impact: float  # log-return magnitude
    offset: float  # how far before the step's time it was published, in steps (0..1)


class SimWorld:
    def __init__(self, settings: Settings, calendar: MarketCalendar):
        self.cfg = settings.sim
        self.symbols = settings.universe.symbols
        self.asset_classes = [settings.universe.asset_class(s) for s in self.symbols]
        self.calendar = calendar
        self.step_delta = timedelta(minutes=self.cfg.step_minutes)
        missing = [s for s in self.symbols if s not in self.cfg.start_prices]
        self.start_prices = np.array([self.cfg.start_prices.get(s, 100.0) for s in self.symbols])
        self.defaulted_prices = missing
        year = 365.25 * 24 * 60 / self.cfg.step_minutes  # crypto steps per year
        eq_year = 252 * 6.5 * 60 / self.cfg.step_minutes  # equity trading steps per year
        self.sigma = np.array(
            [
                self.cfg.crypto_vol_pct / 100 / math.sqrt(year)
                if ac == "crypto"
                else self.cfg.equity_vol_pct / 100 / math.sqrt(max(eq_year, 1.0))
                for ac in self.asset_classes
            ]
        )
        self._blocks: dict[int, dict[str, np.ndarray]] = {}
        self._closes: np.ndarray = self.start_prices[None, :].copy()  # row k: prices at step k
        self._trading: np.ndarray = np.ones((1, len(self.symbols)), dtype=bool)
        self._pending = np.zeros(len(self.symbols))

    @cached_property
    def headlines(self) -> list[tuple[str, str]]:
        return load_headlines()

    # --- time ----------------------------------------------------------------------------
    def time_of(self, step: int) -> datetime:
        return self.cfg.start + step * self.step_delta

    def step_at(self, dt: datetime) -> int:
        """The last step at or before dt."""
        return max(int((dt - self.cfg.start) / self.step_delta), 0)

    # --- randomness, block by block -------------------------------------------------------
    def _block(self, b: int) -> dict[str, np.ndarray]:
        if b not in self._blocks:
            rng = np.random.default_rng([self.cfg.seed, b])
            n = len(self.symbols)
            counts = rng.poisson(self.cfg.news_per_tick, BLOCK)
            total = int(counts.sum())
            self._blocks[b] = {
                "noise": rng.standard_normal((BLOCK, n)),
                "wick": np.abs(rng.standard_normal((BLOCK, n, 2))),
                "volume": rng.lognormal(10, 0.5, (BLOCK, n)),
                "counts": counts,
                "headline": rng.integers(0, len(self.headlines), total),
                "symbol": rng.integers(0, n, total),
                "follows": rng.random(total) < self.cfg.move_probability,
                "size": rng.uniform(0.5, 1.5, total),
                "offset": rng.random(total),
            }
        return self._blocks[b]

    def news(self, step: int) -> list[SimNews]:
        """Headlines published in the interval (step - 1, step]."""
        if step < 1:
            return []
        blk = self._block(step // BLOCK)
        i = step % BLOCK
        start = int(blk["counts"][:i].sum())
        out = []
        for j in range(start, start + int(blk["counts"][i])):
            text, label = self.headlines[int(blk["headline"][j])]
            sym = self.symbols[int(blk["symbol"][j])]
            sign = {"bullish": 1, "bearish": -1, "neutral": 0}[label]
            direction = sign if blk["follows"][j] else -sign
            out.append(
                SimNews(step, j - start, sym, headline_for(text, sym), label, direction,
                        self.cfg.news_impact_pct / 100 * float(blk["size"][j]), float(blk["offset"][j]))
            )
        return out

    def articles(self, step: int) -> list[Article]:
        t = self.time_of(step)
        out = []
        for n in self.news(step):
            created = t - self.step_delta * n.offset
            out.append(
                Article(
                    id=f"sim:{step}:{n.index}",
                    headline=n.headline,
                    symbols=(n.symbol,),
                    created_at=created.replace(microsecond=0),
                    provider="sim",
                    source="sim-wire",
                    url="",
                )
            )
        return out

    # --- prices ---------------------------------------------------------------------------
    def _extend(self, upto: int) -> None:
        have = len(self._closes) - 1
        if upto <= have:
            return
        n = len(self.symbols)
        times = [int(self.time_of(k).timestamp()) for k in range(have + 1, upto + 1)]
        open_now = np.array(self.calendar.open_mask(times), dtype=bool)
        closes = np.empty((upto - have, n))
        trading = np.empty((upto - have, n), dtype=bool)
        last = self._closes[-1].copy()
        crypto = np.array([ac == "crypto" for ac in self.asset_classes])
        for r, k in enumerate(range(have + 1, upto + 1)):
            for item in self.news(k - 1):  # news published up to the previous step moves this one
                self._pending[self.symbols.index(item.symbol)] += item.direction * item.impact
            trades = crypto | open_now[r]
            ret = self._block(k // BLOCK)["noise"][k % BLOCK] * self.sigma + self._pending
            last = np.where(trades, last * np.exp(ret), last)
            self._pending = np.where(trades, 0.0, self._pending)
            closes[r] = np.round(last, 2)
            trading[r] = trades
        self._closes = np.vstack([self._closes, closes])
        self._trading = np.vstack([self._trading, trading])

    def price(self, symbol: str, step: int) -> float:
        self._extend(step)
        return float(self._closes[step, self.symbols.index(symbol)])

    def prices(self, step: int) -> dict[str, float]:
        self._extend(step)
        return {s: float(self._closes[step, i]) for i, s in enumerate(self.symbols)}

    def bars(self, first: int, last: int) -> list[dict]:
        """OHLCV bars for the steps in [first, last] in which each symbol traded.

        The bar of step k covers (t[k-1], t[k]] and is keyed by its open time t[k-1], as
        exchanges key theirs: it is known only once t[k] has passed.
        """
        self._extend(last)
        out = []
        tf = minutes_timeframe(self.cfg.step_minutes)
        for k in range(max(first, 1), last + 1):
            blk = self._block(k // BLOCK)
            ts = self.time_of(k - 1).isoformat(timespec="seconds")
            for i, sym in enumerate(self.symbols):
                if not self._trading[k, i]:
                    continue
                o, c = float(self._closes[k - 1, i]), float(self._closes[k, i])
                wick = blk["wick"][k % BLOCK, i] * self.sigma[i] * 0.5
                out.append({
                    "source": "sim", "symbol": sym, "timeframe": tf, "ts": ts, "open": o,
                    "high": round(max(o, c) * (1 + wick[0]), 2), "low": round(min(o, c) * (1 - wick[1]), 2),
                    "close": c, "volume": round(float(blk["volume"][k % BLOCK, i]), 2),
                })
        return out
