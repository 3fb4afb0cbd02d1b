"""fetch-bars from ccxt against canned exchange responses (ex.fetch replaced; no network)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlparse

import pytest

from tokenomics.research import bars
from tokenomics.core.errors import ProviderError

ccxt = pytest.importorskip("ccxt")
H = 3_600_000
T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
T0_MS = int(T0.timestamp() * 1000)
MISSING = {30, 31, 32}  # hours the exchange has no candle for


class FakeBinance:
    """Serves /api/v3/klines like Binance: candles from startTime, at most `limit`, up to `now`."""

    def __init__(self, hours: int, fail_on_call: int | None = None, bad: dict[int, list] | None = None):
        self.hours = hours
        self.bad = bad or {}  # hour -> [open, high, low, close]: a candle no market can have
        self.fail_on_call = fail_on_call
        self.starts: list[int] = []

    def __call__(self, url, method="GET", headers=None, body=None):
        q = parse_qs(urlparse(url).query)
        assert urlparse(url).path.endswith("/klines") and q["symbol"] == ["BTCUSDT"] and q["interval"] == ["1h"]
        start, limit = int(q["startTime"][0]), int(q["limit"][0])
        self.starts.append(start)
        if self.fail_on_call is not None and len(self.starts) == self.fail_on_call:
            raise ccxt.NetworkError("connection reset")
        out = []
        for i in range(self.hours + 1):  # the last one is still forming
            ts = T0_MS + i * H
            if ts >= start and i not in MISSING and len(out) < limit:
                p = 40000 + i
                ohlc = [str(x) for x in self.bad.get(i, [p, p + 5, p - 5, p + 1])]
                out.append([ts, *ohlc, "12.5", ts + H - 1, "0", 10, "0", "0", "0"])
        return out


def exchange(fake: FakeBinance):
    ex = ccxt.binance({"enableRateLimit": True, "rateLimit": 1})
    ex.set_markets([{
        "id": "BTCUSDT", "symbol": "BTC/USDT", "base": "BTC", "quote": "USDT", "baseId": "BTC", "quoteId": "USDT",
        "type": "spot", "spot": True, "margin": False, "swap": False, "future": False, "option": False,
        "contract": False, "linear": None, "inverse": None, "active": True, "precision": {}, "limits": {}, "info": {},
    }])
    ex.fetch = fake
    return ex


def fetch(store, fake, hours):
    until = T0 + timedelta(hours=hours, minutes=30)  # the bar opened at `hours` has not closed yet
    return bars.fetch_ccxt(store, exchange(fake), ["BTC/USDT"], "1h", T0, until, page_limit=20)[0]


def stored(store):
    return store.all("SELECT ts, open, close FROM bars WHERE source = 'ccxt:binance' ORDER BY ts")


def test_paginates_from_since_skips_the_forming_bar_and_reports_gaps(store):
    fake = FakeBinance(hours=100)
    out = fetch(store, fake, 100)
    rows = stored(store)
    assert len(rows) == 100 - len(MISSING)  # hours 0..99, the forming hour 100 left out
    assert out["new"] == len(rows) and out["fetched"] == len(rows)
    assert rows[0]["ts"] == "2024-01-01T00:00:00+00:00" and rows[-1]["ts"] == "2024-01-05T03:00:00+00:00"
    assert rows[-1]["close"] == 40000 + 99 + 1
    # each page starts right after the previous page's last candle
    assert fake.starts[0] == T0_MS and len(fake.starts) >= 5
    assert all(b > a for a, b in zip(fake.starts, fake.starts[1:]))
    assert out["gaps"] == 1 and out["missing_bars"] == 3
    assert out["gap_list"][0]["after"] == "2024-01-02T05:00:00+00:00"


def test_rerun_inserts_nothing_and_asks_only_for_new_bars(store):
    fetch(store, FakeBinance(hours=50), 50)
    before = store.scalar("SELECT COUNT(*) FROM bars")
    fake = FakeBinance(hours=50)
    again = fetch(store, fake, 50)
    assert again["new"] == 0 and store.scalar("SELECT COUNT(*) FROM bars") == before
    assert fake.starts == [T0_MS + 50 * H]  # incremental: from the bar after the last stored one
    later = FakeBinance(hours=60)
    more = fetch(store, later, 60)
    assert more["new"] == 10 and later.starts[0] == T0_MS + 50 * H


def test_interrupted_fetch_keeps_its_pages_and_resumes_where_it_stopped(store):
    broken = FakeBinance(hours=100, fail_on_call=3)
    with pytest.raises(ProviderError, match="NetworkError"):
        fetch(store, broken, 100)
    kept = stored(store)
    assert len(kept) == 40  # two committed pages of 20
    resumed = FakeBinance(hours=100)
    out = fetch(store, resumed, 100)
    last_kept = datetime.fromisoformat(kept[-1]["ts"])
    assert resumed.starts[0] == int((last_kept + timedelta(hours=1)).timestamp() * 1000)
    rows = stored(store)
    assert len(rows) == 100 - len(MISSING) and len({r["ts"] for r in rows}) == len(rows)
    assert out["new"] == len(rows) - 40


def test_impossible_candles_are_left_out_counted_and_are_no_gaps(store, caplog):
    fake = FakeBinance(hours=40, bad={10: [40010, 40005, 40015, 40010], 20: [0, 5, 0, 1]})  # high < low; price 0
    with caplog.at_level("WARNING", logger="tokenomics"):
        out = fetch(store, fake, 40)
    rows = stored(store)
    assert len(rows) == 40 - len(MISSING & set(range(40))) - 2 and out["invalid"] == 2
    assert "2024-01-01T10:00:00+00:00" not in [r["ts"] for r in rows]
    assert (out["gaps"], out["missing_bars"]) == (1, 3)  # hours 30-32; the refused hours were sent: not gaps
    warning = [r.getMessage() for r in caplog.records if "invalid" in r.getMessage()]
    assert len(warning) == 1 and "BTC/USDT" in warning[0] and "high 40005 is below low 40015" in warning[0]
