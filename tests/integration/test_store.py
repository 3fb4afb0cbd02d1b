"""The store under concurrency and faults: write transactions take the write lock first (so the busy
timeout applies), busy retries, durable order-path commits, runs whose process died, the sim clock
moving atomically, a calendar that extends itself, and a tick whose queries do not grow."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from tokenomics.core.errors import TokenomicsError
from tokenomics.store import Store


def test_a_write_transaction_survives_a_commit_between_its_read_and_its_write(tmp_path):
    b = Store.open(tmp_path / "s.db")

    def write() -> None:
        a = Store.open(tmp_path / "s.db")
        a.execute("INSERT INTO cursors VALUES ('a', '1', 'x')")
        a.close()

    other = threading.Thread(target=write)
    with b.tx():
        b.one("SELECT * FROM cursors")  # b reads first ...
        other.start()  # ... another connection writes meanwhile (it waits for b: b holds the write lock)
        other.join(0.3)
        b.execute("INSERT INTO cursors VALUES ('b', '1', 'x')")  # ... then b writes: no 'database is locked'
    other.join(10)
    assert {r["name"] for r in b.all("SELECT name FROM cursors")} == {"a", "b"}
    b.close()


def test_a_busy_begin_is_retried_then_gives_up_with_a_clear_error(tmp_path):
    waiter = Store.open(tmp_path / "s.db", busy_timeout_ms=50)
    release = threading.Event()

    def hold(seconds: float) -> None:
        holder = Store.open(tmp_path / "s.db")
        with holder.tx():
            holder.execute("INSERT OR REPLACE INTO cursors VALUES ('h', '1', 'x')")
            release.wait(seconds)
        holder.close()

    t = threading.Thread(target=hold, args=(0.3,))  # longer than one busy timeout, shorter than the retries
    t.start()
    time.sleep(0.05)
    with waiter.tx():
        waiter.execute("INSERT INTO cursors VALUES ('w', '1', 'x')")
    t.join()
    assert waiter.scalar("SELECT COUNT(*) FROM cursors") == 2

    t = threading.Thread(target=hold, args=(30,))  # held far beyond every retry
    t.start()
    time.sleep(0.05)
    with pytest.raises(TokenomicsError) as err:
        with waiter.tx():
            pass
    release.set()
    t.join()
    assert err.value.exit_code == 1 and "busy" in str(err.value)
    waiter.close()


def test_durable_transactions_commit_with_synchronous_full(store):
    seen = []
    store.conn.set_trace_callback(seen.append)
    with store.tx(durable=True):
        assert store.scalar("PRAGMA synchronous") == 2  # FULL: the commit is on disk when it returns
        store.execute("INSERT INTO cursors VALUES ('d', '1', 'x')")
    assert any(s.startswith("BEGIN IMMEDIATE") for s in seen)


def test_the_order_path_commits_durably(rt):
    """Every transaction that writes orders, fills, positions or the paper broker's book runs with
    synchronous=FULL."""
    from tokenomics.trading.loop import tick

    seen: list[str] = []
    rt.store.conn.set_trace_callback(seen.append)
    stop = threading.Event()
    for n in range(1, 41):
        tick(rt, n, stop)
    assert rt.store.scalar("SELECT COUNT(*) FROM orders"), "no order in 40 ticks"
    sync, in_tx, order_writes = None, False, 0
    for s in seen:
        m = re.match(r"PRAGMA synchronous\s*=\s*(\w+)", s)
        if m:
            sync = m.group(1).upper()
        if re.match(r"(INSERT (OR \w+ )?INTO|UPDATE|DELETE FROM) (orders|fills|positions|paper_orders)\b", s) \
                and not s.startswith("UPDATE positions SET last_price"):  # a mark, not a booking
            order_writes += 1
            assert sync in ("FULL", "2", "EXTRA", "3"), s
    assert order_writes


def test_a_run_whose_process_is_gone_shows_as_died(tmp_path):
    db = tmp_path / "s.db"
    Store.open(db).close()
    code = ("import os, signal; from tokenomics.store import Store; st = Store.open(%r); "
            "r = st.run('trade', 'sim'); r.__enter__(); os.kill(os.getpid(), signal.SIGKILL)") % str(db)
    proc = subprocess.Popen([sys.executable, "-c", code])
    assert proc.wait(60) == -9
    st = Store.open(db)
    with st.run("status", "sim"):  # this process is alive: its run is 'running'
        runs = {r["command"]: r for r in st.last_runs()}
    assert runs["trade"]["status"] == "died" and runs["trade"]["pid"] == proc.pid
    assert runs["status"]["status"] == "running"
    assert [r["command"] for r in st.died_runs()] == ["trade"]
    st.close()


def test_overlapping_advances_move_the_clock_once_each(tmp_path):
    code = ("import sys; from pathlib import Path; from tokenomics.runtime import Options, Runtime; "
            "rt = Runtime(Options(db=Path(sys.argv[1]))); rt.world; sys.stdin.read(); rt.advance(1)")
    from tokenomics.runtime import Options, Runtime

    rt = Runtime(Options(db=tmp_path / "c.db"))
    start = rt.sim_step()
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "c.db")], stdin=subprocess.PIPE)
             for _ in range(6)]
    time.sleep(2)  # every process has opened the store and built its world
    for p in procs:
        p.stdin.close()  # ... now all advance at once
    assert [p.wait(60) for p in procs] == [0] * 6
    assert rt.sim_step() == start + 6
    rt.close()


def test_a_runtime_crossing_the_calendar_horizon_still_trades_equities(rt):
    rt.calendar.is_open("equity", rt.now())  # the calendar is built around now
    monday = datetime(rt.now().year + 3, 3, 1, 15, 0, tzinfo=timezone.utc)  # 15:00 UTC: in the session
    monday += timedelta(days=(7 - monday.weekday()) % 7 + 7)  # the second Monday of March, 3 years on
    wednesday = monday + timedelta(days=2)
    assert rt.calendar.is_open("equity", wednesday)
    assert not rt.calendar.is_open("equity", wednesday.replace(hour=3))
    assert not rt.calendar.is_open("equity", wednesday + timedelta(days=4))  # a Sunday
    assert rt.tradable("AAPL", wednesday)
    assert rt.calendar.trading_days_between("equity", monday, wednesday) == 2


def test_the_trade_lock_file_is_written_once(store):
    lock = store.path.with_name(store.path.name + ".trade.lock")
    with store.trade_lock():
        pass
    first = os.stat(lock).st_mtime_ns
    time.sleep(0.02)
    for _ in range(3):
        with store.trade_lock():
            with store.trade_lock():  # re-entrant in one process
                pass
    assert os.stat(lock).st_mtime_ns == first
    assert lock.read_text() == str(os.getpid())


def test_the_per_command_path_imports_neither_sqlite_utils_nor_pandas(tmp_path):
    code = ("import sys; from tokenomics.store import Store; st = Store.open(sys.argv[1]); "
            "r = st.run('status', 'sim'); r.__enter__(); st.last_runs(); st.cash(1.0); r.__exit__(None, None, None); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sqlite_utils', 'pandas', 'numpy')))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "p.db")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


SMALL = ("positions", "halts", "clock", "cursors", "meta", "totals", "reconcile_diffs")  # do not grow with ticks


def test_a_tick_reads_no_growing_table_whole(rt):
    """Every SELECT of a tick on a store with history searches an index; none scans a table that
    grows with the ticks (the loop's cost per tick must not grow with the store)."""
    from tokenomics.trading.loop import tick

    stop = threading.Event()
    for n in range(1, 31):
        tick(rt, n, stop)
    seen: list[str] = []
    rt.store.conn.set_trace_callback(seen.append)
    tick(rt, 31, stop)
    rt.store.conn.set_trace_callback(None)
    con = sqlite3.connect(rt.db_path)
    scans = set()
    for sql in seen:
        if not sql.lstrip().upper().startswith(("SELECT", "WITH")):
            continue
        for row in con.execute("EXPLAIN QUERY PLAN " + sql):
            detail = row[3]
            m = re.match(r"SCAN (\w+)", detail)
            if m and m.group(1) not in SMALL and "orders_open" not in detail:  # (a partial index of open orders)
                scans.add((detail, sql[:120]))
            if re.match(r"SEARCH equity .*\(ts>\?\)", detail) and "LIMIT" not in sql:  # a range to the end
                scans.add((detail, sql[:120]))
    assert not scans, sorted(scans)
    assert not any("sqlite_master" in s or "table_info" in s for s in seen)
    # no savepoint wraps only reads (sqlite-utils put one around every query)
    opened: list[list[str]] = []
    for s in seen:
        if s.startswith("SAVEPOINT"):
            opened.append([])
        elif s.startswith("RELEASE") and opened:
            body = opened.pop()
            assert any(not b.lstrip().upper().startswith(("SELECT", "WITH", "PRAGMA")) for b in body), body
        elif opened:
            opened[-1].append(s)


def test_a_tick_marks_to_market_once_unless_it_gates_entries(rt):
    """Within a tick, trade and check-exits leave the marking to the tick's own mark (the equity row of
    the tick's moment would be replaced anyway); trade marks first only when it has entries to gate
    (the halts must be current). Every tick reads the sim clock once. Outside a tick (cron's `trade`)
    each command still marks."""
    from tokenomics.trading.loop import tick
    from tokenomics.trading.orders import trade

    stop = threading.Event()
    for n in range(1, 21):
        tick(rt, n, stop)
    marks, gated = [], 0
    for n in range(21, 61):
        seen: list[str] = []
        rt.store.conn.set_trace_callback(seen.append)
        tick(rt, n, stop)
        rt.store.conn.set_trace_callback(None)
        marks.append(sum("INTO equity" in s for s in seen))
        assert sum("FROM clock" in s for s in seen) == 1
        gated += marks[-1] == 2
    assert set(marks) <= {1, 2} and marks.count(1) > 20
    assert rt.store.scalar("SELECT COUNT(*) FROM equity") >= 60
    seen = []
    rt.store.conn.set_trace_callback(seen.append)
    trade(rt)
    rt.store.conn.set_trace_callback(None)
    assert sum("INTO equity" in s for s in seen) >= 1
