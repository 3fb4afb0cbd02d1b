"""Where rebalance takes its prices from: stored bars covering every symbol, else the sim world."""

from datetime import timedelta

from tokenomics.trading import rebalance as rebalancer
from tokenomics.store import iso


def store_bars(rt, symbol, closes, source="csv", timeframe="1d", end_offset_days=0):
    now = rt.now()
    rows = [{"source": source, "symbol": symbol, "timeframe": timeframe,
             "ts": iso(now - timedelta(days=len(closes) - i + end_offset_days)), "open": c, "high": c, "low": c,
             "close": c, "volume": 1.0} for i, c in enumerate(closes)]
    with rt.store.tx():
        rt.store.insert_ignore("bars", rows)


def test_stored_bars_covering_every_symbol_are_used_up_to_now(rt):
    store_bars(rt, "AAPL", [100, 101, 103, 102, 104, 105])
    store_bars(rt, "MSFT", [200, 198, 199, 203, 201, 204])
    with rt.store.tx():  # a bar that opens after now is not known yet
        rt.store.insert_ignore("bars", [{"source": "csv", "symbol": "AAPL", "timeframe": "1d",
                                         "ts": iso(rt.now() + timedelta(days=1)), "open": 1, "high": 1, "low": 1,
                                         "close": 1, "volume": 1}])
    prices, origin = rebalancer.price_history(rt, ["AAPL", "MSFT"], lookback=4)
    assert origin == "bars:csv/1d"
    assert prices["AAPL"].tolist() == [103, 102, 104, 105] and prices["MSFT"].tolist() == [199, 203, 201, 204]


def test_falls_back_to_the_sim_when_a_symbol_has_no_stored_bars(rt):
    store_bars(rt, "AAPL", [100, 101, 103, 102])
    prices, origin = rebalancer.price_history(rt, ["AAPL", "BTC/USD"], lookback=120)
    assert origin == "sim:120 steps"
    step = rt.sim_step()
    assert prices["BTC/USD"].count() == 120  # crypto trades every step
    assert 3 <= prices["AAPL"].count() < 120  # equities only in NYSE sessions
    assert prices["BTC/USD"].iloc[-1] == rt.world.price("BTC/USD", step)
