"""What `run` tells the outside world: a heartbeat in the store (for `tokenomics health`, a
liveness probe, cron) and the notifications (entries, exits with P&L, halts fired and lifted,
providers down and up, a daily summary, the loop starting and stopping).

`run` calls `Monitor.after_tick` once per tick, after the tick (also after a tick that raised).
Nothing here may stop the loop: every failure is logged and the tick goes on. Notifications are
queued for a background thread (adapters/notify.py); apprise is imported only when notify.urls
is set. The backtests replay through `loop.tick` without a Monitor, so they neither beat nor notify.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from tokenomics.store import iso, parse_ts, utcnow

log = logging.getLogger("tokenomics.monitor")
NAME = "run"  # one heartbeat row per store: one trader per store
FAILING = ("failed", "error")  # a step's run status that counts as its provider being down
ONCE_INTERVAL = 300.0  # health's default interval for `run --once` (cron every 5 minutes)


def _provider(rt, step: str) -> str:
    s = rt.settings
    return {"fetch-news": f"news ({s.news.provider})", "score": f"scorer ({s.sentiment.provider})",
            "trade": f"broker ({s.broker.provider})", "check-exits": f"broker ({s.broker.provider})",
            "reconcile": f"broker ({s.broker.provider})"}.get(step, step)


def _minutes(since: str, now: datetime) -> float:
    return (now - parse_ts(since)).total_seconds() / 60


class Monitor:
    def __init__(self, rt, *, form: str, interval: float | None, strategy: str):
        self.rt, self.form, self.interval, self.strategy = rt, form, interval, strategy
        self.notifier = None
        self.events = set(rt.settings.notify.events)

    # --- notifications -----------------------------------------------------------------------
    def _notify(self, messages: list) -> None:
        messages = [m for m in messages if m.event in self.events]
        if self.notifier is not None and messages:
            self.notifier.send(messages)

    @staticmethod
    def _msg(event: str, title: str, body: str, kind: str = "info"):
        from tokenomics.adapters.notify import Message

        return Message(event, f"tokenomics: {title}", body, kind)

    # --- heartbeat ---------------------------------------------------------------------------
    def _row(self) -> dict | None:
        return self.rt.store.one("SELECT * FROM heartbeat WHERE name = ?", [NAME])

    def _write(self, **cols) -> None:
        st = self.rt.store
        cols = {"name": NAME, **cols}
        names = ", ".join(cols)
        marks = ", ".join("?" for _ in cols)
        updates = ", ".join(f"{k} = excluded.{k}" for k in cols if k != "name")
        with st.tx():
            st.execute(f"INSERT INTO heartbeat({names}) VALUES ({marks}) ON CONFLICT(name) DO UPDATE SET {updates}",
                       list(cols.values()))

    def start(self) -> None:
        """The first beat (state starting), before the first tick; builds the notifier (config errors exit 2)."""
        rt = self.rt
        s = rt.settings
        rt.store  # noqa: B018 -- opens the store and sets up logging (apprise's reasons go to the same log)
        if s.notify.urls:  # first: a bad URL or a missing ${VAR} exits 2 before the loop says it started
            from tokenomics.adapters.notify import Notifier

            self.notifier = Notifier(s.notify.urls, s.notify.timeout_seconds)
        now = iso(utcnow())
        self._write(form=self.form, state="starting", pid=os.getpid(), host=socket.gethostname(), mode=rt.mode,
                    strategy=self.strategy, started_at=now, beat_at=now, tick=0, now=rt.now().isoformat(),
                    interval_seconds=self.interval if self.form == "loop" else None)
        if self.form == "loop":
            self._notify([self._msg("loop", f"loop started ({rt.mode})",
                                    f"run --loop started: mode {rt.mode}, strategy {self.strategy}, "
                                    f"every {self.interval:g} s, pid {os.getpid()} on {socket.gethostname()}")])

    def mark(self) -> int:
        """The newest run id before a tick: the tick's steps are the runs of this process after it."""
        return int(self.rt.store.scalar("SELECT COALESCE(MAX(id), 0) FROM runs") or 0)

    def after_tick(self, row: dict | None, since_id: int, n: int) -> None:
        """Beat and notify; never raises (a failed beat or notification is logged)."""
        try:
            self._after_tick(row, since_id, n)
        except Exception:
            log.exception("heartbeat/notifications after tick %s failed", n)

    def _after_tick(self, row: dict | None, since_id: int, n: int) -> None:
        rt = self.rt
        st = rt.store
        wall = utcnow()
        prev = self._row() or {}
        steps = json.loads(prev.get("steps") or "{}")
        state = json.loads(prev.get("notify_state") or "{}")
        out: list = []
        runs = st.all("SELECT command, status, error FROM runs WHERE id > ? AND pid = ? ORDER BY id",
                      [since_id, os.getpid()])
        for r in runs:  # the last run of each step in this tick
            before = steps.get(r["command"], {})
            failing = r["status"] in FAILING
            since = (before.get("failing_since") or iso(wall)) if failing else None
            steps[r["command"]] = {"status": r["status"], "error": r["error"], "at": iso(wall),
                                   "provider": _provider(rt, r["command"]), "failing_since": since}
            was = before.get("failing_since")
            if failing and not was:
                out.append(self._msg("provider", f"{_provider(rt, r['command'])} down",
                                     f"step {r['command']} failed: {(r['error'] or '')[:300]}", "failure"))
            elif r["status"] == "ok" and was:
                out.append(self._msg("provider", f"{_provider(rt, r['command'])} up",
                                     f"step {r['command']} works again after {_minutes(was, wall):.0f} min "
                                     f"of failures", "success"))
        if row is not None:
            for o in row.get("opened", []):
                out.append(self._msg("entry", f"bought {o['symbol']}",
                                     f"entry: {o['qty']:.6g} {o['symbol']} at {o['price']:,.2f} "
                                     f"({rt.mode}, {row['now'][:16]}); equity {row.get('equity', 0):,.2f}", "info"))
            for c in row.get("closed", []):
                out.append(self._msg("exit", f"sold {c['symbol']} ({c['reason']}) P&L {c['pnl']:+,.2f}",
                                     f"exit: {c['symbol']} closed by {c['reason']}, P&L {c['pnl']:+,.2f} "
                                     f"({rt.mode}, {row['now'][:16]}); equity {row.get('equity', 0):,.2f}",
                                     "success" if c["pnl"] >= 0 else "warning"))
        out += self._halts(state)
        out += self._summary(state, row)
        self._write(form=self.form, state="ticking", pid=os.getpid(), host=socket.gethostname(), mode=rt.mode,
                    strategy=self.strategy, started_at=prev.get("started_at") or iso(wall), beat_at=iso(wall),
                    tick=n, now=rt.now().isoformat(), interval_seconds=prev.get("interval_seconds"),
                    steps=json.dumps(steps), notify_state=json.dumps(state))
        self._notify(out)

    def _halts(self, state: dict) -> list:
        from tokenomics.trading import account

        active = {f"{h['rule']}|{h['period']}": h.get("detail") or "" for h in account.active_halts(self.rt)}
        seen = state.get("halts", {})
        out = []
        for key, detail in active.items():
            if key not in seen:
                rule = key.split("|")[0]
                lifts = "`tokenomics risk resume`" if rule == "max_drawdown" else "the period's end"
                out.append(self._msg("halt", f"HALT {rule}", f"halt fired: {rule} ({detail}); no new entries "
                                     f"until {lifts}; exits go on", "failure"))
        for key in seen:
            if key not in active:
                out.append(self._msg("halt", f"halt lifted: {key.split('|')[0]}",
                                     f"halt lifted: {key.split('|')[0]} (period {key.split('|')[1]}); "
                                     "new entries allowed again", "success"))
        state["halts"] = active
        return out

    def _summary(self, state: dict, row: dict | None) -> list:
        rt = self.rt
        s = rt.settings
        local = rt.now().astimezone(ZoneInfo(s.risk.timezone))
        day = local.date().isoformat()
        if row is None or local.hour < s.notify.summary_hour or state.get("summary_date") == day:
            return []
        state["summary_date"] = day
        if "daily_summary" not in self.events or self.notifier is None:
            return []
        from tokenomics.trading import account

        st = rt.store
        start = datetime.combine(local.date(), datetime.min.time(), local.tzinfo)
        since, until = iso(start), iso(start + timedelta(days=1))
        closed = st.one("SELECT COUNT(*) AS n, COALESCE(SUM(pnl), 0) AS pnl FROM trades "
                        "WHERE closed_at >= ? AND closed_at < ?", [since, until])
        opened = st.scalar("SELECT COUNT(*) FROM orders WHERE intent = 'entry' AND status = 'filled' "
                           "AND created_at >= ? AND created_at < ?", [since, until])
        eq = row  # the tick's mark to market
        halts = [h["rule"] for h in account.active_halts(rt)]
        body = (f"{day} ({s.risk.timezone}): equity {eq.get('equity', 0):,.2f}, cash {eq.get('cash', 0):,.2f}, "
                f"{len(st.positions())} open positions; today {opened} entries, {closed['n']} exits, "
                f"realized P&L {closed['pnl']:+,.2f}; halts: {', '.join(halts) or 'none'}")
        return [self._msg("daily_summary", f"daily summary {day}", body, "info")]

    def stop(self, stopped_by: str, error: BaseException | None = None) -> None:
        """The last beat (a loop is then `stopped`; a --once run stays as it ticked) and a bounded flush."""
        try:
            if self.form == "loop":
                st = self.rt.store
                with st.tx():
                    st.execute("UPDATE heartbeat SET state = 'stopped', beat_at = ? WHERE name = ? AND pid = ?",
                               [iso(utcnow()), NAME, os.getpid()])
                why = f"failed: {type(error).__name__}: {str(error)[:300]}" if error is not None else stopped_by
                self._notify([self._msg("loop", f"loop stopped ({why[:60]})", f"run --loop stopped: {why}",
                                        "failure" if error is not None else "warning")])
        except Exception:
            log.exception("final heartbeat failed")
        if self.notifier is not None:
            self.notifier.flush()


