"""`size --method` in-process: every method's size is recorded with its evidence and capped by the gate."""

import json

import pytest

from tokenomics.trading import sizing
from tokenomics.store import iso


def new_signal(rt, symbol, strength=0.9, sid=None):
    now = iso(rt.now())
    sid = sid or f"sentiment:t:{symbol}"
    with rt.store.tx():
        rt.store.db["signals"].insert({
            "id": sid, "symbol": symbol, "side": "buy", "source": "sentiment", "strength": strength, "reason": "t",
            "ref": "t", "asset_class": rt.asset_class(symbol), "created_at": now, "status": "new",
            "status_reason": "", "size_method": None, "notional": None, "updated_at": now,
        })
    return sid


def detail(rt, sid):
    row = rt.store.one("SELECT * FROM signals WHERE id = ?", [sid])
    return row, json.loads(row["size_detail"])


@pytest.mark.parametrize("method", ["fixed", "kelly", "vol-target", "adaptive"])
def test_each_method_is_recorded_and_gated(rt, method):
    sid = new_signal(rt, "AAPL")
    out = sizing.size(rt, method)
    row, d = detail(rt, sid)
    assert out["rows"][0]["method"] == method and row["size_method"] == method
    assert out["rows"][0]["requested"] == d["candidates"][method]
    assert row["status"] == "sized" and 0 < row["notional"] <= 1000  # 10 % of 10,000 equity
    assert set(d["candidates"]) == {"fixed", "kelly", "vol-target", "adaptive"}
    assert d["volatility"]["bars"] > 15 and d["volatility"]["annualized"] > 0


def test_kelly_with_no_history_bets_the_priors_stake_scaled_by_strength(rt):
    sid = new_signal(rt, "AAPL", strength=0.8)
    sizing.size(rt, "kelly")
    _, d = detail(rt, sid)
    assert d["kelly"]["trades"] == 0 and d["kelly"]["full_kelly"] == pytest.approx(0.10)
    assert d["candidates"]["kelly"] == pytest.approx(10_000 * 0.5 * 0.10 * 0.8)


def test_vol_target_gives_the_more_volatile_asset_less(rt):
    a, b = new_signal(rt, "AAPL"), new_signal(rt, "ETH/USD")
    rt.settings.risk.target_volatility_pct = 60.0
    sizing.size(rt, "vol-target")
    (_, da), (_, db) = detail(rt, a), detail(rt, b)
    assert db["volatility"]["annualized"] > da["volatility"]["annualized"]
    assert db["candidates"]["vol-target"] < da["candidates"]["vol-target"]
    expected = 10_000 * 0.6 / 10 / da["volatility"]["annualized"] * 0.9
    assert da["candidates"]["vol-target"] == pytest.approx(expected, abs=0.01)


def test_a_huge_request_is_shrunk_by_the_gate(rt):
    sid = new_signal(rt, "AAPL", strength=1.0)
    rt.settings.sizing.kelly_prior_win_rate = 0.95  # full Kelly 0.9: 4,500 asked
    sizing.size(rt, "kelly")
    row, d = detail(rt, sid)
    assert d["candidates"]["kelly"] == pytest.approx(4500)
    assert row["notional"] == 1000 and row["status_reason"] == "shrink: max_position_pct"


def test_atr_estimator_is_used_when_configured(rt):
    sid = new_signal(rt, "MSFT")
    rt.settings.sizing.vol_estimator = "atr"
    sizing.size(rt, "vol-target")
    _, d = detail(rt, sid)
    assert d["volatility"]["estimator"] == "atr" and d["volatility"]["annualized"] > 0


def test_config_method_is_the_default(rt):
    sid = new_signal(rt, "AAPL")
    rt.settings.sizing.method = "adaptive"
    sizing.size(rt)
    assert detail(rt, sid)[0]["size_method"] == "adaptive"


def closed_trade(rt, n, candidates, return_pct):
    sid = f"sentiment:old{n}:AAPL"
    now = iso(rt.now())
    with rt.store.tx():
        rt.store.db["signals"].insert({
            "id": sid, "symbol": "AAPL", "side": "buy", "source": "sentiment", "strength": 0.9, "reason": "t",
            "ref": "t", "asset_class": "equity", "created_at": now, "status": "ordered", "status_reason": "",
            "size_method": "adaptive", "notional": 500, "updated_at": now,
            "size_detail": json.dumps({"candidates": candidates})})
        rt.store.db["orders"].insert({
            "client_order_id": f"c{n}", "signal_id": sid, "symbol": "AAPL", "side": "buy", "intent": "entry",
            "notional": 500, "status": "filled", "broker": "paper", "created_at": now})
        rt.store.db["trades"].insert({
            "entry_order_id": f"c{n}", "exit_order_id": f"x{n}", "symbol": "AAPL", "source": "sentiment",
            "qty": 1, "entry_price": 100, "exit_price": 100 + return_pct, "fees": 0, "pnl": return_pct,
            "return_pct": return_pct, "opened_at": now, "closed_at": now, "exit_reason": "take_profit"})


def test_adaptive_and_kelly_learn_from_the_sources_closed_trades(rt):
    closed_trade(rt, 1, {"fixed": 500, "kelly": 900, "vol-target": 100}, 4.0)
    closed_trade(rt, 2, {"fixed": 500, "kelly": 100, "vol-target": 900}, -2.0)
    sid = new_signal(rt, "MSFT")
    sizing.size(rt, "adaptive")
    row, d = detail(rt, sid)
    assert d["adaptive_trades"] == 2 and d["kelly"]["trades"] == 2
    w = d["adaptive_weights"]
    assert w["kelly"] > w["fixed"] > w["vol-target"]
    c = d["candidates"]
    assert c["adaptive"] == pytest.approx(sum(w[m] * c[m] for m in ("fixed", "kelly", "vol-target")), abs=0.02)
    assert d["kelly"]["win_rate"] == pytest.approx((1 + 20 * 0.55) / 22, abs=1e-4)
