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
import hashlib
import json
import math
import re
import sqlite3
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from importlib import resources

import numpy as np

from tokenomics.adapters.calendar import MarketCalendar
from tokenomics.config import Settings
from tokenomics.core.bars import minutes_timeframe
from tokenomics.core.models import Article
from tokenomics.store import Store, StoreError, iso, utcnow

BLOCK = 1024  # steps drawn per random block, and computed per price block
PATH_VERSION = 2  # bump when the price path's definition changes (the stored checkpoints' key)
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
    """Prices are computed block by block (BLOCK steps each) from the state at the block's start (each
    symbol's unrounded price and the news impact waiting for its next trading step): a step's price
    depends only on (seed, step), never on how far a process had extended the path before. With a
    store, the state at each block's end is cached in it, so a fresh process far into the sim computes
    one block, not the path from step 0."""

    SEGMENTS = 8  # computed blocks kept in memory (the state at every block's end is kept too: small)

    def __init__(self, settings: Settings, calendar: MarketCalendar, store: Store | None = None):
        self.cfg = settings.sim
        self.symbols = settings.universe.symbols
        self.asset_classes = [settings.universe.asset_class(s) for s in self.symbols]
        self.calendar = calendar
        self.store = store
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
        self._crypto = np.array([ac == "crypto" for ac in self.asset_classes], dtype=bool)
        self._blocks: OrderedDict[int, dict[str, np.ndarray]] = OrderedDict()
        self._segments: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        # block b -> (unrounded prices, pending impact) after the last step of block b - 1
        self._entry: dict[int, tuple[np.ndarray, np.ndarray]] = {0: (self.start_prices.copy(), np.zeros(len(self.symbols)))}

    @cached_property
    def headlines(self) -> list[tuple[str, str]]:
        return load_headlines()

    @cached_property
    def _signs(self) -> np.ndarray:
        """The price direction each headline's true label stands for: +1, -1 or 0."""
        return np.array([{"bullish": 1, "bearish": -1, "neutral": 0}[label] for _, label in self.headlines])

    @cached_property
    def _key(self) -> str:
        """What the path depends on, hashed: the cache key prefix of this world's checkpoints."""
        c = self.cfg
        spec = [PATH_VERSION, BLOCK, c.seed, c.start.isoformat(), c.step_minutes, c.news_per_tick,
                c.move_probability, c.news_impact_pct, c.equity_vol_pct, c.crypto_vol_pct, list(self.symbols),
                list(self.asset_classes), self.start_prices.tolist()]
        return "sim:path:" + hashlib.sha256(json.dumps(spec).encode()).hexdigest()[:16] + ":"

    # --- time ----------------------------------------------------------------------------
    def time_of(self, step: int) -> datetime:
        return self.cfg.start + step * self.step_delta

    def step_at(self, dt: datetime) -> int:
        """The last step at or before dt."""
        return max(int((dt - self.cfg.start) / self.step_delta), 0)

    # --- randomness, block by block -------------------------------------------------------
    def _block(self, b: int) -> dict[str, np.ndarray]:
        blk = self._blocks.get(b)
        if blk is not None:
            self._blocks.move_to_end(b)
            return blk
        rng = np.random.default_rng([self.cfg.seed, b])
        n = len(self.symbols)
        counts = rng.poisson(self.cfg.news_per_tick, BLOCK)
        total = int(counts.sum())
        blk = {
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
        blk["starts"] = np.concatenate([[0], np.cumsum(counts)])  # step i's headlines: starts[i]:starts[i + 1]
        self._blocks[b] = blk
        while len(self._blocks) > self.SEGMENTS:
            self._blocks.popitem(last=False)
        return blk

    def news(self, step: int) -> list[SimNews]:
        """Headlines published in the interval (step - 1, step]."""
        if step < 1:
            return []
        blk = self._block(step // BLOCK)
        i = step % BLOCK
        start, end = int(blk["starts"][i]), int(blk["starts"][i + 1])
        out = []
        for j in range(start, end):
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
    def _entry_state(self, b: int) -> tuple[np.ndarray, np.ndarray]:
        """The state entering block b: from memory, else the nearest checkpoint at or before it (memory
        or store), carried forward block by block (each block computed is checkpointed)."""
        if b in self._entry:
            return self._entry[b]
        have = max(k for k in self._entry if k <= b)
        if self.store is not None and have < b:
            row = self.store.one("SELECT key, value FROM cache WHERE key > ? AND key <= ? ORDER BY key DESC LIMIT 1",
                                 [f"{self._key}{have:09d}", f"{self._key}{b:09d}"])
            if row:
                state = json.loads(row["value"])
                have = int(row["key"][len(self._key):])
                self._entry[have] = (np.array(state["price"], dtype=float), np.array(state["pending"], dtype=float))
        for k in range(have, b):
            self._segment(k)  # records the state entering k + 1
        return self._entry[b]

    def _segment(self, b: int) -> tuple[np.ndarray, np.ndarray]:
        """(rounded closes, traded?) of the steps b * BLOCK ... b * BLOCK + BLOCK - 1."""
        seg = self._segments.get(b)
        if seg is not None:
            self._segments.move_to_end(b)
            return seg
        price, pending = (a.copy() for a in self._entry_state(b))
        blk = self._block(b)
        n = len(self.symbols)
        base = b * BLOCK
        lo = max(base, 1)  # step 0 is the start: no move
        times = [int(self.time_of(k).timestamp()) for k in range(lo, base + BLOCK)]
        open_now = np.array(self.calendar.open_mask(times), dtype=bool)
        closes = np.empty((BLOCK, n))
        trading = np.empty((BLOCK, n), dtype=bool)
        if b == 0:
            closes[0], trading[0] = self.start_prices, True
        # each headline's signed impact on its symbol (news of step k moves the symbol's next trading step)
        signs = self._signs[blk["headline"]] * np.where(blk["follows"], 1, -1)
        impact = signs * (self.cfg.news_impact_pct / 100 * blk["size"])
        starts, syms = blk["starts"], blk["symbol"]
        noise = blk["noise"] * self.sigma
        crypto = self._crypto
        for i in range(lo - base, BLOCK):
            trades = crypto | open_now[i - (lo - base)]
            price = np.where(trades, price * np.exp(noise[i] + pending), price)
            pending = np.where(trades, 0.0, pending)
            closes[i] = np.round(price, 2)
            trading[i] = trades
            s, e = starts[i], starts[i + 1]
            if e > s:
                np.add.at(pending, syms[s:e], impact[s:e])  # in order, as one headline after another
        self._remember(b + 1, price, pending)
        seg = (closes, trading)
        self._segments[b] = seg
        while len(self._segments) > self.SEGMENTS:
            self._segments.popitem(last=False)
        return seg

    def _remember(self, b: int, price: np.ndarray, pending: np.ndarray) -> None:
        if b in self._entry:
            return
        self._entry[b] = (price, pending)
        if self.store is None:
            return
        key = f"{self._key}{b:09d}"
        try:  # a cache: a store that cannot take it (read-only) only costs the next process the work
            with self.store.tx():
                self.store.execute("INSERT OR IGNORE INTO cache(key, value, updated_at) VALUES (?, ?, ?)",
                                   [key, json.dumps({"price": price.tolist(), "pending": pending.tolist()}),
                                    iso(utcnow())])
        except (sqlite3.Error, StoreError):
            pass

    def _rows(self, first: int, last: int) -> tuple[np.ndarray, np.ndarray]:
        """(closes, traded?) of the steps first..last."""
        parts = []
        for b in range(first // BLOCK, last // BLOCK + 1):
            closes, trading = self._segment(b)
            lo, hi = max(first - b * BLOCK, 0), min(last - b * BLOCK, BLOCK - 1) + 1
            parts.append((closes[lo:hi], trading[lo:hi]))
        if len(parts) == 1:
            return parts[0]
        return np.vstack([p[0] for p in parts]), np.vstack([p[1] for p in parts])

    def price(self, symbol: str, step: int) -> float:
        closes, _ = self._segment(step // BLOCK)
        return float(closes[step % BLOCK, self.symbols.index(symbol)])

    def prices(self, step: int) -> dict[str, float]:
        closes, _ = self._segment(step // BLOCK)
        row = closes[step % BLOCK]
        return {s: float(row[i]) for i, s in enumerate(self.symbols)}

    def bars(self, first: int, last: int, symbols: "tuple[str, ...] | list[str] | set[str] | None" = None) -> list[dict]:
        """OHLCV bars for the steps in [first, last] in which each symbol (of `symbols`, default all) traded.

        The bar of step k covers (t[k-1], t[k]] and is keyed by its open time t[k-1], as
        exchanges key theirs: it is known only once t[k] has passed.
        """
        first = max(first, 1)
        if last < first:
            return []
        closes, trading = self._rows(first - 1, last)  # row r: step first - 1 + r
        which = [(i, sym) for i, sym in enumerate(self.symbols) if symbols is None or sym in symbols]
        out = []
        tf = minutes_timeframe(self.cfg.step_minutes)
        for k in range(first, last + 1):
            blk = self._block(k // BLOCK)
            r = k - first + 1
            ts = self.time_of(k - 1).isoformat(timespec="seconds")
            for i, sym in which:
                if not trading[r, i]:
                    continue
                o, c = float(closes[r - 1, i]), float(closes[r, i])
                wick = blk["wick"][k % BLOCK, i] * self.sigma[i] * 0.5
                out.append({
                    "source": "sim", "symbol": sym, "timeframe": tf, "ts": ts, "open": o,
                    "high": round(max(o, c) * (1 + wick[0]), 2), "low": round(min(o, c) * (1 - wick[1]), 2),
                    "close": c, "volume": round(float(blk["volume"][k % BLOCK, i]), 2),
                })
        return out
