"""The SQLite store: schema, forward migrations, and the few queries every command shares.

One file, WAL mode, a busy timeout, short write transactions. Every table has a natural key so
re-running a command with the same inputs changes nothing. Timestamps are ISO-8601 UTC text.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

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

def _canonical_timeframes(db: sqlite3.Connection) -> None:
    """Bars stored under another spelling of their timeframe (60m, 24h) move to the canonical one
    (1h, 1d); a bar already stored under it wins."""
    from tokenomics.core.bars import canonical_timeframe

    for (tf,) in db.execute("SELECT DISTINCT timeframe FROM bars").fetchall():
        try:
            canonical = canonical_timeframe(tf)
        except ValueError:
            continue
        if canonical != tf:
            db.execute("UPDATE OR IGNORE bars SET timeframe = ? WHERE timeframe = ?", [canonical, tf])
            db.execute("DELETE FROM bars WHERE timeframe = ?", [tf])


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

# issue 19/16: which process a run belongs to (a killed one shows as died); indexes and running totals
# so that no query of a tick reads a table that grows with the ticks
RUNS_ALIVE = """
ALTER TABLE runs ADD COLUMN proc_start TEXT;
CREATE INDEX runs_running ON runs(id) WHERE status = 'running';
CREATE INDEX orders_open ON orders(created_at) WHERE status NOT IN ('filled', 'rejected', 'canceled', 'expired');
CREATE INDEX trades_closed ON trades(closed_at);
CREATE TABLE totals (name TEXT PRIMARY KEY, value REAL NOT NULL);
INSERT INTO totals(name, value) SELECT 'fills.cash_flow', COALESCE(SUM(cash_flow), 0) FROM fills
"""
TOTALS_TRIGGERS = (  # the running sum of fills.cash_flow, kept by SQLite itself in every writer's transaction
    "CREATE TRIGGER fills_total_insert AFTER INSERT ON fills BEGIN UPDATE totals SET value = value + "
    "NEW.cash_flow WHERE name = 'fills.cash_flow'; END",
    "CREATE TRIGGER fills_total_delete AFTER DELETE ON fills BEGIN UPDATE totals SET value = value - "
    "OLD.cash_flow WHERE name = 'fills.cash_flow'; END",
    "CREATE TRIGGER fills_total_update AFTER UPDATE OF cash_flow ON fills BEGIN UPDATE totals SET value = "
    "value - OLD.cash_flow + NEW.cash_flow WHERE name = 'fills.cash_flow'; END",
)


def _script(db: sqlite3.Connection, sql: str) -> None:
    """Run a schema script statement by statement inside the caller's transaction (executescript
    would commit first). The scripts hold no ';' inside a statement."""
    for statement in sql.split(";"):
        if statement.strip():
            db.execute(statement)


# Forward-only migrations: index i upgrades the schema from version i to i + 1. Plain SQL on the
# connection, so creating or opening a store never imports sqlite-utils (or pandas through it).
MIGRATIONS: list[Callable[[sqlite3.Connection], Any]] = [
    lambda db: _script(db, SCHEMA_V1),
    # risk: latched halts are lifted by a person (`risk resume`); every method's candidate size per signal
    lambda db: [db.execute(sql) for sql in (
        "ALTER TABLE halts ADD COLUMN lifted_at TEXT", "ALTER TABLE halts ADD COLUMN lifted_reason TEXT",
        "ALTER TABLE signals ADD COLUMN size_detail TEXT")],
    lambda db: _script(db, BACKTESTS_V1),  # backtest results
    lambda db: _script(db, SCHEMA_PROVIDERS),  # issue 3: LLM cache and usage, reconciliation
    # syndicated copies: stored with status 'duplicate' and the article they repeat; never scored
    lambda db: [db.execute(sql) for sql in (
        "ALTER TABLE articles ADD COLUMN duplicate_of TEXT",
        "CREATE INDEX articles_created ON articles(created_at)")],
    # partial sells: the gain of the parts sold so far, booked into the trade when the position closes
    lambda db: [db.execute(f"ALTER TABLE positions ADD COLUMN {col} REAL NOT NULL DEFAULT 0")
                for col in ("realized_partial", "sold_qty", "sold_cost")],
    # issue 17: the loop's heartbeat (`tokenomics health`) and the notifier's memory (halts seen, last summary)
    lambda db: _script(db, HEARTBEAT_V1),
    # issue 12: each provider's health (last error, since when, back-off); the currency a fill's fee was paid in
    lambda db: _script(db, PROVIDER_HEALTH),
    # runs: which process (host, boot, start time) a row belongs to, so a killed one shows as died
    lambda db: (_script(db, RUNS_ALIVE), [db.execute(t) for t in TOTALS_TRIGGERS]),
    # a position's exit attempts are found by its entry order id (signals.ref) on every check-exits
    lambda db: db.execute("CREATE INDEX signals_exit_ref ON signals(ref) WHERE source = 'exit'"),
    # a provider's Retry-After longer than a request's own retries wait: its optional steps wait until then
    lambda db: db.execute("ALTER TABLE provider_health ADD COLUMN retry_until TEXT"),
    # issue 14: one spelling per timeframe (60m -> 1h, 24h -> 1d): bars stored under another are respelled
    lambda db: _canonical_timeframes(db),
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


class StoreBusy(StoreError):
    """Another process held the store's write lock through every retry."""


