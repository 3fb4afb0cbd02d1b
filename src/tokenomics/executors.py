"""Where research work runs: an executor maps a picklable function over jobs.

The local process pool is the default; anything with the same `map` (e.g. a Ray-backed
executor when a cluster address is given) can take its place without touching the callers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any, Protocol


class Executor(Protocol):
    def map(self, fn: Callable[[Any], Any], jobs: Iterable[Any]) -> list[Any]: ...


class InlineExecutor:
    """Runs jobs one after another in this process (one job, or debugging)."""

    def map(self, fn: Callable[[Any], Any], jobs: Iterable[Any]) -> list[Any]:
        return [fn(j) for j in jobs]


class LocalProcessExecutor:
    """A local process pool; results come back in the order of the jobs."""

    def __init__(self, workers: int = 0):
        self.workers = workers or os.cpu_count() or 1

    def map(self, fn: Callable[[Any], Any], jobs: Iterable[Any]) -> list[Any]:
        jobs = list(jobs)
        if len(jobs) <= 1 or self.workers == 1:
            return InlineExecutor().map(fn, jobs)
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        ctx = multiprocessing.get_context("spawn")  # no inherited SQLite handles or locks
        with ProcessPoolExecutor(max_workers=min(self.workers, len(jobs)), mp_context=ctx) as pool:
            return list(pool.map(fn, jobs))
