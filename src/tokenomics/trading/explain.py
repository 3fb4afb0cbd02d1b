"""explain: the chain behind one order, from the store: article(s), score, signal, sizing, every
gate decision, the order and its fills, the position or the exit and the closed trade."""

from __future__ import annotations

import json

from tokenomics.core.errors import UsageProblem
from tokenomics.runtime import Runtime


def _signal_for(rt: Runtime, key: str) -> dict | None:
    st = rt.store
    order = st.one("SELECT signal_id FROM orders WHERE client_order_id = ? OR broker_order_id = ?", [key, key])
    if order:
        return st.one("SELECT * FROM signals WHERE id = ?", [order["signal_id"]])
    sig = st.one("SELECT * FROM signals WHERE id = ?", [key])
    if sig:
        return sig
    symbol = key.upper()
    return (st.one("SELECT sg.* FROM signals sg JOIN orders o ON o.signal_id = sg.id WHERE sg.symbol = ? "
                   "AND o.intent = 'entry' ORDER BY o.created_at DESC, sg.id DESC LIMIT 1", [symbol])
            or st.one("SELECT * FROM signals WHERE symbol = ? AND side = 'buy' ORDER BY created_at DESC, id DESC "
                      "LIMIT 1", [symbol]))


def _order_chain(rt: Runtime, signal_id: str) -> dict:
    st = rt.store
    order = st.one("SELECT * FROM orders WHERE signal_id = ?", [signal_id])
    return {
        "risk_decisions": st.all("SELECT stage, decision, rule, detail, requested, approved, decided_at "
                                 "FROM risk_decisions WHERE signal_id = ? ORDER BY id", [signal_id]),
        "order": order,
        "fills": st.all("SELECT id, qty, price, fee, cash_flow, ts FROM fills WHERE client_order_id = ? ORDER BY ts",
                        [order["client_order_id"]]) if order else [],
    }


def explain(rt: Runtime, key: str) -> dict:
    """The chain behind one trade, from an order id, a signal id or a symbol (its latest entry)."""
    st = rt.store
    sig = _signal_for(rt, key)
    if sig is None:
        article = st.one("SELECT * FROM articles WHERE id = ?", [key])
        if article is not None:
            return explain_article(rt, article)
        raise UsageProblem(f"no order, signal or symbol matches {key!r}",
                           hint="give a client_order_id, a signal id (see `status`) or a traded symbol")
    if sig["source"] == "exit":  # an exit: explain the entry it closed, which includes this exit
        entry = st.one("SELECT signal_id FROM orders WHERE client_order_id = ?", [sig["ref"]])
        if entry:
            sig = st.one("SELECT * FROM signals WHERE id = ?", [entry["signal_id"]]) or sig
    detail = json.loads(sig["size_detail"]) if sig.get("size_detail") else None
    articles, scores = [], []
    if sig["source"] == "sentiment" and sig["ref"]:
        articles = [{**a, "symbols": json.loads(a["symbols"])} for a in st.all(
            "SELECT id, provider, headline, summary, symbols, source, url, created_at, fetched_at FROM articles "
            "WHERE id = ?", [sig["ref"]])]
        scores = st.all("SELECT scorer, sentiment, conviction, reason, scored_at FROM scores "
                        "WHERE article_id = ? AND symbol = ?", [sig["ref"], sig["symbol"]])
    entry = _order_chain(rt, sig["id"])
    order = entry["order"]
    trade = position = exit_chain = None
    if order:
        trade = st.one("SELECT * FROM trades WHERE entry_order_id = ?", [order["client_order_id"]])
        position = st.one("SELECT * FROM positions WHERE entry_order_id = ?", [order["client_order_id"]])
        # the exit that closed it (a local rule's attempt or a bracket leg at the broker), else the latest
        closing = st.one("SELECT signal_id FROM orders WHERE client_order_id = ?",
                         [trade["exit_order_id"]]) if trade else None
        exit_sig = (st.one("SELECT * FROM signals WHERE id = ?", [closing["signal_id"]]) if closing else
                    st.one("SELECT * FROM signals WHERE source = 'exit' AND ref = ? AND id NOT LIKE 'leg:%' "
                           "ORDER BY created_at DESC, rowid DESC LIMIT 1", [order["client_order_id"]]))
        tried = st.all("SELECT o.client_order_id, o.reason, o.status, o.filled_qty, o.filled_avg_price, o.error, "
                       "o.created_at, CASE WHEN o.signal_id LIKE 'leg:%' THEN 'bracket leg' ELSE 'local' END AS kind "
                       "FROM orders o JOIN signals s ON s.id = o.signal_id WHERE s.source = 'exit' AND s.ref = ? "
                       "ORDER BY o.created_at, o.rowid", [order["client_order_id"]])
        if exit_sig:
            exit_chain = {"signal": {k: exit_sig[k] for k in ("id", "reason", "status", "status_reason",
                                                                 "notional", "created_at")},
                          **_order_chain(rt, exit_sig["id"]),
                          "closed_by": (("bracket " + exit_sig["status_reason"].replace("_", "-") + " leg")
                                        if exit_sig["id"].startswith("leg:") else f"rule {exit_sig['status_reason']}")
                          if trade else None,
                          "attempts": tried}
    signal_doc = {k: sig[k] for k in ("id", "symbol", "side", "source", "strength", "reason", "ref", "asset_class",
                                      "status", "status_reason", "created_at")}
    return {
        "query": key, "symbol": sig["symbol"], "articles": articles, "scores": scores, "signal": signal_doc,
        "sizing": {"method": sig["size_method"], "notional": sig["notional"], **(
            {k: v for k, v in detail.items() if k != "method"} if detail else {})},
        **entry, "position": position, "trade": trade, "exit": exit_chain,
        "state": "closed" if trade else "open" if position else (order["status"] if order else sig["status"]),
    }


