"""The SQLite store: schema, forward migrations, and the few queries every command shares.

One file, WAL mode, a busy timeout, short write transactions. Every table has a natural key so
re-running a command with the same inputs changes nothing. Timestamps are ISO-8601 UTC text.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from tokenomics.core.errors import TokenomicsError

SCHEMA_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT, command TEXT NOT NULL, mode TEXT, pid INTEGER,
  started_at TEXT NOT NULL, ended_at TEXT, status TEXT NOT NULL DEFAULT 'running',
  counts TEXT, error TEXT);
CREATE INDEX runs_command ON runs(command, id);
CREATE TABLE articles (
  id TEXT PRIMARY KEY, provider TEXT NOT NULL, headline TEXT NOT NULL, summary TEXT,
  symbols TEXT NOT NULL, source TEXT, url TEXT, created_at TEXT NOT NULL, fetched_at TEXT,
  status TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0, error TEXT);
CREATE INDEX articles_status ON articles(status, created_at);
CREATE TABLE scores (
  article_id TEXT NOT NULL, symbol TEXT NOT NULL, scorer TEXT NOT NULL, sentiment TEXT NOT NULL,
  conviction INTEGER NOT NULL, reason TEXT, scored_at TEXT NOT NULL, article_created_at TEXT,
  PRIMARY KEY (article_id, symbol, scorer));
CREATE INDEX scores_symbol ON scores(symbol, article_created_at);
CREATE TABLE signals (
  id TEXT PRIMARY KEY, symbol TEXT NOT NULL, side TEXT NOT NULL, source TEXT NOT NULL,
  strength REAL NOT NULL, reason TEXT, ref TEXT, asset_class TEXT, created_at TEXT NOT NULL,
  status TEXT NOT NULL, status_reason TEXT, size_method TEXT, notional REAL, updated_at TEXT);
CREATE INDEX signals_status ON signals(status, created_at);
CREATE TABLE risk_decisions (
  id INTEGER PRIMARY KEY AUTOINCREMENT, signal_id TEXT NOT NULL, stage TEXT NOT NULL,
  decision TEXT NOT NULL, rule TEXT NOT NULL, detail TEXT, requested REAL, approved REAL,
  decided_at TEXT NOT NULL);
CREATE INDEX risk_decisions_signal ON risk_decisions(signal_id);
CREATE TABLE orders (
  client_order_id TEXT PRIMARY KEY, signal_id TEXT NOT NULL UNIQUE, symbol TEXT NOT NULL,
  side TEXT NOT NULL, intent TEXT NOT NULL, qty REAL, notional REAL, reason TEXT,
  status TEXT NOT NULL, broker TEXT NOT NULL, broker_order_id TEXT, filled_qty REAL NOT NULL DEFAULT 0,
  filled_avg_price REAL, fees REAL NOT NULL DEFAULT 0, error TEXT, created_at TEXT NOT NULL,
  submitted_at TEXT, updated_at TEXT);
CREATE INDEX orders_status ON orders(status);
CREATE TABLE fills (
  id TEXT PRIMARY KEY, client_order_id TEXT NOT NULL, symbol TEXT NOT NULL, side TEXT NOT NULL,
  qty REAL NOT NULL, price REAL NOT NULL, fee REAL NOT NULL, cash_flow REAL NOT NULL, ts TEXT NOT NULL);
CREATE INDEX fills_order ON fills(client_order_id);
CREATE TABLE positions (
  symbol TEXT PRIMARY KEY, qty REAL NOT NULL, avg_price REAL NOT NULL, cost REAL NOT NULL,
  fees REAL NOT NULL DEFAULT 0, opened_at TEXT NOT NULL, entry_order_id TEXT NOT NULL, source TEXT,
  signal_id TEXT, asset_class TEXT, high_water REAL, last_price REAL, updated_at TEXT);
CREATE TABLE trades (
  entry_order_id TEXT PRIMARY KEY, exit_order_id TEXT NOT NULL, symbol TEXT NOT NULL, source TEXT,
  qty REAL NOT NULL, entry_price REAL NOT NULL, exit_price REAL NOT NULL, fees REAL NOT NULL,
  pnl REAL NOT NULL, return_pct REAL NOT NULL, opened_at TEXT NOT NULL, closed_at TEXT NOT NULL,
  exit_reason TEXT);
CREATE TABLE equity (
  ts TEXT PRIMARY KEY, cash REAL NOT NULL, positions_value REAL NOT NULL, equity REAL NOT NULL);
CREATE TABLE halts (
  rule TEXT NOT NULL, period TEXT NOT NULL, fired_at TEXT NOT NULL, detail TEXT,
  PRIMARY KEY (rule, period));
CREATE TABLE clock (name TEXT PRIMARY KEY, step INTEGER NOT NULL, now TEXT NOT NULL);
CREATE TABLE paper_orders (
  client_order_id TEXT PRIMARY KEY, symbol TEXT NOT NULL, side TEXT NOT NULL, qty REAL NOT NULL,
  price REAL NOT NULL, fee REAL NOT NULL, cash_flow REAL NOT NULL, status TEXT NOT NULL, ts TEXT NOT NULL);
CREATE TABLE bars (
  source TEXT NOT NULL, symbol TEXT NOT NULL, timeframe TEXT NOT NULL, ts TEXT NOT NULL,
  open REAL NOT NULL, high REAL NOT NULL, low REAL NOT NULL, close REAL NOT NULL, volume REAL,
  PRIMARY KEY (source, symbol, timeframe, ts));
CREATE TABLE cursors (name TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE cache (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at TEXT NOT NULL);
"""

