"""The wiring: global options -> settings, store, clock, calendar, and the adapters of the mode.

Everything is built lazily, so a command pays only for what it touches.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

from tokenomics.config import Settings, load_settings
from tokenomics.core.errors import ConfigError
from tokenomics.store import Store, iso, utcnow

SIM_CLOCK = "sim"


@dataclass
class Options:
    """The global command-line options."""

    config: Path | None = None
    db: Path | None = None
    json: bool = False
    jsonl: bool = False
    mode: str | None = None
    live: bool = False
    verbose: int = 0


@dataclass
class Runtime:
    opts: Options = field(default_factory=Options)
    create_store_dirs: bool = False  # `init` creates the store's folder; other commands refuse a missing one
    _tick_step: int | None = field(default=None, init=False, repr=False)
    in_tick: bool = field(default=False, init=False, repr=False)  # inside loop.tick: it marks to market once, at its end
    # bracket legs already looked up in this tick (loop.tick empties it): once per leg per tick is enough
    legs_seen: set[str] = field(default_factory=set, init=False, repr=False)

    @cached_property
    def settings(self) -> Settings:
        overrides: dict[str, Any] = {}
        if self.opts.mode:
            overrides["mode"] = self.opts.mode
        s = load_settings(self.opts.config, **overrides)
        if s.mode == "live" and (s.trading.paper or not self.opts.live):
            raise ConfigError(
                "live mode needs both trading.paper: false in the config and --live on the command line",
                hint="use --mode paper or sim to practise",
            )
        if s.mode != "live" and self.opts.live:  # contradictions exit 2 before any connection
            raise ConfigError(f"--live contradicts mode {s.mode} (from {self._mode_origin()}): --live only "
                              "confirms --mode live", hint="drop --live, or use --mode live with trading.paper: false")
        if s.mode != "live" and not s.trading.paper:
            raise ConfigError(f"trading.paper: false contradicts mode {s.mode} (from {self._mode_origin()}): "
                              "real-money trading is mode live", hint="set trading.paper: true, or use --mode live "
                              "--live")
        if s.mode == "sim" and s.broker.provider != "paper":
            raise ConfigError("broker.provider: sim mode trades only with the paper broker")
        if s.mode == "live" and s.broker.provider == "paper":
            raise ConfigError("broker.provider: live mode trades through a real broker (alpaca or ccxt)",
                              hint="set broker.provider: alpaca (or ccxt), or use --mode paper to keep the book "
                              "in the store at live prices")
        return s

    def _mode_origin(self) -> str:
        import os

        if self.opts.mode:
            return "--mode"
        return "TOKENOMICS_MODE" if "TOKENOMICS_MODE" in os.environ else "the config's mode, default sim"

    @property
    def mode(self) -> str:
        return self.settings.mode

    @cached_property
    def db_path(self) -> Path:
        return self.opts.db or self.settings.store.path

    @cached_property
    def store(self) -> Store:
        from tokenomics.logs import setup_logging

        from tokenomics.config import StoreSettings

        lg = self.settings.logs
        setup_logging(lg.dir, lg.level, self.opts.verbose, lg.output)
        # the built-in default (data/ under the working directory) is created on first use, so the quick
        # start needs no init; a folder named by --db or store.path must exist (a typo is no new account)
        default = self.opts.db is None and self.settings.store.path == StoreSettings().path
        return Store.open(self.db_path, self.settings.store.busy_timeout_ms,
                          create_dirs=self.create_store_dirs or default)

    # --- time -------------------------------------------------------------------------------
    @cached_property
    def calendar(self):
        from tokenomics.adapters.calendar import MarketCalendar

        moments = [utcnow()]
        if self.mode == "sim":
            moments += [self.settings.sim.start, self.now()]
        return MarketCalendar.around(self.store, *moments)

    @cached_property
    def world(self):
        from tokenomics.adapters.sim import SimWorld

        return SimWorld(self.settings, self.calendar, store=self.store)  # its path's checkpoints cached in the store

    def sim_step(self) -> int:
        """The sim clock's step: within a tick, the one its advance wrote (one tick, one now: no clock
        SELECT per price); else the store's."""
        if self._tick_step is not None:
            return self._tick_step
        step = self.store.scalar("SELECT step FROM clock WHERE name = ?", [SIM_CLOCK])
        return int(step) if step is not None else self.settings.sim.history_steps

    def now(self) -> datetime:
        """The one notion of 'now' every command uses: the sim clock in sim mode, else real time."""
        if self.mode == "sim":
            s = self.settings.sim
            return s.start + self.sim_step() * timedelta(minutes=s.step_minutes)
        return utcnow()

    def advance(self, steps: int = 1) -> datetime:
        """Move the sim clock forward (sim mode only); returns the new now. Read and write in one
        write transaction: overlapping processes each move it by their own steps, never to the same one."""
        s = self.settings.sim
        self._tick_step = None
        with self.store.tx():
            step = self.sim_step() + steps
            now = s.start + step * timedelta(minutes=s.step_minutes)
            self.store.execute(
                "INSERT INTO clock(name, step, now) VALUES (?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET step = excluded.step, now = excluded.now",
                [SIM_CLOCK, step, iso(now)],
            )
        self._tick_step = step
        return now

    def end_tick(self) -> None:
        """Forget the tick's step (the next read sees other processes' advances)."""
        self._tick_step = None
        self.in_tick = False

    # --- adapters ---------------------------------------------------------------------------
    def asset_class(self, symbol: str) -> str:
        return self.settings.universe.asset_class(symbol)

    def price(self, symbol: str) -> float:
        """The latest price of a symbol at now."""
        if self.mode != "sim":
            return self.market_data.price(symbol)
        return self.world.price(symbol, self.sim_step())

    def tradable(self, symbol: str, at: datetime | None = None) -> bool:
        if not self.settings.trading.market_hours_only:
            return True
        if self.mode != "sim" and self.settings.broker.provider == "alpaca" and self.asset_class(symbol) == "equity":
            from tokenomics.core.errors import ProviderError

            try:
                return bool(self.broker_clock["is_open"])  # Alpaca's market clock
            except ProviderError as exc:  # clock unknown: no equity order (fail closed)
                log.warning("market clock unavailable (%s): equities wait", exc)
                return False
        return self.calendar.is_open(self.asset_class(symbol), at or self.now())

    # --- real providers (paper and live modes) ------------------------------------------------
    @cached_property
    def alpaca_limiter(self):
        from tokenomics.adapters.alpaca_http import RateLimiter

        # one budget for every process on this store: a cron fetch-news beside run --loop
        return RateLimiter(self.settings.news.max_requests_per_minute,
                           path=self.db_path.with_name(self.db_path.name + ".alpaca-requests"))

    @cached_property
    def market_data(self):
        if self.settings.broker.provider == "ccxt":
            return self.broker
        if self.settings.broker.provider == "paper":  # paper mode: the store's book at live prices
            return self.live_prices
        return self.alpaca_data

    @cached_property
    def live_prices(self):
        """The price sources of paper mode with the store's paper broker, one per asset class of the
        universe: equities from Alpaca market data (keys needed: exit 2 naming them), crypto from Alpaca
        or broker.exchange's public ticker (broker.crypto_prices: ccxt, no keys)."""
        from tokenomics.adapters.market.live import LivePrices

        s = self.settings
        b, u = s.broker, s.universe
        sources: dict = {}
        need_alpaca = [c for c, on in (("equities", bool(u.equities)),
                                       ("crypto", bool(u.crypto) and b.crypto_prices == "alpaca")) if on]
        if need_alpaca:
            try:
                alpaca = self.alpaca_data
            except ConfigError as exc:
                raise ConfigError(f"{exc}: in paper mode the store's paper broker prices the "
                                  f"{' and '.join(need_alpaca)} of the universe from Alpaca market data",
                                  hint="set ALPACA_API_KEY and ALPACA_SECRET_KEY (free paper keys serve market "
                                  "data); for a crypto-only universe, broker.crypto_prices: ccxt needs no keys"
                                  ) from None
            if u.equities:
                sources["equity"] = alpaca
            if u.crypto and b.crypto_prices == "alpaca":
                sources["crypto"] = alpaca
        if u.crypto and b.crypto_prices == "ccxt":
            from tokenomics.adapters.market.ccxt import CcxtPrices

            sources["crypto"] = CcxtPrices(b.exchange, url=b.exchange_url, timeout=b.timeout_seconds)
        return LivePrices(sources, self.asset_class, max_age_seconds=b.max_price_age_seconds, now=self.now)

    @cached_property
    def alpaca_data(self):
        """Alpaca's market data (latest trades, bars) at broker.data_url, under the shared request budget."""
        from tokenomics import keys
        from tokenomics.adapters.market.alpaca import AlpacaMarketData

        b = self.settings.broker
        key, secret = keys.require("alpaca")
        return AlpacaMarketData(key, secret, url=b.data_url, timeout=b.timeout_seconds, limiter=self.alpaca_limiter)

    @property
    def broker_clock(self) -> dict:
        """Alpaca's market clock, read again at its next_open / next_close (and by refresh_clock, which
        the loop calls every tick), so a loop that runs across the bell follows it."""
        c = self.__dict__.get("_broker_clock")
        now = utcnow()
        if c is None or now >= c["_next_open"] or now >= c["_next_close"]:
            c = dict(self.broker.clock())
            c["_next_open"], c["_next_close"] = (datetime.fromisoformat(c["next_open"]),
                                                 datetime.fromisoformat(c["next_close"]))
            self.__dict__["_broker_clock"] = c
        return c

    def refresh_clock(self) -> None:
        self.__dict__.pop("_broker_clock", None)

    def order_symbol(self, client_order_id: str) -> str | None:
        return self.store.scalar("SELECT symbol FROM orders WHERE client_order_id = ?", [client_order_id])

    def booked(self, client_order_id: str) -> tuple[float, float]:
        """(qty, qty * price) of the fills the store has booked for an order."""
        row = self.store.one("SELECT COALESCE(SUM(qty), 0) AS q, COALESCE(SUM(qty * price), 0) AS v "
                             "FROM fills WHERE client_order_id = ?", [client_order_id])
        return float(row["q"]), float(row["v"])

    def news_provider(self):
        s = self.settings.news
        if s.provider == "file":
            from tokenomics.adapters.news.file import FileNews

            if s.file is None:
                raise ConfigError("news.file: required when news.provider is 'file'")
            return FileNews(s.file)
        if s.provider == "alpaca":
            from tokenomics import keys
            from tokenomics.adapters.news.alpaca import AlpacaNews

            key, secret = keys.require("alpaca")
            u = self.settings.universe
            return AlpacaNews(s, s.symbols or u.symbols, u.crypto, key, secret, self.now, self.alpaca_limiter)
        from tokenomics.adapters.news.sim import SimNews

        return SimNews(self.world, self.sim_step())

    @cached_property
    def scorer(self):
        if self.settings.sentiment.provider == "gemini":
            from tokenomics import keys
            from tokenomics.adapters.scorers.gemini import GeminiScorer

            (key,) = keys.require("gemini")
            # no now=: the scorer's budgets count the real UTC day, whatever the sim clock says
            return GeminiScorer(self.settings.sentiment, self.store, key)
        if self.settings.sentiment.provider == "offline-transformer":
            from tokenomics.adapters.scorers import transformer

            s = self.settings.sentiment
            transformer.require_extra()  # exit 2 naming the extra, before any work (cheap: no import)
            model_dir = Path(s.transformer_dir) if s.transformer_dir else transformer.MODEL_DIR
            transformer.require_model(model_dir)  # exit 2 naming the training command
            return transformer.TransformerScorer(model_dir, s.model_dir, s.transformer_weight)
        from tokenomics.adapters.scorers.offline import OfflineScorer

        return OfflineScorer(self.settings.sentiment.model_dir)

    @cached_property
    def broker(self):
        s = self.settings
        if s.broker.provider == "alpaca":
            from tokenomics import keys
            from tokenomics.adapters.brokers.alpaca import AlpacaBroker

            key, secret = keys.require("alpaca")
            return AlpacaBroker(
                key, secret, paper=s.mode != "live", url=s.broker.trading_url, timeout=s.broker.timeout_seconds,
                booked=self.booked, price=self.price, crypto=s.universe.crypto, stop_loss_pct=s.exits.stop_loss_pct,
                take_profit_pct=s.exits.take_profit_pct, bracket=s.broker.bracket, limiter=self.alpaca_limiter,
            )
        if s.broker.provider == "ccxt":
            from tokenomics import keys
            from tokenomics.adapters.brokers.ccxt import CcxtBroker

            key, secret = keys.require("ccxt")
            return CcxtBroker(s.broker, key, secret, keys.lookup("CCXT_PASSWORD"), sandbox=s.mode != "live",
                              booked=self.booked, order_symbol=self.order_symbol)
        from tokenomics.adapters.brokers.paper import PaperBroker

        # paper mode: fills at live prices, only fresh ones (the price sources and their keys are checked
        # here, so a missing key stops a run before its first request)
        fill_price = self.price if s.mode == "sim" else self.live_prices.fill_price
        return PaperBroker(
            self.store, fill_price, self.now, capital=s.capital,
            slippage_bps=s.broker.slippage_bps, fee_bps=s.broker.fee_bps,
            market_rules=None if s.mode == "sim" else self.live_prices.market_rules,
        )

    @property
    def cost_rate(self) -> float:
        b = self.settings.broker
        return (b.slippage_bps + b.fee_bps) / 1e4

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()


log = logging.getLogger("tokenomics")
