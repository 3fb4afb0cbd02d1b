"""When markets trade: NYSE sessions from exchange_calendars for equities; crypto trades 24/7.

Building the exchange calendar costs about a second, so its sessions are cached in the store.
"""

from __future__ import annotations

import bisect
import json
from datetime import date, datetime, timedelta, timezone

from tokenomics.store import Store, iso, utcnow

EXCHANGE = "XNYS"


MARGIN = timedelta(days=400)  # sessions loaded beyond the moments asked about


class MarketCalendar:
    """NYSE sessions over a span of whole years. Asked about a moment outside the span, it loads a
    wider one (from the store's cache, else exchange_calendars): a process that runs for years keeps
    trading equities, and its day counts keep counting."""

    def __init__(self, opens: list[int], closes: list[int], store: Store | None = None,
                 first: date | None = None, last: date | None = None):
        self.opens = opens  # epoch seconds, UTC, sorted
        self.closes = closes
        self.store = store
        self.first, self.last = first, last  # the span covered (None: fixed, never extended)
        self._lo = _epoch(first) if first else None
        self._hi = _epoch(last + timedelta(days=1)) if last else None

    def _cover(self, t: float) -> None:
        if self._lo is None or self._hi is None or self._lo <= t < self._hi:
            return
        moment = datetime.fromtimestamp(t, timezone.utc)
        first = min(self.first, (moment - MARGIN).date())
        last = max(self.last, (moment + MARGIN).date())
        wider = MarketCalendar.load(self.store, first, last)
        self.opens, self.closes = wider.opens, wider.closes
        self.first, self.last, self._lo, self._hi = wider.first, wider.last, wider._lo, wider._hi

    @classmethod
    def load(cls, store: Store | None, first: date, last: date) -> "MarketCalendar":
        first = date(first.year, 1, 1)
        last = date(last.year, 12, 31)
        key = f"calendar:{EXCHANGE}:{first}:{last}"
        row = store.one("SELECT value FROM cache WHERE key = ?", [key]) if store else None
        if row:
            data = json.loads(row["value"])
            return cls(data["opens"], data["closes"], store, first, last)
        import warnings

        import exchange_calendars as xcals

        with warnings.catch_warnings():  # the library's own pandas deprecation noise
            warnings.simplefilter("ignore")
            cal = xcals.get_calendar(EXCHANGE, start=str(first), end=str(last))
            sched = cal.schedule
        opens = [int(ts.timestamp()) for ts in sched["open"]]
        closes = [int(ts.timestamp()) for ts in sched["close"]]
        if store:
            with store.tx():
                store.execute(
                    "INSERT OR REPLACE INTO cache(key, value, updated_at) VALUES (?, ?, ?)",
                    [key, json.dumps({"opens": opens, "closes": closes}), iso(utcnow())],
                )
        return cls(opens, closes, store, first, last)

    @classmethod
    def around(cls, store: Store | None, *moments: datetime) -> "MarketCalendar":
        lo = min(moments) - MARGIN
        hi = max(moments) + MARGIN
        return cls.load(store, lo.date(), hi.date())

    def is_open(self, asset_class: str, dt: datetime) -> bool:
        if asset_class == "crypto":
            return True
        t = dt.timestamp()
        self._cover(t)
        i = bisect.bisect_right(self.opens, t) - 1
        return i >= 0 and t < self.closes[i]

    def trading_days_between(self, asset_class: str, start: datetime, end: datetime) -> int:
        """Sessions (equities) or calendar days (crypto) from the start's session to the end's."""
        if asset_class == "crypto":
            return max((end.date() - start.date()).days, 0)
        self._cover(start.timestamp())
        self._cover(end.timestamp())
        i = bisect.bisect_right(self.opens, start.timestamp())
        j = bisect.bisect_right(self.opens, end.timestamp())
        return max(j - i, 0)

    def trades_during(self, asset_class: str, start: datetime, end: datetime) -> bool:
        """Whether the market is open at some moment of [start, end) (a bar of that period should exist)."""
        if asset_class == "crypto":
            return True
        i = bisect.bisect_left(self.opens, end.timestamp()) - 1  # the last session opening before end
        return i >= 0 and self.closes[i] > start.timestamp()

    def open_mask(self, times_epoch: list[int]) -> list[bool]:
        if times_epoch:
            self._cover(min(times_epoch))
            self._cover(max(times_epoch))
        out = []
        for t in times_epoch:
            i = bisect.bisect_right(self.opens, t) - 1
            out.append(i >= 0 and t < self.closes[i])
        return out


def _epoch(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=timezone.utc).timestamp())


def to_utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)