BACKTESTS_V1 = """
CREATE TABLE backtests (
  id INTEGER PRIMARY KEY AUTOINCREMENT, strategy TEXT NOT NULL, params TEXT NOT NULL, start TEXT NOT NULL,
  "end" TEXT NOT NULL, steps INTEGER NOT NULL, metrics TEXT NOT NULL, trades TEXT NOT NULL,
  equity TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE INDEX backtests_strategy ON backtests(strategy, id);
"""

# Forward-only migrations: index i upgrades the schema from version i to i + 1.
SCHEMA_PROVIDERS = """
CREATE TABLE llm_cache (
  article_id TEXT NOT NULL, model TEXT NOT NULL, prompt_version TEXT NOT NULL, result TEXT NOT NULL,
  created_at TEXT NOT NULL, PRIMARY KEY (article_id, model, prompt_version));
CREATE TABLE llm_calls (
  id INTEGER PRIMARY KEY AUTOINCREMENT, ts TEXT NOT NULL, model TEXT NOT NULL, prompt_version TEXT,
  articles INTEGER NOT NULL, prompt_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,
  total_tokens INTEGER NOT NULL, latency_ms REAL, cost_usd REAL NOT NULL, status TEXT NOT NULL, error TEXT);
CREATE INDEX llm_calls_ts ON llm_calls(ts);
CREATE TABLE reconcile_diffs (
  id INTEGER PRIMARY KEY AUTOINCREMENT, found_at TEXT NOT NULL, kind TEXT NOT NULL, symbol TEXT,
  client_order_id TEXT, store_view TEXT, broker_view TEXT, status TEXT NOT NULL DEFAULT 'open',
  resolved_at TEXT);
CREATE INDEX reconcile_diffs_status ON reconcile_diffs(status);
"""

HEARTBEAT_V1 = """
CREATE TABLE heartbeat (
  name TEXT PRIMARY KEY, form TEXT NOT NULL, state TEXT NOT NULL, pid INTEGER, host TEXT, mode TEXT,
  strategy TEXT, started_at TEXT NOT NULL, beat_at TEXT NOT NULL, tick INTEGER NOT NULL DEFAULT 0, now TEXT,
  interval_seconds REAL, steps TEXT, notify_state TEXT);
"""

PROVIDER_HEALTH = """
CREATE TABLE provider_health (
  provider TEXT PRIMARY KEY, status TEXT NOT NULL, failures INTEGER NOT NULL DEFAULT 0, failing_since TEXT,
  last_error TEXT, last_error_at TEXT, last_ok_at TEXT, skip_ticks INTEGER NOT NULL DEFAULT 0);
ALTER TABLE fills ADD COLUMN fee_currency TEXT;
"""

