"""The sim market does not depend on how it was reached (issue 14): `run --loop` (one Runtime ticking)
and cron's `run --once` (a fresh Runtime per tick) play the same prices, fills and equity."""

from __future__ import annotations

import os
import threading

import pytest


@pytest.fixture
def clean_env(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for k in list(os.environ):
        if k.startswith("TOKENOMICS_"):
            monkeypatch.delenv(k)
    return tmp_path


def _snapshot(rt, row: dict) -> dict:
    prices = {s: rt.world.price(s, rt.sim_step()) for s in rt.settings.universe.symbols}
    return {"now": row["now"], "equity": row["equity"], "cash": row["cash"], "prices": prices}


def test_a_loop_and_separate_runs_once_play_the_same_market(clean_env):
    from tokenomics.runtime import Options, Runtime
    from tokenomics.trading.loop import tick

    ticks = 60
    stop = threading.Event()
    loop = Runtime(Options(db=clean_env / "loop.db"))
    looped = []
    for n in range(1, ticks + 1):
        row = tick(loop, n, stop)
        looped.append(_snapshot(loop, row))
    once = []
    for n in range(1, ticks + 1):  # each tick in a fresh Runtime, as each cron `run --once` is a fresh process
        rt = Runtime(Options(db=clean_env / "cron.db"))
        row = tick(rt, n, stop)
        once.append(_snapshot(rt, row))
        rt.close()
    for a, b in zip(looped, once):
        assert a == b
    cron = Runtime(Options(db=clean_env / "cron.db"))
    q = "SELECT symbol, side, qty, price, cash_flow, ts FROM fills ORDER BY ts, id"
    assert loop.store.all(q) == cron.store.all(q)
    assert loop.store.all("SELECT * FROM equity ORDER BY ts") == cron.store.all("SELECT * FROM equity ORDER BY ts")
    assert loop.store.scalar("SELECT COUNT(*) FROM fills") > 0
    loop.close()
    cron.close()
