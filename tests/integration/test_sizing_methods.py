"""`size --method` in-process: every method's size is recorded with its evidence and capped by the gate."""

import json

import pytest

from tokenomics import engine
from tokenomics.runtime import Options, Runtime
from tokenomics.store import iso


@pytest.fixture
def rt(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for k in list(__import__("os").environ):
        if k.startswith("TOKENOMICS_"):
            monkeypatch.delenv(k)
    r = Runtime(Options(db=tmp_path / "t.db"))
    yield r
    r.close()


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
    out = engine.size(rt, method)
    row, d = detail(rt, sid)
    assert out["rows"][0]["method"] == method and row["size_method"] == method
    assert out["rows"][0]["requested"] == d["candidates"][method]
    assert row["status"] == "sized" and 0 < row["notional"] <= 1000  # 10 % of 10,000 equity
    assert set(d["candidates"]) == {"fixed", "kelly", "vol-target", "adaptive"}
    assert d["volatility"]["bars"] > 15 and d["volatility"]["annualized"] > 0


def test_kelly_with_no_history_bets_the_priors_stake_scaled_by_strength(rt):
    sid = new_signal(rt, "AAPL", strength=0.8)
    engine.size(rt, "kelly")
    _, d = detail(rt, sid)
    assert d["kelly"]["trades"] == 0 and d["kelly"]["full_kelly"] == pytest.approx(0.10)
    assert d["candidates"]["kelly"] == pytest.approx(10_000 * 0.5 * 0.10 * 0.8)


def test_vol_target_gives_the_more_volatile_asset_less(rt):
    a, b = new_signal(rt, "AAPL"), new_signal(rt, "ETH/USD")
    rt.settings.risk.target_volatility_pct = 60.0
    engine.size(rt, "vol-target")
    (_, da), (_, db) = detail(rt, a), detail(rt, b)
    assert db["volatility"]["annualized"] > da["volatility"]["annualized"]
    assert db["candidates"]["vol-target"] < da["candidates"]["vol-target"]
    expected = 10_000 * 0.6 / 10 / da["volatility"]["annualized"] * 0.9
    assert da["candidates"]["vol-target"] == pytest.approx(expected, abs=0.01)


def test_a_huge_request_is_shrunk_by_the_gate(rt):
    sid = new_signal(rt, "AAPL", strength=1.0)
    rt.settings.sizing.kelly_prior_win_rate = 0.95  # full Kelly 0.9: 4,500 asked
    engine.size(rt, "kelly")
    row, d = detail(rt, sid)
    assert d["candidates"]["kelly"] == pytest.approx(4500)
    assert row["notional"] == 1000 and row["status_reason"] == "shrink: max_position_pct"


def test_atr_estimator_is_used_when_configured(rt):
    sid = new_signal(rt, "MSFT")
    rt.settings.sizing.vol_estimator = "atr"
    engine.size(rt, "vol-target")
    _, d = detail(rt, sid)
    assert d["volatility"]["estimator"] == "atr" and d["volatility"]["annualized"] > 0