MIGRATIONS: list[Callable[[Database], None]] = [
    lambda db: db.executescript(SCHEMA_V1),
    # risk: latched halts are lifted by a person (`risk resume`); every method's candidate size per signal
    lambda db: [db.execute(sql) for sql in (
        "ALTER TABLE halts ADD COLUMN lifted_at TEXT", "ALTER TABLE halts ADD COLUMN lifted_reason TEXT",
        "ALTER TABLE signals ADD COLUMN size_detail TEXT")],
    lambda db: db.executescript(BACKTESTS_V1),  # backtest results
    lambda db: db.executescript(SCHEMA_PROVIDERS),  # issue 3: LLM cache and usage, reconciliation
    # syndicated copies: stored with status 'duplicate' and the article they repeat; never scored
    lambda db: [db.execute(sql) for sql in (
        "ALTER TABLE articles ADD COLUMN duplicate_of TEXT",
        "CREATE INDEX articles_created ON articles(created_at)")],
    # partial sells: the gain of the parts sold so far, booked into the trade when the position closes
    lambda db: [db.execute(f"ALTER TABLE positions ADD COLUMN {col} REAL NOT NULL DEFAULT 0")
                for col in ("realized_partial", "sold_qty", "sold_cost")],
    # issue 17: the loop's heartbeat (`tokenomics health`) and the notifier's memory (halts seen, last summary)
    lambda db: db.executescript(HEARTBEAT_V1),
    # issue 12: each provider's health (last error, since when, back-off); the currency a fill's fee was paid in
    lambda db: db.executescript(PROVIDER_HEALTH),
]
SCHEMA_VERSION = len(MIGRATIONS)


