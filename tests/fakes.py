"""A loopback fake of the Alpaca (trading, market data, news) and Gemini REST APIs.

Speaks the documented JSON of the endpoints tokenomics uses, checks the auth headers, and keeps
an order book so tests can assert what the broker received (and that nothing came twice).
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

ALPACA_KEY = "PKFAKEALPACAKEY0123456789"
ALPACA_SECRET = "fake-alpaca-secret-abcdefghijklmnopqrstuvwxyz"
GEMINI_KEY = "AIzaFAKE-gemini-key-0123456789"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


class _Loopback:
    """A threaded HTTP server on a free loopback port, serving `_handler()`; a context manager."""

    def _listen(self) -> None:
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


class FakeProviders(_Loopback):
    def __init__(self):
        self.prices = {"AAPL": 200.0, "BTC/USD": 95000.0}
        self.news: list[dict] = []
        self.orders: dict[str, dict] = {}  # client_order_id -> order
        self.posts: list[dict] = []  # every order submission received
        self.requests: list[tuple[str, str]] = []
        self.fill_mode = "fill"  # fill | partial | new | funds | slow
        self.slow_seconds = 0.0
        self.market_open = True
        self.gemini_answers: list = []  # scripted {"scores": [...]} or an HTTP error code; empty: bullish 85
        self.positions: dict[str, float] = {}
        self.trade_age: dict[str, float] = {}  # symbol -> seconds since its latest trade (market data)
        self.bars: dict[str, list[dict]] = {}  # symbol -> raw bars {t, o, h, l, c, v, n, vw}, oldest first
        self.bars_page_size = 10_000  # the server's own cap per page (Alpaca's is 10000)
        self.bars_errors: dict[str, int] = {}  # symbol -> HTTP status its bar requests get
        self.bar_queries: list[dict] = []  # every bars request's query (and path)
        self.news_queries: list[dict] = []  # every news request's query
        # news indexing lag: article id -> the fake time it becomes visible; `clock` is that time (None: all visible)
        self.news_visible_at: dict[int, float] = {}
        self.clock: float | None = None
        # path -> scripted answers served before the real route: (status, body, headers), where body is a
        # JSON-able object or raw text (an HTML error page), or the string "reset" (the connection is dropped)
        self.script: dict[str, list] = {}
        self.faults: dict[str, list] = {}  # path prefix -> faults for its next requests (an HTTP code, "reset", "html")
        self.down: dict[str, object] = {}  # path prefix -> a fault every request to it gets, until removed
        self.crypto_fee_bps = 0.0  # crypto buys: the fee comes out of the coin received
        self.activities: list[dict] = []  # account activities (crypto fees: CFEE)
        self.on_request = None  # called with (method, path) before each request is answered
        self._listen()

    # --- helpers for tests -------------------------------------------------------------------
    def add_news(self, n: int, headline: str, symbols: list[str], created_at: str, summary: str = "") -> None:
        self.news.append({"id": n, "headline": headline, "author": "x", "source": "benzinga", "summary": summary,
                          "content": "", "url": f"https://example.com/{n}", "images": [], "symbols": symbols,
                          "created_at": created_at, "updated_at": created_at})

    def add_bars(self, symbol: str, start: datetime, n: int, step: timedelta, skip: tuple[int, ...] = ()) -> None:
        """n bars from start every step (leaving out the indexes in skip); bar i closes at 100 + i."""
        for i in range(n):
            if i not in skip:
                t = (start + i * step).astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
                self.bars.setdefault(symbol, []).append(
                    {"t": t, "o": 99.5 + i, "h": 101.0 + i, "l": 99.0 + i, "c": 100.0 + i, "v": 1000 + i,
                     "n": 10, "vw": 100.0 + i})

    def fill(self, coid: str, qty: float | None = None, price: float | None = None) -> None:
        """Fill an open order (fully, or up to qty), at the current price (or `price`)."""
        o = self.orders[coid]
        target = float(o["qty"]) if qty is None else qty
        delta = (target - float(o["filled_qty"])) * (1 if o["side"] == "buy" else -1)
        if delta > 0 and o["asset_class"] == "crypto" and self.crypto_fee_bps:
            fee = round(delta * self.crypto_fee_bps / 1e4, 9)  # Alpaca crypto: the fee is paid in the coin
            self.activities.append({"id": str(uuid.uuid4()), "activity_type": "CFEE", "date": now_iso()[:10],
                                    "symbol": o["symbol"].replace("/", ""), "qty": str(-fee),
                                    "price": str(self.prices[o["symbol"]]), "order_id": o["id"],
                                    "net_amount": "0", "description": "crypto fee"})
            delta -= fee
        self.positions[o["symbol"]] = round(self.positions.get(o["symbol"], 0.0) + delta, 9)
        o["filled_qty"] = str(target)
        o["filled_avg_price"] = str(self.prices[o["symbol"]] if price is None else price)
        o["status"] = "filled" if abs(target - float(o["qty"])) < 1e-12 else "partially_filled"
        o["filled_at"] = o["updated_at"] = now_iso()
        if o["status"] == "filled" and o.get("parent"):  # one leg of a bracket filled: the other is canceled
            for leg in self.orders[o["parent"]]["legs"] or []:
                if leg is not o and leg["status"] in ("new", "held", "accepted"):
                    leg["status"], leg["canceled_at"] = "canceled", now_iso()

    def fill_leg(self, parent_coid: str, kind: str, price: float) -> dict:
        """A bracket's take-profit ("limit") or stop-loss ("stop") leg fills at the broker at `price`."""
        leg = next(g for g in self.orders[parent_coid]["legs"] if g["order_type"] == kind)
        self.fill(leg["client_order_id"], price=price)
        return leg

    def expire(self, coid: str) -> None:
        """A DAY order that did not fill ends expired at the close."""
        self.orders[coid]["status"] = "expired"
        self.orders[coid]["expired_at"] = self.orders[coid]["updated_at"] = now_iso()

    def held_by_legs(self, symbol: str) -> float:
        """Shares held for the open legs of brackets (the two legs of one bracket hold the same shares)."""
        return sum(float(o["filled_qty"]) for o in self.orders.values()
                   if o["symbol"] == symbol and o.get("legs")
                   and any(g["status"] in ("new", "held", "accepted") for g in o["legs"]))

    def take_fault(self, method: str, path: str):
        """The fault for a request: keys are path prefixes, optionally after a method ("POST /v2/orders")."""
        def hit(key: str) -> bool:
            m, _, prefix = key.rpartition(" ")
            return path.startswith(prefix) and (not m or m == method)

        for key, fault in self.down.items():
            if hit(key):
                return fault
        for key, faults in self.faults.items():
            if hit(key) and faults:
                return faults.pop(0)
        return None

    # --- the HTTP side -----------------------------------------------------------------------
    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _send(self, code: int, body, headers: dict | None = None) -> None:
                raw = isinstance(body, str)
                data = body.encode() if raw else json.dumps(body).encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "text/html" if raw else "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _authed(self) -> bool:
                if ":generateContent" in self.path:
                    return self.headers.get("x-goog-api-key") == GEMINI_KEY
                return (self.headers.get("APCA-API-KEY-ID") == ALPACA_KEY
                        and self.headers.get("APCA-API-SECRET-KEY") == ALPACA_SECRET)

            def do_GET(self):
                self._route("GET")

            def do_POST(self):
                self._route("POST")

            def do_DELETE(self):
                self._route("DELETE")

            def _route(self, method: str) -> None:
                u = urlparse(self.path)
                q = {k: v[0] for k, v in parse_qs(u.query).items()}
                body = {}
                if method == "POST":
                    n = int(self.headers.get("Content-Length") or 0)
                    body = json.loads(self.rfile.read(n) or b"{}")
                fake.requests.append((method, u.path))
                if fake.on_request is not None:
                    fake.on_request(method, u.path)
                scripted = fake.script.get(u.path)  # a gateway in front: answers before any auth check
                if scripted:
                    code, out, headers = scripted.pop(0)
                    if out == "reset":  # drop the connection without an answer
                        self.connection.shutdown(socket.SHUT_RDWR)
                        self.close_connection = True
                        return None
                    return self._send(code, out, headers)
                if not self._authed():
                    return self._send(401, {"code": 40110000, "message": "request is not authorized"})
                fault = fake.take_fault(method, u.path)
                if fault == "reset":  # the connection drops with no answer
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return None
                if fault == "html":  # a proxy's error page instead of JSON
                    data = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
                    self.send_response(502)
                    self.send_header("Content-Type", "text/html")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return None
                if isinstance(fault, int):
                    msg = {401: "request is not authorized", 403: "forbidden", 429: "rate limit exceeded"}
                    return self._send(fault, {"code": fault * 100000, "message": msg.get(fault, "internal server error")})
                with fake.lock:
                    code, out = fake.route(method, u.path, q, body)
                if code == "slow":
                    time.sleep(fake.slow_seconds)
                    code = 200
                if code == 204:
                    self.send_response(204)
                    self.end_headers()
                    return None
                self._send(code, out)

        return Handler

    def route(self, method: str, path: str, q: dict, body: dict):
        account = self.route_account(method, path, q)
        if account is not None:
            return account
        if path == "/v2/clock":
            return 200, {"timestamp": now_iso(), "is_open": self.market_open,
                         "next_open": "2030-01-02T14:30:00Z", "next_close": "2030-01-02T21:00:00Z"}
        if path == "/v2/positions":
            return 200, [self._position(s, q_) for s, q_ in self.positions.items()]
        if path == "/v2/orders:by_client_order_id":
            o = self.orders.get(q.get("client_order_id", ""))
            return (200, o) if o else (404, {"code": 40410000, "message": "order not found"})
        if path == "/v2/orders" and method == "POST":
            return self._submit(body)
        if path.startswith("/v2/orders/") and method == "DELETE":
            o = next((o for o in self.orders.values() if o["id"] == path.rsplit("/", 1)[1]), None)
            if o is None:
                return 404, {"code": 40410000, "message": "order not found"}
            if o["status"] in ("filled", "canceled", "expired", "rejected"):
                return 422, {"code": 42210000, "message": f"order is already in \"{o['status']}\" state"}
            o["status"], o["canceled_at"], o["updated_at"] = "canceled", now_iso(), now_iso()
            return 204, None
        if path.startswith("/v2/account/activities"):
            kind = path.rsplit("/", 1)[1]
            return 200, [a for a in self.activities if kind in ("activities", a["activity_type"])]
        if path == "/v1beta1/news":
            self.news_queries.append(dict(q))
            start = q.get("start", "")
            end = q.get("end", "").replace("+00:00", "Z") or "9999"
            wanted = {s for s in q.get("symbols", "").split(",") if s}
            items = sorted((n for n in self.news if start.replace("+00:00", "Z") <= n["created_at"] <= end
                            and (not wanted or wanted & set(n["symbols"]))
                            and (self.clock is None or self.news_visible_at.get(n["id"], 0.0) <= self.clock)),
                           key=lambda n: (n["created_at"], n["id"]))
            offset = int(q.get("page_token") or 0)
            limit = int(q.get("limit") or 50)
            page = items[offset:offset + limit]
            token = str(offset + limit) if offset + limit < len(items) else None
            return 200, {"news": page, "next_page_token": token}
        if path == "/v2/stocks/trades/latest":
            s = q["symbols"]
            return 200, {"trades": {s: {"t": self._trade_time(s), "p": self.prices[s], "s": 10, "x": "V", "i": 1,
                                        "c": ["@"], "z": "C"}}}
        if path == "/v1beta3/crypto/us/latest/trades":
            s = q["symbols"]
            return 200, {"trades": {s: {"t": self._trade_time(s), "p": self.prices[s], "s": 0.1, "i": 1, "tks": "B"}}}
        if path in ("/v2/stocks/bars", "/v1beta3/crypto/us/bars"):
            return self._bars(path, q)
        if "/models/" in path and path.endswith(":generateContent"):
            if self.gemini_answers and isinstance(self.gemini_answers[0], int):
                code = self.gemini_answers.pop(0)
                return code, {"error": {"code": code, "status": "UNAVAILABLE", "message": "overloaded"}}
            return 200, self._gemini(body)
        return 404, {"code": 40410000, "message": f"no route {path}"}

    def _trade_time(self, symbol: str) -> str:
        t = datetime.now(timezone.utc) - timedelta(seconds=self.trade_age.get(symbol, 0.0))
        return t.isoformat().replace("+00:00", "Z")

    def _bars(self, path: str, q: dict):
        """Historical bars: {"bars": {symbol: [...]}, "next_page_token"}, from start to end (inclusive), at most
        min(limit, bars_page_size) a page; the page token is the offset of the next bar."""
        self.bar_queries.append({"path": path, **q})
        symbols = q["symbols"].split(",")
        for s in symbols:
            if s in self.bars_errors:
                return self.bars_errors[s], {"code": 50010000, "message": "internal server error"}

        def ts(text: str) -> datetime:
            return datetime.fromisoformat(text.replace("Z", "+00:00"))

        lo = ts(q["start"]) if "start" in q else datetime.min.replace(tzinfo=timezone.utc)
        hi = ts(q["end"]) if "end" in q else datetime.max.replace(tzinfo=timezone.utc)
        items = [(s, b) for s in symbols for b in self.bars.get(s, []) if lo <= ts(b["t"]) <= hi]
        offset = int(q.get("page_token") or 0)
        size = min(int(q.get("limit") or 1000), self.bars_page_size)
        out: dict[str, list] = {}
        for s, b in items[offset:offset + size]:
            out.setdefault(s, []).append(b)
        token = str(offset + size) if offset + size < len(items) else None
        return 200, {"bars": out, "next_page_token": token}

    def _position(self, symbol: str, qty: float) -> dict:
        return {"asset_id": str(uuid.uuid4()), "symbol": symbol.replace("/", ""), "exchange": "NASDAQ",
                "asset_class": "crypto" if "/" in symbol else "us_equity", "avg_entry_price": "1",
                "qty": str(qty), "side": "long", "cost_basis": "1", "market_value": "1",
                "unrealized_pl": "0", "current_price": str(self.prices.get(symbol, 1))}

    def _submit(self, body: dict):
        self.posts.append(body)
        coid = body["client_order_id"]
        if coid in self.orders:
            return 422, {"code": 40010001, "message": "client_order_id must be unique"}
        if self.fill_mode == "funds":
            return 403, {"code": 40310000, "message": "insufficient buying power"}
        price = self.prices[body["symbol"]]
        qty = float(body["qty"]) if body.get("qty") else round(float(body["notional"]) / price, 9)
        if body["side"] == "sell":  # shares held by open bracket legs are not available to another sell
            available = round(self.positions.get(body["symbol"], 0.0) - self.held_by_legs(body["symbol"]), 9)
            if qty > available + 1e-12:
                return 403, {"code": 40310000, "message": f"insufficient qty available for order "
                                                          f"(requested: {qty:g}, available: {max(available, 0):g})"}
        ts = now_iso()
        o = {"id": str(uuid.uuid4()), "client_order_id": coid, "created_at": ts, "updated_at": ts,
             "submitted_at": ts, "filled_at": None, "asset_id": str(uuid.uuid4()), "symbol": body["symbol"],
             "asset_class": "crypto" if "/" in body["symbol"] else "us_equity", "notional": None if body.get("notional") is None else str(body["notional"]),
             "qty": str(qty), "filled_qty": "0", "filled_avg_price": None, "order_class": body.get("order_class") or "simple",
             "order_type": "market", "type": "market", "side": body["side"], "time_in_force": body["time_in_force"],
             "status": "new", "extended_hours": False, "legs": None}
        self.orders[coid] = o
        if body.get("order_class") == "bracket":  # child orders that hold the shares once the entry fills
            o["legs"] = []
            for kind, key, field in (("limit", "take_profit", "limit_price"), ("stop", "stop_loss", "stop_price")):
                leg = {**o, "id": str(uuid.uuid4()), "client_order_id": str(uuid.uuid4()), "side": "sell",
                       "order_type": kind, "type": kind, "time_in_force": "gtc", "legs": None, "parent": coid,
                       "status": "new" if kind == "limit" else "held", "order_class": "bracket",
                       "notional": None, field: str(body[key][field])}
                self.orders[leg["client_order_id"]] = leg
                o["legs"].append(leg)
        if self.fill_mode == "fill":
            self.fill(coid)
        elif self.fill_mode == "partial":
            self.fill(coid, round(qty / 2, 9))
        return ("slow" if self.fill_mode == "slow" else 200), o

    def _gemini(self, body: dict) -> dict:
        text = body["contents"][0]["parts"][0]["text"]
        art = json.loads(text.split("<article>", 1)[1].split("</article>", 1)[0])
        answer = self.gemini_answers.pop(0) if self.gemini_answers else {"scores": [
            {"symbol": s, "sentiment": "bullish", "conviction": 85, "reason": "Strong results."}
            for s in art["symbols"]]}
        return {"candidates": [{"content": {"role": "model", "parts": [{"text": json.dumps(answer)}]},
                                "finishReason": "STOP"}],
                "usageMetadata": {"promptTokenCount": 120, "candidatesTokenCount": 30, "totalTokenCount": 150}}

    # --- the account as the broker sees it: cash that follows the fills, orders listed, hand closes ---
    starting_cash = 100000.0

    def cash(self) -> float:
        flows = sum(float(o["filled_qty"]) * float(o["filled_avg_price"] or 0) * (1 if o["side"] == "sell" else -1)
                    for o in self.orders.values())
        return round(self.starting_cash + flows, 2)

    def close_by_hand(self, symbol: str, price: float, qty: float | None = None, order_type: str = "market") -> dict:
        """Sell at the broker outside tokenomics (a person in the web UI, or a stop that fired)."""
        held = self.positions.get(symbol, 0.0)
        qty = held if qty is None else qty
        ts = now_iso()
        o = {"id": str(uuid.uuid4()), "client_order_id": str(uuid.uuid4()), "created_at": ts, "updated_at": ts,
             "submitted_at": ts, "filled_at": ts, "asset_id": str(uuid.uuid4()), "symbol": symbol,
             "asset_class": "crypto" if "/" in symbol else "us_equity", "notional": None, "qty": str(qty),
             "filled_qty": str(qty), "filled_avg_price": str(price), "order_class": "simple",
             "order_type": order_type, "type": order_type, "side": "sell", "time_in_force": "day",
             "status": "filled", "extended_hours": False, "legs": None}
        self.orders[o["client_order_id"]] = o
        left = round(held - qty, 9)
        if abs(left) < 1e-12:
            self.positions.pop(symbol, None)
        else:
            self.positions[symbol] = left
        return o

    def route_account(self, method: str, path: str, q: dict):
        if path == "/v2/account":
            cash = self.cash()
            equity = cash + sum(q_ * self.prices.get(s, 0.0) for s, q_ in self.positions.items())
            return 200, {"id": str(uuid.uuid4()), "account_number": "PA123", "status": "ACTIVE", "currency": "USD",
                         "cash": str(cash), "equity": str(round(equity, 2)), "buying_power": str(cash),
                         "trading_blocked": False, "pattern_day_trader": False}
        if path == "/v2/orders" and method == "GET":
            closed = ("filled", "canceled", "expired", "rejected")
            wanted = {s for s in q.get("symbols", "").split(",") if s}
            got = [o for o in self.orders.values()
                   if (q.get("status") != "closed" or o["status"] in closed)
                   and (q.get("status") != "open" or o["status"] not in closed)
                   and (not q.get("side") or o["side"] == q["side"])
                   and (not wanted or o["symbol"] in wanted or o["symbol"].replace("/", "") in wanted)]
            got.sort(key=lambda o: o["submitted_at"], reverse=q.get("direction", "desc") == "desc")
            return 200, got[:int(q.get("limit") or 50)]
        return None