class LockBusy(TokenomicsError):
    exit_code = 1


class StoreRefused(TokenomicsError):
    """A path that is not (and must not become) a tokenomics store: exit 2."""

    exit_code = 2


def _check_ours(conn: sqlite3.Connection, path: Path) -> None:
    """An empty file is a new store; any other SQLite file must be a tokenomics store."""
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not tables:
        return
    try:
        ours = {"meta", "runs"} <= tables and conn.execute(
            "SELECT value FROM meta WHERE key = 'schema_version'").fetchone() is not None
    except sqlite3.Error:
        ours = False
    if not ours:
        raise StoreRefused(f"{path} is a SQLite file of another application (tables: "
                           f"{', '.join(sorted(tables)[:5])}), not a tokenomics store: not touching it",
                           hint="give --db a new file name or an existing tokenomics store")


def _diagnose(path: Path, cause: Exception) -> Exception:
    """SQLite says 'unable to open database file' for several causes: find which one it is."""
    try:
        fs = os.statvfs(path.parent)
    except OSError:
        return cause
    if fs.f_flag & os.ST_RDONLY:
        return OSError(errno.EROFS, "read-only file system")
    if fs.f_bavail == 0:
        return OSError(errno.ENOSPC, "no space left on device")
    if not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)):
        return OSError(errno.EACCES, "no write permission on the store file or its folder")
    return cause


def _open_read_only(path: Path, cause: Exception) -> tuple[sqlite3.Connection, str]:
    """A store on a read-only disk or without write permission, opened for reading only."""
    why = str(storage_fault(_diagnose(path, cause), path) or f"store {path} is not writable: ({cause})")
    for uri in (f"file:{path}?mode=ro", f"file:{path}?mode=ro&immutable=1"):
        try:
            conn = sqlite3.connect(uri, uri=True, isolation_level=None)
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            return conn, why
        except sqlite3.Error:
            continue
    raise StoreError(f"cannot open store {path}: {cause}") from None


# storage faults: (text in SQLite's message or errno, the cause in words, what to do)
_FAULTS = [
    (("database or disk is full", errno.ENOSPC), "the disk is full", "free some space, then re-run"),
    (("readonly database", "read-only file system", "unable to open database file", errno.EROFS,
      errno.EACCES, errno.EPERM),
     "the store is read-only", "make the file and its folder writable (or remount the disk read-write), then re-run"),
    (("disk i/o error", errno.EIO), "a disk I/O error",
     "check the disk (dmesg, free space, mounts), then run `tokenomics doctor`"),
]


# SQLite messages that more than one storage fault produces: the filesystem tells which it is
_AMBIGUOUS = ("readonly database", "unable to open database file", "disk i/o error")


def storage_fault(exc: BaseException, path: Path | str | None) -> "StoreError | None":
    """A disk-full, read-only or I/O failure as one StoreError naming the store, the cause and the fix
    (SQLite rolls the open transaction back: what was committed stays, the store stays consistent)."""
    if not isinstance(exc, (sqlite3.Error, OSError)):
        return None
    text = str(exc).lower()
    code = getattr(exc, "errno", None)
    if path is not None and any(a in text for a in _AMBIGUOUS):
        found = _diagnose(Path(path), exc)  # e.g. a full disk that SQLite reports as a read-only database
        if isinstance(found, OSError) and found is not exc:
            code, text = found.errno, ""
    for needles, cause, todo in _FAULTS:
        if any(n == code if isinstance(n, int) else n in text for n in needles):
            return StoreError(f"store {path or '(unknown)'} is not writable: {cause} ({exc})",
                              hint=f"{todo} (what was committed is kept)")
    return None


BUSY_RETRIES = 4  # attempts to begin a write transaction, each waiting up to the busy timeout
DURABLE = "FULL"  # synchronous level of durable transactions (the order path)
DEFAULT_SYNC = "NORMAL"  # of every other transaction: survives a killed process, maybe not a power cut
WAL_LIMIT = 4 * 1024 * 1024  # bytes the WAL file is truncated back to after a checkpoint


def _busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(exc) or "busy" in str(exc)


def _adapt(value: Any) -> Any:
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=str)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


def process_identity(pid: int | None = None) -> str | None:
    """host:boot:start-time of a process, so a reused pid is not mistaken for the process that wrote
    a row. None where /proc is missing (then only the pid is checked)."""
    pid = os.getpid() if pid is None else pid
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            start = fh.read().rsplit(b")", 1)[1].split()[19].decode()
        with open("/proc/sys/kernel/random/boot_id") as fh:
            boot = fh.read().strip()[:8]
    except (OSError, IndexError):
        return None
    return f"{socket.gethostname()}:{boot}:{start}"


def process_gone(pid: int | None, identity: str | None) -> bool:
    """True when the process that wrote a 'running' row is certainly gone; False if it may live (or
    ran on another host, where this process cannot tell)."""
    if not pid:
        return False
    if identity and identity.split(":", 1)[0] != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, another user's
    return bool(identity) and process_identity(pid) not in (None, identity)


