"""Sentiment policy: which scores become entry signals, and which are skipped and why."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SignalDecision:
    status: str  # "new" (a buy signal to size) or "skipped"
    reason: str


def decide_entry(
    *,
    sentiment: str,
    conviction: int,
    min_conviction: int,
    held: bool,
    pending: bool,
    open_slots: int,
    tradable: bool,
    stale: bool,
) -> SignalDecision:
    """Decide what one (article, symbol) score means for a long-only book.

    Order matters: the first rule that applies explains the skip.
    """
    if sentiment != "bullish":
        return SignalDecision("skipped", f"{sentiment} score: no long entry")
    if conviction < min_conviction:
        return SignalDecision("skipped", f"conviction {conviction} below min_conviction {min_conviction}")
    if stale:
        return SignalDecision("skipped", "article older than signals.max_age_minutes")
    return book_check(held=held, pending=pending, open_slots=open_slots, tradable=tradable) or \
        SignalDecision("new", f"bullish, conviction {conviction} >= {min_conviction}")


def book_check(*, held: bool, pending: bool, open_slots: int, tradable: bool) -> SignalDecision | None:
    """The checks every entry source shares: market open, not held, not pending, a free slot."""
    if not tradable:
        return SignalDecision("skipped", "market closed for this symbol")
    if held:
        return SignalDecision("skipped", "already holding the symbol")
    if pending:
        return SignalDecision("skipped", "an entry for the symbol is already pending")
    if open_slots <= 0:
        return SignalDecision("skipped", "capacity: max_open_positions reached")
    return None