def health(rt, interval: float | None = None) -> dict:
    """Whether the loop on this store is alive: its last tick within max_missed_ticks intervals
    (+ grace_seconds) and no step failing for longer than provider_down_minutes."""
    h = rt.settings.health
    row = rt.store.one("SELECT * FROM heartbeat WHERE name = ?", [NAME])
    now = utcnow()
    if row is None:
        return {"ok": False, "reasons": ["no heartbeat: `tokenomics run` has never started on this store"],
                "checked_at": iso(now)}
    every = next((x for x in (interval, h.interval_seconds, row["interval_seconds"]) if x is not None), ONCE_INTERVAL)
    limit = h.max_missed_ticks * every + h.grace_seconds
    age = (now - parse_ts(row["beat_at"])).total_seconds()
    steps = json.loads(row["steps"] or "{}")
    reasons = []
    if row["state"] == "stopped":
        reasons.append(f"the loop stopped at {row['beat_at']} (pid {row['pid']} on {row['host']})")
    elif age > limit:
        what = "started" if row["state"] == "starting" else f"ticked (tick {row['tick']})"
        reasons.append(f"the loop last {what} {age:.0f} s ago, at {row['beat_at']}: over the limit of {limit:.0f} s "
                       f"({h.max_missed_ticks:g} x {every:g} s + {h.grace_seconds:g} s)")
    down = []
    for name, step in steps.items():
        if step.get("failing_since"):
            minutes = _minutes(step["failing_since"], now)
            down.append({"step": name, "provider": step.get("provider"), "since": step["failing_since"],
                         "minutes": round(minutes, 1), "error": step.get("error")})
            if minutes > h.provider_down_minutes:
                reasons.append(f"{step.get('provider') or name} failing since {step['failing_since']} "
                               f"({minutes:.0f} min > {h.provider_down_minutes:g}): {(step.get('error') or '')[:200]}")
    return {"ok": not reasons, "reasons": reasons, "state": row["state"], "form": row["form"], "pid": row["pid"],
            "host": row["host"], "mode": row["mode"], "tick": row["tick"], "last_beat": row["beat_at"],
            "age_seconds": round(age, 1), "limit_seconds": round(limit, 1), "started_at": row["started_at"],
            "failing": down, "steps": {k: v.get("status") for k, v in steps.items()}, "checked_at": iso(now)}
