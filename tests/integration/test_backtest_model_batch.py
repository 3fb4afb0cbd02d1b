"""The model backtest computes each symbol's features once over the window (they are causal: a bar's
row reads bars up to it only) and predicts in one batch (issue 16 item 4); its signals, orders and
equity are those of the per-step computation (features over the last bars at every step)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tokenomics.research import backtest as replay
from tokenomics.runtime import Options, Runtime


@pytest.fixture
def rt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Runtime:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TOKENOMICS_LOGS__DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("TOKENOMICS_SIM__HISTORY_STEPS", "1900")  # equities too have bars enough for features
    r = Runtime(Options(db=tmp_path / "main.db"))
    yield r
    r.close()


def test_the_batched_model_backtest_trades_as_the_per_step_one(rt: Runtime) -> None:
    w = replay.Window(rt.sim_step() - 150, rt.sim_step())
    params = {"ml.min_probability": 0.5, "risk.max_open_positions": 8}
    batched = replay.run_backtest(rt, "model", w, params)
    per_step = replay.run_backtest(rt, "model", w, params, batch=False)
    for key in ("signals", "orders", "trades", "equity", "metrics"):
        assert batched[key] == per_step[key], key
    assert len({s["symbol"] for s in batched["signals"]}) == 8  # every symbol predicted on
    assert sum(o["status"] == "filled" for o in batched["orders"]) >= 4


def test_a_model_backtest_over_stored_bars_predicts_on_those_bars(rt: Runtime) -> None:
    """Over stored bars (here a file's) the model predicts on the replayed bars, whatever source it was
    trained on (its features are scale-free), step by step as in one batch."""
    import math
    from datetime import datetime, timedelta, timezone

    from tokenomics.store import iso

    t0, p, rows = datetime(2025, 1, 1, tzinfo=timezone.utc), 100.0, []
    for i in range(600):
        q = p * math.exp(0.01 * math.sin(i * 0.7) + 0.004 * math.cos(i * 1.3))
        rows.append({"source": "file", "symbol": "XYZ", "timeframe": "1h", "ts": iso(t0 + timedelta(hours=i)),
                     "open": p, "high": max(p, q) * 1.002, "low": min(p, q) * 0.998, "close": q, "volume": 10.0})
        p = q
    with rt.store.tx():
        rt.store.insert_ignore("bars", rows)
    w = replay.window(rt, None, None, None, source="file")
    params = {"ml.min_probability": 0.01}
    batched = replay.run_backtest(rt, "model", w, params)
    per_step = replay.run_backtest(rt, "model", w, params, batch=False)
    for key in ("signals", "orders", "trades", "equity", "metrics"):
        assert batched[key] == per_step[key], key
    assert len(batched["signals"]) > 100 and {s["symbol"] for s in batched["signals"]} == {"XYZ"}
    first = min(s["id"].split(":", 3)[3] for s in batched["signals"])  # model:NAME:SYMBOL:BAR
    assert first.startswith("2025-01-0")  # the file's bars, not the sim's (2026)
    assert batched["orders"]
