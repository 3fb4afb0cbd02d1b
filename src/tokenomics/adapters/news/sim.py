"""Simulated news: every headline the sim world published since the last fetch."""

from __future__ import annotations

from tokenomics.adapters.sim import SimWorld
from tokenomics.core.models import Article
from tokenomics.store import Store

CURSOR = "news:sim:step"


class SimNews:
    name = "sim"

    def __init__(self, world: SimWorld, step: int):
        self.world, self.step = world, step

    def fetch(self, store: Store) -> list[Article]:
        """Articles of the steps after the cursor up to now (only the current step on a new store)."""
        last = store.get_cursor(CURSOR)
        first = int(last) + 1 if last is not None else self.step
        out: list[Article] = []
        for step in range(first, self.step + 1):
            out.extend(self.world.articles(step))
        return out

    def commit(self, store: Store) -> None:
        store.set_cursor(CURSOR, str(self.step))