@dataclass
class Store:
    path: Path
    conn: sqlite3.Connection
    _depth: int = field(default=0, repr=False)
    _lock_fh: Any = field(default=None, repr=False)
    _lock_depth: int = field(default=0, repr=False)
    _identity: str | None = field(default=None, repr=False)

    # --- lifecycle -------------------------------------------------------------------------
    read_only: str | None = None  # why the store cannot be written, when it was opened read-only

    @classmethod
    def open(cls, path: Path, busy_timeout_ms: int = 5000, *, create_dirs: bool = True) -> "Store":
        """Open (or create) a tokenomics store. Refused (exit 2): a missing folder unless create_dirs,
        a folder, a file that is not SQLite, a SQLite file of another application. A store that cannot
        be written is opened read-only (read_only says why); writing to it is a StoreError naming it."""
        path = Path(path)
        if path.is_dir():
            raise StoreRefused(f"store {path} is a folder, not a store file", hint="give a file path to --db")
        if not path.parent.is_dir():
            if not create_dirs:
                raise StoreRefused(f"store {path}: folder {path.parent} does not exist",
                                   hint="check --db / store.path; `tokenomics init` creates the store and its folder")
            path.parent.mkdir(parents=True, exist_ok=True)
        conn, read_only = None, None
        try:
            conn = sqlite3.connect(str(path), timeout=busy_timeout_ms / 1000, isolation_level=None)
            _check_ours(conn, path)
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {DEFAULT_SYNC}")
            conn.execute(f"PRAGMA journal_size_limit = {WAL_LIMIT}")
            conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.DatabaseError as exc:
            if conn is not None:
                conn.close()
            if "not a database" in str(exc):
                raise StoreRefused(f"{path} is not a tokenomics store (not a SQLite file)",
                                   hint="check --db / store.path") from None
            if not path.exists():
                raise storage_fault(exc, path) or StoreError(f"cannot open store {path}: {exc}") from None
            conn, read_only = _open_read_only(path, exc)
            _check_ours(conn, path)
        store = cls(path=path, conn=conn, read_only=read_only)
        store.migrate()
        return store

    def writable(self) -> str | None:
        """None when a write would succeed now; else why not (read-only file or disk, full disk)."""
        if self.read_only:
            return self.read_only
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                self.conn.execute("INSERT INTO meta(key, value) VALUES ('write_check', '1') "
                                "ON CONFLICT(key) DO UPDATE SET value = excluded.value")
            finally:
                self.conn.execute("ROLLBACK")
        except (sqlite3.Error, OSError) as exc:
            fault = storage_fault(exc, self.path)
            return str(fault) if fault else str(exc)
        return None

    @property
    def db(self) -> Any:
        """A sqlite-utils view of the same connection, for bulk inserts and ad-hoc inspection.
        Imported on first use only: it pulls in pandas where that is installed."""
        if "_db" not in self.__dict__:
            from sqlite_utils import Database

            self.__dict__["_db"] = Database(self.conn)
        return self.__dict__["_db"]

    def close(self) -> None:
        if self._lock_fh is not None:
            self._lock_fh.close()
            self._lock_fh = None
        self.conn.close()

    def schema_version(self) -> int:
        try:
            row = self.one("SELECT value FROM meta WHERE key = 'schema_version'")
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return 0
            raise
        return int(row["value"]) if row else 0

    def migrate(self) -> int:
        """Apply every migration newer than the file's version, each in its own transaction (which
        re-reads the version, so two processes creating one store never migrate it twice)."""
        current = self.schema_version()
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"store {self.path} has schema version {current}, newer than this tokenomics "
                f"({SCHEMA_VERSION}); upgrade tokenomics"
            )
        while current < SCHEMA_VERSION:
            with self.tx():
                current = self.schema_version()
                if current >= SCHEMA_VERSION:
                    break
                MIGRATIONS[current](self.conn)
                self.execute(
                    "INSERT INTO meta(key, value) VALUES ('schema_version', ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    [str(current + 1)],
                )
                current += 1
        return SCHEMA_VERSION

    def _begin(self) -> None:
        """BEGIN IMMEDIATE: take the write lock first, so the busy timeout applies to it and no other
        writer can commit between this transaction's reads and its writes. A BEGIN that stays busy
        through the timeout is retried (it is the transaction's first statement, so this retries the
        whole transaction); after BUSY_RETRIES it fails with a message instead of a traceback."""
        for attempt in range(BUSY_RETRIES):
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if not _busy(exc):
                    raise
                if attempt == BUSY_RETRIES - 1:
                    raise StoreBusy(
                        f"store {self.path} stayed busy: another process held its write lock through "
                        f"{BUSY_RETRIES} waits of store.busy_timeout_ms",
                        hint="a long write elsewhere (a bulk fetch-bars?); retry, or raise store.busy_timeout_ms",
                    ) from None
                time.sleep(0.05 * (attempt + 1))

    @contextmanager
    def tx(self, durable: bool = False) -> Iterator["Store"]:
        """A short write transaction (nested calls become savepoints). durable=True commits with
        synchronous=FULL: when it returns, the transaction is on disk and survives a power cut (and so
        does every transaction committed before it: the WAL is written in order)."""
        if self._depth:
            name = f"sp{self._depth}"
            self.conn.execute(f"SAVEPOINT {name}")
            self._depth += 1
            try:
                yield self
            except BaseException:
                self.conn.execute(f"ROLLBACK TO {name}")
                self.conn.execute(f"RELEASE {name}")
                raise
            else:
                self.conn.execute(f"RELEASE {name}")
            finally:
                self._depth -= 1
            return
        restore = None
        if durable:  # (a throwaway store set to OFF, e.g. a backtest's, stays OFF)
            restore = self.conn.execute("PRAGMA synchronous").fetchone()[0]
            if restore in (0, 2, 3):
                restore = None
            else:
                self.conn.execute(f"PRAGMA synchronous = {DURABLE}")
        try:
            self._begin()
            self._depth = 1
            try:
                yield self
            except BaseException:
                self._depth = 0
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise
            self._depth = 0
            self.conn.execute("COMMIT")
        finally:
            self._depth = 0
            if restore is not None:
                self.conn.execute(f"PRAGMA synchronous = {restore}")

    def checkpoint(self) -> None:
        """Copy the WAL into the database where no reader needs it (PASSIVE: never waits), so the
        WAL file stays small; the loop calls it at the end of every tick."""
        try:
            self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.OperationalError as exc:
            if not _busy(exc):
                raise

    # --- generic helpers -------------------------------------------------------------------
    @staticmethod
    def _params(params: Iterable[Any] | dict) -> Any:
        return params if isinstance(params, dict) else list(params)

    def all(self, sql: str, params: Iterable[Any] | dict = ()) -> list[dict[str, Any]]:
        cur = self.conn.execute(sql, self._params(params))
        if cur.description is None:
            return []
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]

    def one(self, sql: str, params: Iterable[Any] | dict = ()) -> dict[str, Any] | None:
        cur = self.conn.execute(sql, self._params(params))
        row = cur.fetchone()
        if row is None:
            return None
        return dict(zip((d[0] for d in cur.description), row))

    def scalar(self, sql: str, params: Iterable[Any] | dict = ()) -> Any:
        row = self.conn.execute(sql, self._params(params)).fetchone()
        return row[0] if row else None

    def execute(self, sql: str, params: Iterable[Any] | dict = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, self._params(params))

    def insert(self, table: str, row: dict[str, Any]) -> int:
        """Insert one row (an IntegrityError if its key exists); returns its rowid."""
        cols = list(row)
        cur = self.conn.execute(
            f"INSERT INTO {table} ({', '.join(_quote(c) for c in cols)}) VALUES ({', '.join('?' * len(cols))})",
            [_adapt(row[c]) for c in cols])
        return cur.lastrowid

    def insert_ignore(self, table: str, rows: list[dict[str, Any]]) -> int:
        """Insert rows whose natural key is new; return how many were new."""
        if not rows:
            return 0
        cols = list(dict.fromkeys(c for r in rows for c in r))
        before = self.conn.total_changes
        self.conn.executemany(
            f"INSERT OR IGNORE INTO {table} ({', '.join(_quote(c) for c in cols)}) "
            f"VALUES ({', '.join('?' * len(cols))})",
            [[_adapt(r.get(c)) for c in cols] for r in rows])
        return self.conn.total_changes - before

    def bulk_insert(self, table: str, rows: list[dict[str, Any]], batch_size: int = 1000) -> int:
        """insert_ignore for large batches (fetch-bars pages), through sqlite-utils; returns how many were new."""
        if not rows:
            return 0
        with self.tx():
            before = self.conn.total_changes
            self.db[table].insert_all(rows, ignore=True, batch_size=batch_size)
            return self.conn.total_changes - before

    def counts(self) -> dict[str, int]:
        tables = [r["name"] for r in self.all("SELECT name FROM sqlite_master WHERE type = 'table' "
                                              "AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        return {t: self.scalar(f"SELECT COUNT(*) FROM {_quote(t)}") for t in tables if t != "meta"}

    # --- runs -------------------------------------------------------------------------------
    @contextmanager
    def run(self, command: str, mode: str, now: Callable[[], datetime] = utcnow) -> Iterator[dict[str, Any]]:
        """Record one command invocation; the yielded dict collects its counts. The row carries the
        process's pid and identity, so a row left 'running' by a killed process reads as 'died'."""
        if self._identity is None:
            self._identity = process_identity() or ""
        with self.tx():
            run_id = self.insert("runs", {
                "command": command, "mode": mode, "pid": os.getpid(), "proc_start": self._identity or None,
                "started_at": iso(now()), "status": "running"})
        counts: dict[str, Any] = {}
        try:
            yield counts
        except BaseException as exc:
            status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            from tokenomics.keys import redact  # a provider's error text may echo a key

            with self.tx():
                self.execute("UPDATE runs SET ended_at = ?, status = ?, counts = ?, error = ? WHERE id = ?",
                             [iso(now()), status, json.dumps(counts), redact(exc)[:500], run_id])
            raise
        with self.tx():
            self.execute("UPDATE runs SET ended_at = ?, status = 'ok', counts = ? WHERE id = ?",
                         [iso(now()), json.dumps(counts), run_id])

    def _with_died(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for r in rows:
            if r["status"] == "running" and process_gone(r.get("pid"), r.pop("proc_start", None)):
                r["status"] = "died"
            r.pop("proc_start", None)
        return rows

    def record_skipped(self, command: str, mode: str, why: str) -> None:
        """A run row for a step the loop left out this tick (its provider backing off)."""
        now = iso(utcnow())
        with self.tx():
            self.execute("INSERT INTO runs(command, mode, pid, started_at, ended_at, status, error) "
                         "VALUES (?, ?, ?, ?, ?, 'skipped', ?)", [command, mode, os.getpid(), now, now, why])

    def last_runs(self) -> list[dict[str, Any]]:
        """The last run of each command (index look-ups: one skip per command, not a scan of runs);
        a 'running' row whose process is gone shows as 'died'."""
        return self._with_died(self.all(
            "WITH RECURSIVE c(command) AS (SELECT MIN(command) FROM runs UNION ALL "
            "SELECT (SELECT MIN(command) FROM runs WHERE command > c.command) FROM c WHERE c.command IS NOT NULL) "
            "SELECT r.command, r.started_at, r.ended_at, r.status, r.counts, r.error, r.pid, r.proc_start "
            "FROM c JOIN runs r ON r.id = (SELECT MAX(id) FROM runs WHERE command = c.command) "
            "WHERE c.command IS NOT NULL ORDER BY r.command"))

    def died_runs(self, limit: int = 100) -> list[dict[str, Any]]:
        """Runs left 'running' by a process that is gone (killed, or its final update failed)."""
        rows = self.all("SELECT id, command, started_at, status, pid, proc_start FROM runs "
                        "WHERE status = 'running' ORDER BY id DESC LIMIT ?", [limit])
        return [r for r in self._with_died(rows) if r["status"] == "died"]

    # --- cursors ----------------------------------------------------------------------------
    def get_cursor(self, name: str) -> str | None:
        return self.scalar("SELECT value FROM cursors WHERE name = ?", [name])

    def set_cursor(self, name: str, value: str) -> None:
        self.execute(
            "INSERT INTO cursors(name, value, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            [name, value, iso(utcnow())],
        )

    # --- account ----------------------------------------------------------------------------
    def cash(self, capital: float) -> float:
        """Cash as the store knows it: starting capital plus every fill's signed cash flow."""
        flows = self.scalar("SELECT value FROM totals WHERE name = 'fills.cash_flow'") or 0.0
        return round(capital + flows, 2)

    def equity_peak(self, since: str = "") -> float | None:
        """The highest equity recorded at or after `since` (a running peak kept in `cursors` with the
        last equity rowid it has seen: each call reads only the rows recorded since the last)."""
        raw = self.get_cursor("equity:peak")
        cur = json.loads(raw) if raw else {}
        if cur.get("since") != since:
            cur = {"since": since, "peak": None, "rowid": 0}
        row = self.one("SELECT MAX(rowid) AS rowid, MAX(equity) AS peak FROM equity WHERE rowid > ? AND ts >= ?",
                       [cur["rowid"], since])
        if row and row["rowid"] is not None:
            peaks = [p for p in (cur["peak"], row["peak"]) if p is not None]
            cur = {"since": since, "peak": max(peaks) if peaks else None, "rowid": row["rowid"]}
            self.set_cursor("equity:peak", json.dumps(cur))
        return cur["peak"]

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
        return self.scalar("SELECT equity FROM equity WHERE ts <= ? ORDER BY ts DESC LIMIT 1", [iso(ts)])

    def equity_first_since(self, ts: datetime) -> float | None:
        return self.scalar("SELECT equity FROM equity WHERE ts >= ? ORDER BY ts LIMIT 1", [iso(ts)])

    # --- advisory lock ----------------------------------------------------------------------
    @contextmanager
    def trade_lock(self, timeout: float = 10.0) -> Iterator[None]:
        """One process at a time may send orders; the OS frees the lock if the process dies. The lock
        file stays open for the store's life and gets this process's pid once, not per acquisition;
        re-entrant within the process."""
        if self._lock_depth:
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
            return
        lock_path = self.path.with_name(self.path.name + ".trade.lock")
        first = self._lock_fh is None
        if first:
            self._lock_fh = open(lock_path, "a+")
        fh = self._lock_fh
        deadline = time.monotonic() + timeout
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
        self._lock_depth = 1
        try:
            if first:  # who holds it, for a person looking: written once per process
                fh.seek(0)
                fh.truncate()
                fh.write(str(os.getpid()))
                fh.flush()
            yield
        finally:
            self._lock_depth = 0
            fcntl.flock(fh, fcntl.LOCK_UN)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)