def explain_article(rt: Runtime, a: dict) -> dict:
    """An article that led to no order: its status (pending, scored, duplicate, failed), attempts, the
    last error (why scoring failed or was deferred), its scores and the signals made from them."""
    st = rt.store
    return {
        "query": a["id"], "symbol": ",".join(json.loads(a["symbols"])), "state": f"article {a['status']}",
        "article": {**{k: a[k] for k in ("id", "provider", "headline", "created_at", "fetched_at", "status",
                                          "attempts", "error", "duplicate_of")}, "symbols": json.loads(a["symbols"])},
        "scores": st.all("SELECT symbol, scorer, sentiment, conviction, reason, scored_at FROM scores "
                         "WHERE article_id = ?", [a["id"]]),
        "signals": st.all("SELECT id, symbol, status, status_reason FROM signals WHERE ref = ?", [a["id"]]),
    }


def explain_tree(doc: dict):
    """A Rich tree of an explain document, for a terminal."""
    from rich.tree import Tree

    def kv(d: dict, keys) -> str:
        return ", ".join(f"{k}={d[k]}" for k in keys if d.get(k) is not None)

    root = Tree(f"[bold]{doc['symbol']}[/bold] — {doc['state']} (query {doc['query']})")
    if "article" in doc:  # an article id
        a = doc["article"]
        root.add(f"article {a['id']} at {a['created_at']}: {a['headline']}")
        root.add(f"status {a['status']}, attempts {a['attempts']}" + (f" — {a['error']}" if a["error"] else ""))
        for s in doc["scores"]:
            root.add(f"score {s['symbol']} ({s['scorer']}): {s['sentiment']}, conviction {s['conviction']}")
        for g in doc["signals"]:
            root.add(f"signal {g['id']}: {g['status']} — {g['status_reason']}")
        return root
    for a in doc["articles"]:
        node = root.add(f"article {a['id']} at {a['created_at']}: {a['headline']}")
        for s in doc["scores"]:
            node.add(f"score ({s['scorer']}): {s['sentiment']}, conviction {s['conviction']} — {s['reason']}")
    sg = doc["signal"]
    root.add(f"signal {sg['id']}: {sg['side']} from {sg['source']}, strength {sg['strength']:.2f} — {sg['reason']} "
             f"[{sg['status']}: {sg['status_reason']}]")
    sz = doc["sizing"]
    node = root.add(f"size: method {sz['method']}, notional {sz['notional']}")
    if sz.get("candidates"):
        node.add("candidates: " + ", ".join(f"{m} {v:.2f}" for m, v in sz["candidates"].items()))
        node.add("kelly: " + kv(sz["kelly"], ("trades", "win_rate", "payoff", "full_kelly", "fraction")))
        node.add("volatility: " + kv(sz["volatility"], ("estimator", "timeframe", "bars", "annualized")))

    def add_chain(parent, chain: dict, label: str) -> None:
        gate = parent.add(f"{label} gate decisions")
        for d in chain["risk_decisions"]:
            gate.add(f"{d['decided_at']} {d['stage']}: {d['decision']} by {d['rule']} "
                     f"(asked {d['requested']}, approved {d['approved']}) — {d['detail']}")
        o = chain["order"]
        if o:
            on = parent.add(f"{label} order {o['client_order_id']}: {o['side']} {o['status']}, "
                            + kv(o, ("notional", "qty", "filled_qty", "filled_avg_price", "fees")))
            for f in chain["fills"]:
                on.add(f"fill {f['ts']}: {f['qty']} @ {f['price']} fee {f['fee']}")

    add_chain(root, doc, "entry")
    if doc["position"]:
        p = doc["position"]
        root.add(f"open position: {p['qty']} @ {p['avg_price']:.4f}, last {p['last_price']}")
    if doc["exit"]:
        closed_by = f" (closed by the {doc['exit']['closed_by']})" if doc["exit"].get("closed_by") else ""
        ex = root.add(f"exit signal {doc['exit']['signal']['id']}: {doc['exit']['signal']['reason']}{closed_by}")
        for a in doc["exit"].get("attempts", []):
            ex.add(f"{a['kind']} exit {a['client_order_id']}: {a['reason']} {a['status']}"
                   + (f" — {a['error']}" if a["error"] else ""))
        add_chain(ex, doc["exit"], "exit")
    if doc["trade"]:
        t = doc["trade"]
        root.add(f"closed trade: {t['exit_reason']}, P&L {t['pnl']:.2f} ({t['return_pct']:.2f}%), "
                 f"{t['opened_at']} -> {t['closed_at']}")
    return root