def iso(dt: datetime) -> str:
    """The one timestamp format of the store: second-precision ISO-8601 in UTC."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc).isoformat(timespec="seconds")


def parse_ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class StoreError(TokenomicsError):
    exit_code = 1


class LockBusy(TokenomicsError):
    exit_code = 1


# storage faults: (text in SQLite's message or errno, the cause in words, what to do)
_FAULTS = [
    (("database or disk is full", errno.ENOSPC), "the disk is full", "free some space, then re-run"),
    (("readonly database", "read-only file system", errno.EROFS, errno.EACCES, errno.EPERM),
     "the store is read-only", "make the file and its folder writable (or remount the disk read-write), then re-run"),
    (("disk i/o error", errno.EIO), "a disk I/O error",
     "check the disk (dmesg, free space, mounts), then run `tokenomics doctor`"),
]


def storage_fault(exc: BaseException, path: Path | str | None) -> "StoreError | None":
    """A disk-full, read-only or I/O failure as one StoreError naming the store, the cause and the fix
    (SQLite rolls the open transaction back: what was committed stays, the store stays consistent)."""
    if not isinstance(exc, (sqlite3.Error, OSError)):
        return None
    text = str(exc).lower()
    code = getattr(exc, "errno", None)
    for needles, cause, todo in _FAULTS:
        if any(n == code if isinstance(n, int) else n in text for n in needles):
            return StoreError(f"store {path or '(unknown)'}: {cause} ({exc}); committed work is kept", hint=todo)
    return None


@dataclass
class Store:
    path: Path
    db: Database

    # --- lifecycle -------------------------------------------------------------------------
    @classmethod
    def open(cls, path: Path, busy_timeout_ms: int = 5000) -> "Store":
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(str(path), timeout=busy_timeout_ms / 1000, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open store {path}: {exc}") from None
        store = cls(path=path, db=Database(conn))
        store.migrate()
        return store

    def close(self) -> None:
        self.db.close()

    def schema_version(self) -> int:
        if "meta" not in self.db.table_names():
            return 0
        row = self.one("SELECT value FROM meta WHERE key = 'schema_version'")
        return int(row["value"]) if row else 0

    def migrate(self) -> int:
        """Apply every migration newer than the file's version, each in its own transaction."""
        current = self.schema_version()
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"store {self.path} has schema version {current}, newer than this tokenomics "
                f"({SCHEMA_VERSION}); upgrade tokenomics"
            )
        for version in range(current, SCHEMA_VERSION):
            with self.tx():
                MIGRATIONS[version](self.db)
                self.db.execute(
                    "INSERT INTO meta(key, value) VALUES ('schema_version', ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    [str(version + 1)],
                )
        return SCHEMA_VERSION

    @contextmanager
    def tx(self) -> Iterator[Database]:
        """A short write transaction (nested calls become savepoints)."""
        with self.db.atomic():
            yield self.db

    # --- generic helpers -------------------------------------------------------------------
    def all(self, sql: str, params: Iterable[Any] | dict = ()) -> list[dict[str, Any]]:
        return list(self.db.query(sql, params))

    def one(self, sql: str, params: Iterable[Any] | dict = ()) -> dict[str, Any] | None:
        rows = self.all(sql, params)
        return rows[0] if rows else None

    def scalar(self, sql: str, params: Iterable[Any] | dict = ()) -> Any:
        row = self.db.execute(sql, list(params) if not isinstance(params, dict) else params).fetchone()
        return row[0] if row else None

    def execute(self, sql: str, params: Iterable[Any] | dict = ()) -> sqlite3.Cursor:
        return self.db.execute(sql, list(params) if not isinstance(params, dict) else params)

    def insert_ignore(self, table: str, rows: list[dict[str, Any]]) -> int:
        """Insert rows whose natural key is new; return how many were new."""
        if not rows:
            return 0
        before = self.db.conn.total_changes
        self.db[table].insert_all(rows, ignore=True)
        return self.db.conn.total_changes - before

    def counts(self) -> dict[str, int]:
        return {t: self.db[t].count for t in sorted(self.db.table_names()) if t != "meta"}

    # --- runs -------------------------------------------------------------------------------
    @contextmanager
    def run(self, command: str, mode: str, now: Callable[[], datetime] = utcnow) -> Iterator[dict[str, Any]]:
        """Record one command invocation; the yielded dict collects its counts."""
        with self.tx():
            run_id = self.db["runs"].insert(
                {"command": command, "mode": mode, "pid": os.getpid(), "started_at": iso(now()), "status": "running"}
            ).last_pk
        counts: dict[str, Any] = {}
        try:
            yield counts
        except BaseException as exc:
            status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            with self.tx():
                self.db["runs"].update(
                    run_id,
                    {"ended_at": iso(now()), "status": status, "counts": json.dumps(counts), "error": str(exc)[:500]},
                )
            raise
        with self.tx():
            self.db["runs"].update(run_id, {"ended_at": iso(now()), "status": "ok", "counts": json.dumps(counts)})

    def record_skipped(self, command: str, mode: str, why: str) -> None:
        """A run row for a step the loop left out this tick (its provider backing off)."""
        now = iso(utcnow())
        with self.tx():
            self.db["runs"].insert({"command": command, "mode": mode, "pid": os.getpid(), "started_at": now,
                                    "ended_at": now, "status": "skipped", "error": why})

    def last_runs(self) -> list[dict[str, Any]]:
        return self.all(
            "SELECT command, started_at, ended_at, status, counts, error FROM runs "
            "WHERE id IN (SELECT MAX(id) FROM runs GROUP BY command) ORDER BY command"
        )

    # --- cursors ----------------------------------------------------------------------------
    def get_cursor(self, name: str) -> str | None:
        row = self.one("SELECT value FROM cursors WHERE name = ?", [name])
        return row["value"] if row else None

    def set_cursor(self, name: str, value: str) -> None:
        self.execute(
            "INSERT INTO cursors(name, value, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            [name, value, iso(utcnow())],
        )

    # --- account ----------------------------------------------------------------------------
    def cash(self, capital: float) -> float:
        """Cash as the store knows it: starting capital plus every fill's signed cash flow."""
        flows = self.scalar("SELECT COALESCE(SUM(cash_flow), 0) FROM fills") or 0.0
        return round(capital + flows, 2)

    def positions(self) -> list[dict[str, Any]]:
        return self.all("SELECT * FROM positions ORDER BY symbol")

    def realized_pnl(self) -> float:
        """Closed trades' P&L plus the gain of open positions' partial sells (their fees count at the close)."""
        closed = self.scalar("SELECT COALESCE(SUM(pnl), 0) FROM trades") or 0.0
        partial = self.scalar("SELECT COALESCE(SUM(realized_partial), 0) FROM positions") or 0.0
        return round(closed + partial, 2)

    def open_orders(self) -> list[dict[str, Any]]:
        return self.all(
            "SELECT * FROM orders WHERE status NOT IN ('filled', 'rejected', 'canceled', 'expired') "
            "ORDER BY created_at"
        )

    def equity_at_or_before(self, ts: datetime) -> float | None:
        row = self.one("SELECT equity FROM equity WHERE ts <= ? ORDER BY ts DESC LIMIT 1", [iso(ts)])
        return row["equity"] if row else None

    def equity_first_since(self, ts: datetime) -> float | None:
        row = self.one("SELECT equity FROM equity WHERE ts >= ? ORDER BY ts LIMIT 1", [iso(ts)])
        return row["equity"] if row else None

    # --- advisory lock ----------------------------------------------------------------------
    @contextmanager
    def trade_lock(self, timeout: float = 10.0) -> Iterator[None]:
        """One process at a time may send orders; the OS frees the lock if the process dies."""
        lock_path = self.path.with_name(self.path.name + ".trade.lock")
        fh = open(lock_path, "a+")
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise LockBusy(
                            f"another tokenomics process holds the trading lock ({lock_path})",
                            hint="wait for it to finish; two processes must never send orders at once",
                        ) from None
                    time.sleep(0.05)
            fh.seek(0)
            fh.truncate()
            fh.write(str(os.getpid()))
            fh.flush()
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
            fh.close()


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)