class FakeExchange(_Loopback):
    """A loopback fake of Binance's public REST API as ccxt's binance calls it (point broker.exchange_url
    at `url`): the markets (spot /api/v3/exchangeInfo with the pairs of `prices`; the futures
    exchangeInfo answers list none) and the 24-hour ticker, whose closeTime is the last trade's time
    (`age` seconds ago per pair). Records every request with its headers, so a test can check that no
    key was sent; `faults` maps a path to the HTTP statuses its next requests get."""

    def __init__(self, prices: dict[str, float] | None = None):
        self.prices = dict(prices or {"BTC/USDT": 95000.0})
        self.age: dict[str, float] = {}  # pair -> seconds since its last trade
        self.faults: dict[str, list[int]] = {}
        self.requests: list[tuple[str, str, dict]] = []  # (method, path with query, headers)
        self._listen()

    def tickers_asked(self, pair: str | None = None) -> int:
        wanted = None if pair is None else "symbol=" + pair.replace("/", "")
        return sum(1 for _m, p, _h in self.requests if "/ticker/24hr" in p and (wanted is None or wanted in p))

    @staticmethod
    def _market(pair: str) -> dict:
        base, quote = pair.split("/")
        return {"symbol": base + quote, "status": "TRADING", "baseAsset": base, "baseAssetPrecision": 8,
                "quoteAsset": quote, "quotePrecision": 8, "quoteAssetPrecision": 8,
                "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET"], "icebergAllowed": True, "ocoAllowed": True,
                "isSpotTradingAllowed": True, "isMarginTradingAllowed": False, "permissions": [],
                "permissionSets": [["SPOT"]], "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
                "allowedSelfTradePreventionModes": ["EXPIRE_MAKER"],
                "filters": [{"filterType": "PRICE_FILTER", "minPrice": "0.01", "maxPrice": "1000000.00",
                             "tickSize": "0.01"},
                            {"filterType": "LOT_SIZE", "minQty": "0.00001", "maxQty": "9000.00",
                             "stepSize": "0.00001"},
                            {"filterType": "NOTIONAL", "minNotional": "5.00", "applyMinToMarket": True,
                             "maxNotional": "9000000.00", "applyMaxToMarket": False, "avgPriceMins": 5}]}

    def route(self, path: str, q: dict):
        now_ms = int(time.time() * 1000)
        if path == "/api/v3/exchangeInfo":
            return 200, {"timezone": "UTC", "serverTime": now_ms, "rateLimits": [], "exchangeFilters": [],
                         "symbols": [self._market(p) for p in self.prices]}
        if path in ("/fapi/v1/exchangeInfo", "/dapi/v1/exchangeInfo"):
            return 200, {"timezone": "UTC", "serverTime": now_ms, "rateLimits": [], "exchangeFilters": [],
                         "assets": [], "symbols": []}
        if path == "/api/v3/ticker/24hr":
            pair = next((p for p in self.prices if p.replace("/", "") == q.get("symbol")), None)
            if pair is None:
                return 400, {"code": -1121, "msg": "Invalid symbol."}
            last = self.prices[pair]
            close_ms = now_ms - int(self.age.get(pair, 0.0) * 1000)
            return 200, {"symbol": q["symbol"], "priceChange": "0.00", "priceChangePercent": "0.000",
                         "weightedAvgPrice": str(last), "prevClosePrice": str(last), "lastPrice": str(last),
                         "lastQty": "0.01", "bidPrice": str(last - 0.01), "bidQty": "1.0",
                         "askPrice": str(last + 0.01), "askQty": "1.0", "openPrice": str(last),
                         "highPrice": str(last), "lowPrice": str(last), "volume": "1000.0",
                         "quoteVolume": str(1000 * last), "openTime": close_ms - 86_400_000, "closeTime": close_ms,
                         "firstId": 1, "lastId": 1000, "count": 1000}
        return 404, {"code": -1, "msg": f"no route {path}"}

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                u = urlparse(self.path)
                q = {k: v[0] for k, v in parse_qs(u.query).items()}
                with fake.lock:
                    fake.requests.append(("GET", self.path, dict(self.headers)))
                    faults = fake.faults.get(u.path)
                    if faults:
                        code = faults.pop(0)
                        out = {"code": -1003 if code == 429 else -1001, "msg": "Internal error; unable to "
                               "process your request. Please try again." if code >= 500 else "Too many requests."}
                    else:
                        code, out = fake.route(u.path, q)
                data = json.dumps(out).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):  # an order, or anything that needs a key: not on a public-data fake
                with fake.lock:
                    fake.requests.append(("POST", self.path, dict(self.headers)))
                data = json.dumps({"code": -2014, "msg": "API-key format invalid."}).encode()
                self.send_response(401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler
