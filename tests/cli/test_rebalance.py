"""`tokenomics rebalance` on the sim market (no network): weights, bounds, plan, plot, and --execute
sending each order once however often it is run."""

import sqlite3

import pytest

UNIVERSE = {"AAPL", "MSFT", "NVDA", "TSLA", "AMZN", "JPM", "BTC/USD", "ETH/USD"}


def orders(cli):
    con = sqlite3.connect(cli.cwd / "store.db")
    try:
        return con.execute("SELECT client_order_id FROM paper_orders ORDER BY client_order_id").fetchall()
    finally:
        con.close()


def test_hrp_plan_weights_sum_to_one_and_plot(cli):
    png = cli.cwd / "out" / "alloc.png"
    doc = cli.json("rebalance", "--method", "hrp", "--plot", str(png))
    w = doc["target_weights"]
    assert set(w) == UNIVERSE
    assert sum(w.values()) == pytest.approx(1.0, abs=1e-6) and all(0 <= x <= 1 for x in w.values())
    assert doc["prices"].startswith("sim:") and doc["observations"] > 100
    # all cash now: every symbol is a planned buy, and the costs are the configured bps of the turnover
    assert doc["current_weights"] == {"cash": 1.0} and doc["drift"] == pytest.approx(1.0)
    assert {t["symbol"] for t in doc["trades"] if t["status"] == "planned" and t["side"] == "buy"} == UNIVERSE
    costs = doc["costs"]
    assert costs["fees"] == pytest.approx(costs["turnover"] * 10 / 1e4, abs=0.05)
    assert costs["slippage"] == pytest.approx(costs["turnover"] * 5 / 1e4, abs=0.05)
    assert doc["executed"] is False and doc["orders"] == [] and orders(cli) == []  # plan only
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_max_sharpe_respects_weight_bounds(cli):
    doc = cli.json("rebalance", "--method", "max-sharpe", "--min-weight", "0.05", "--max-weight", "0.4")
    w = doc["target_weights"]
    assert set(w) == UNIVERSE and sum(w.values()) == pytest.approx(1.0, abs=1e-6)
    assert all(0.05 - 1e-6 <= x <= 0.4 + 1e-6 for x in w.values())


def test_execute_twice_sends_orders_only_the_first_time(cli):
    env = {"TOKENOMICS_TRADING__MARKET_HOURS_ONLY": "false"}
    args = ("rebalance", "--method", "inverse-vol", "--symbols", "AAPL,MSFT,BTC/USD", "--execute")
    first = cli.json(*args, env=env)
    sent = [o for o in first["orders"] if "client_order_id" in o]
    assert len(sent) == 3 and all(o["status"] == "filled" for o in sent)
    book = orders(cli)
    assert len(book) == 3
    second = cli.json(*args, env=env)
    assert second["plan_id"] == first["plan_id"]
    assert all("client_order_id" not in o for o in second["orders"])
    assert orders(cli) == book  # the broker saw nothing new
    status = cli.json("status")
    assert {p["symbol"] for p in status["positions"]} == {"AAPL", "MSFT", "BTC/USD"}


@pytest.mark.parametrize("args,needle", [
    (["--method", "bogus"], "--method"),
    (["--max-weight", "0.1"], "cannot reach 100%"),
    (["--symbols", "AAPL,NOPE"], "NOPE"),
    (["--method", "target-return"], "--target"),
])
def test_bad_usage_exits_2(cli, args, needle):
    proc = cli("rebalance", *args)
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr and proc.stdout == ""

