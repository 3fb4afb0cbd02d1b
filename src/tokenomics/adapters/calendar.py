"""When markets trade: NYSE sessions from exchange_calendars for equities; crypto trades 24/7.

Building the exchange calendar costs about a second, so its sessions are cached in the store.
"""

from __future__ import annotations

import bisect
import json
from datetime import date, datetime, timedelta, timezone

from tokenomics.store import Store, iso, utcnow

EXCHANGE = "XNYS"


class MarketCalendar:
    def __init__(self, opens: list[int], closes: list[int]):
        self.opens = opens  # epoch seconds, UTC, sorted
        self.closes = closes

    @classmethod
    def load(cls, store: Store | None, first: date, last: date) -> "MarketCalendar":
        first = date(first.year, 1, 1)
        last = date(last.year, 12, 31)
        key = f"calendar:{EXCHANGE}:{first}:{last}"
        row = store.one("SELECT value FROM cache WHERE key = ?", [key]) if store else None
        if row:
            data = json.loads(row["value"])
            return cls(data["opens"], data["closes"])
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
        return cls(opens, closes)

    @classmethod
    def around(cls, store: Store | None, *moments: datetime) -> "MarketCalendar":
        lo = min(moments) - timedelta(days=400)
        hi = max(moments) + timedelta(days=400)
        return cls.load(store, lo.date(), hi.date())

    def is_open(self, asset_class: str, dt: datetime) -> bool:
        if asset_class == "crypto":
            return True
        t = dt.timestamp()
        i = bisect.bisect_right(self.opens, t) - 1
        return i >= 0 and t < self.closes[i]

    def trading_days_between(self, asset_class: str, start: datetime, end: datetime) -> int:
        """Sessions (equities) or calendar days (crypto) from the start's session to the end's."""
        if asset_class == "crypto":
            return max((end.date() - start.date()).days, 0)
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
        out = []
        for t in times_epoch:
            i = bisect.bisect_right(self.opens, t) - 1
            out.append(i >= 0 and t < self.closes[i])
        return out


def to_utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)
