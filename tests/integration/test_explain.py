"""`explain`: the whole chain behind a trade, from any of its ids, as JSON and as a tree."""

import json
import subprocess
import sys

import pytest

from tokenomics.trading import exits, explain, orders, sizing
from tokenomics.core.errors import UsageProblem
from tokenomics.store import iso

HEADLINE = "$BTC: ETF inflows hit a record as institutions pile in"


def traded_round_trip(rt):
    """An article, its bullish score, the signal, sizing, the entry, and an exit some steps later."""
    st, now = rt.store, rt.now()
    with st.tx():
        st.db["articles"].insert({"id": "sim:1:0", "provider": "sim", "headline": HEADLINE, "summary": "",
                                  "symbols": json.dumps(["BTC/USD"]), "source": "sim-wire", "url": "",
                                  "created_at": iso(now), "fetched_at": iso(now), "status": "scored",
                                  "attempts": 1, "error": None})
        st.db["scores"].insert({"article_id": "sim:1:0", "symbol": "BTC/USD", "scorer": "offline",
                                "sentiment": "bullish", "conviction": 88, "reason": "record inflows",
                                "scored_at": iso(now), "article_created_at": iso(now)})
        st.db["signals"].insert({
            "id": "sentiment:sim:1:0:BTC/USD", "symbol": "BTC/USD", "side": "buy", "source": "sentiment",
            "strength": 0.88, "reason": "record inflows", "ref": "sim:1:0", "asset_class": "crypto",
            "created_at": iso(now), "status": "new", "status_reason": "bullish", "size_method": None,
            "notional": None, "updated_at": iso(now)})
    sizing.size(rt, "vol-target")
    orders.trade(rt)
    rt.settings.exits.stop_loss_pct = 1e-9
    rt.settings.exits.take_profit_pct = 1e-9
    rt.advance(3)
    exits.check_exits(rt)
    return "sentiment:sim:1:0:BTC/USD"


def test_explain_shows_every_link_of_a_closed_trade(rt):
    sid = traded_round_trip(rt)
    doc = explain.explain(rt, sid)
    assert doc["state"] == "closed" and doc["symbol"] == "BTC/USD"
    assert doc["articles"][0]["headline"] == HEADLINE
    assert doc["scores"][0]["conviction"] == 88 and doc["scores"][0]["reason"] == "record inflows"
    assert doc["signal"]["id"] == sid and doc["sizing"]["method"] == "vol-target"
    assert doc["sizing"]["notional"] == doc["order"]["notional"]
    assert set(doc["sizing"]["candidates"]) == {"fixed", "kelly", "vol-target", "adaptive"}
    assert [d["stage"] for d in doc["risk_decisions"]] == ["size"]
    assert doc["order"]["status"] == "filled" and len(doc["fills"]) == 1
    assert doc["exit"]["order"]["side"] == "sell" and doc["exit"]["risk_decisions"][0]["rule"] == "exit"
    assert doc["trade"]["exit_reason"] in ("stop_loss", "take_profit")
    assert doc["trade"]["entry_order_id"] == doc["order"]["client_order_id"]
    # the same chain from the order id, the exit order id and the symbol
    for key in (doc["order"]["client_order_id"], doc["exit"]["order"]["client_order_id"], "btc/usd"):
        assert explain.explain(rt, key)["signal"]["id"] == sid


def test_explain_tree_reads_like_the_chain(rt):
    from rich.console import Console

    traded_round_trip(rt)
    console = Console(record=True, width=200)
    console.print(explain.explain_tree(explain.explain(rt, "BTC/USD")))
    text = console.export_text()
    for needle in (HEADLINE, "conviction 88", "method vol-target", "size: accept by", "closed trade:", "fill "):
        assert needle in text, needle


def test_explain_unknown_key_is_a_usage_error(rt):
    with pytest.raises(UsageProblem, match="no order, signal or symbol"):
        explain.explain(rt, "NOPE")


def test_explain_cli_prints_json(rt, tmp_path):
    traded_round_trip(rt)
    rt.close()
    proc = subprocess.run([sys.executable, "-m", "tokenomics.cli", "explain", "BTC/USD", "--db", str(tmp_path / "t.db")],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["state"] == "closed"
    bad = subprocess.run([sys.executable, "-m", "tokenomics.cli", "explain", "NOPE", "--db", str(tmp_path / "t.db")],
                         capture_output=True, text=True, cwd=tmp_path)
    assert bad.returncode == 2 and "no order, signal or symbol" in bad.stderr
