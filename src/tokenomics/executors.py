"""Where research work runs: an executor maps a picklable function over jobs.

The local process pool is the default; a Ray-backed executor takes its place when asked for
(`--executor ray`, `backtest.executor: ray`) without touching the callers.

`map(fn, jobs)` calls `fn(job)` for every job and returns the results in the order of the jobs.
`map(fn, jobs, shared=value)` calls `fn(job, value)`: the value (bars, a dataset, a snapshot of the
store) travels once per worker (pool initializer) or once per cluster (Ray's object store) instead
of once per job. `remote` tells whether workers may run on other machines: those cannot read this
machine's files (the SQLite store, the config), so their callers send data by value.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from tokenomics.core.errors import UsageProblem

EXECUTORS = ("local", "inline", "ray")
SCRATCH_PREFIX = "tokenomics-worker-"


def _scratch_parent() -> Path:
    shm = Path("/dev/shm")  # memory-backed where there is one
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())


def scratch_dir(tag: str) -> Path:
    """A private directory of this worker process (removed by `sweep_scratch` once the process is gone)."""
    sweep_scratch()
    return Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-{tag}-", dir=_scratch_parent()))


def sweep_scratch(wait: float = 0.0) -> int:
    """Remove the scratch directories of worker processes that have exited (a killed worker cannot
    clean up after itself); `wait` seconds for workers that are still shutting down."""
    deadline = time.monotonic() + wait
    removed = 0
    while True:
        alive = 0
        for d in _scratch_parent().glob(f"{SCRATCH_PREFIX}*"):
            try:
                pid = int(d.name[len(SCRATCH_PREFIX):].split("-", 1)[0])
                if pid == os.getpid():
                    continue
                os.kill(pid, 0)
                alive += 1
            except ProcessLookupError:
                shutil.rmtree(d, ignore_errors=True)
                removed += 1
            except (ValueError, PermissionError):
                pass
        if not alive or time.monotonic() >= deadline:
            return removed
        time.sleep(0.1)


class Executor(Protocol):
    remote: bool

    def map(self, fn: Callable[..., Any], jobs: Iterable[Any], shared: Any = None) -> list[Any]: ...


class InlineExecutor:
    """Runs jobs one after another in this process (one job, or debugging)."""

    remote = False
    workers = 1

    def map(self, fn: Callable[..., Any], jobs: Iterable[Any], shared: Any = None) -> list[Any]:
        from tokenomics.logs import progress

        jobs = list(jobs)
        out = []
        with progress(f"grid: {len(jobs)} combinations", len(jobs)) if len(jobs) > 1 else _silent() as advance:
            for j in jobs:
                out.append(fn(j) if shared is None else fn(j, shared))
                advance(1)
        return out

    def close(self) -> None:
        pass


_SHARED: Any = None  # a pool worker's copy of `shared`, set once by the initializer


def _set_shared(value: Any) -> None:
    global _SHARED
    _SHARED = value


def _call_with_shared(fn: Callable[..., Any], job: Any) -> Any:
    return fn(job, _SHARED)


@contextmanager
def _silent() -> Iterator[Callable[[int], None]]:
    yield lambda n: None


class LocalProcessExecutor:
    """A local process pool; results come back in the order of the jobs."""

    remote = False

    def __init__(self, workers: int = 0):
        self.workers = workers or os.cpu_count() or 1

    def map(self, fn: Callable[..., Any], jobs: Iterable[Any], shared: Any = None) -> list[Any]:
        jobs = list(jobs)
        if len(jobs) <= 1 or self.workers == 1:
            return InlineExecutor().map(fn, jobs, shared)
        import functools
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        ctx = multiprocessing.get_context("spawn")  # no inherited SQLite handles or locks
        kw: dict[str, Any] = {}
        if shared is not None:
            kw = {"initializer": _set_shared, "initargs": (shared,)}
            fn = functools.partial(_call_with_shared, fn)
        from tokenomics.logs import progress

        out = []
        with ProcessPoolExecutor(max_workers=min(self.workers, len(jobs)), mp_context=ctx, **kw) as pool, \
                progress(f"grid: {len(jobs)} combinations", len(jobs)) as advance:
            for result in pool.map(fn, jobs):  # in the order of the jobs
                out.append(result)
                advance(1)
        return out

    def close(self) -> None:
        pass


def _ray_call(fn: Callable[..., Any], job: Any, shared: Any = None) -> Any:
    # `shared` arrives resolved: Ray passes a top-level ObjectRef argument by value
    return fn(job) if shared is None else fn(job, shared)


class RayExecutor:
    """Jobs as Ray tasks, on a local Ray (no address: started here, stopped by close()) or on the
    cluster at `address` (`auto`: the cluster this machine belongs to; `ray://head:10001`: a remote
    head through Ray Client). A `shared` value is put in the object store once per executor (keyed
    by `shared["key"]` when it is a dict that has one) and reaches every task by reference."""

    remote = True

    def __init__(self, address: str | None = None, workers: int = 0):
        self.address = address or None
        self.workers = workers
        self._owned = False
        self._task: Any = None
        self._refs: dict[Any, Any] = {}

    def _ray(self):
        try:
            import ray
        except ImportError:
            raise UsageProblem("--executor ray needs the ray extra",
                               hint='pip install "tokenomics[ray]"') from None
        if not ray.is_initialized():
            if self.address:  # an existing cluster: its own settings (Ray Client forwards extra kwargs)
                ray.init(address=self.address, log_to_driver=False)
            else:
                ray.init(num_cpus=self.workers or None, include_dashboard=False, log_to_driver=False,
                         configure_logging=False)
            self._owned = True
        if self._task is None:
            self._task = ray.remote(_ray_call)
        return ray

    @property
    def parallelism(self) -> int:
        ray = self._ray()
        return max(int(ray.cluster_resources().get("CPU", 1)), 1)

    def put(self, shared: Any) -> Any:
        ray = self._ray()
        key = shared.get("key") if isinstance(shared, dict) else None
        if key is None:
            return ray.put(shared)
        if key not in self._refs:
            self._refs[key] = ray.put(shared)
        return self._refs[key]

    def map(self, fn: Callable[..., Any], jobs: Iterable[Any], shared: Any = None) -> list[Any]:
        ray = self._ray()
        ref = self.put(shared) if shared is not None else None
        futures = [self._task.remote(fn, job, ref) for job in jobs]
        try:
            return ray.get(futures)
        except ray.exceptions.RayTaskError as exc:  # the worker's own error, e.g. a UsageProblem (exit 2)
            cause = getattr(exc, "cause", None)
            if isinstance(cause, BaseException):
                raise cause from None
            raise
        except BaseException:
            for f in futures:  # an interrupt: stop what is still queued
                try:
                    ray.cancel(f)
                except Exception:  # noqa: BLE001 - already finished or gone
                    pass
            raise

    def close(self) -> None:
        self._refs.clear()
        if self._owned:
            import ray

            ray.shutdown()
            self._owned = False
            self._task = None
            sweep_scratch(wait=2.0)  # the local workers' copies of the store


def make_executor(kind: str | None = None, workers: int = 0, address: str | None = None):
    """The executor named `kind` (local, inline or ray); an address alone means ray."""
    kind = kind or ("ray" if address else "local")
    if kind not in EXECUTORS:
        raise UsageProblem(f"--executor must be one of {', '.join(EXECUTORS)} (got {kind!r})")
    if address and kind != "ray":
        raise UsageProblem(f"--address is a Ray cluster address; it needs --executor ray (got {kind})")
    if kind == "ray":
        return RayExecutor(address, workers)
    if kind == "inline":
        return InlineExecutor()
    return LocalProcessExecutor(workers)


def for_settings(settings: Any, kind: str | None = None, address: str | None = None, workers: int | None = None):
    """The executor of the command line, else of `backtest.executor` / `backtest.ray_address` /
    `backtest.workers` in the settings."""
    b = settings.backtest
    if kind is None and address:
        kind = "ray"
    kind = kind or b.executor
    if kind == "ray" and address is None:
        address = b.ray_address  # the setting applies to ray only; a command-line address to any executor
    return make_executor(kind, b.workers if workers is None else workers, address)
