"""Parameter search: an Optuna study over named ranges, its trials run as backtest cells.

- The space: `fast=5..50` (integers), `exits.stop_loss_pct=1.0..5.0:log` (floats, log scale),
  `x=0..1:0.1` (a step), `symbol=BTC/USD,ETH/USD` (a choice), `slow=30` (fixed).
- The objective: sharpe, sortino, calmar (CAGR / |max drawdown|) or total_return of the in-sample
  window, maximised; a trial with fewer closed trades than `min_trades` (or no value, e.g. a Sharpe
  without volatility) is pruned, so it never counts as best.
- Ask and tell: the driver asks a batch of trials, the executor runs them (process pool or Ray
  tasks) and the driver tells their values. The sampler (TPE by default) is seeded again before each
  ask from the seed and the number of finished trials, so a seeded search gives the same trials
  whatever the executor, and one interrupted between batches and resumed gives the same trials as
  one that never stopped.
- The study lives in Optuna's RDB storage: by default the project's SQLite store itself (Optuna's
  own tables, `studies`, `trials`, ... beside ours), so it resumes by name. Only this process writes
  them, between batches; workers never open the store (local workers append backtest rows, as a
  grid does; Ray workers do not touch it at all).
- Every trial is saved like a grid row (the backtests table; its id is the trial's `backtest_id`).
- The holdout: the last part of the window is kept out of the search; the best trials are scored
  there too and shown beside their in-sample figures.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, replace
from typing import Any

from tokenomics.core.errors import UsageProblem
from tokenomics.research import backtest as replay
from tokenomics.research import sweeps
from tokenomics.store import iso, parse_ts

OBJECTIVES = ("sharpe", "sortino", "calmar", "total_return")
SAMPLERS = ("tpe", "random")
NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
RANGE = re.compile(rf"^({NUMBER})\.\.({NUMBER})(?::(log|{NUMBER}))?$")


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # int | float | choice
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    def distribution(self):
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.kind == "int":
            return IntDistribution(int(self.low), int(self.high), log=self.log, step=int(self.step or 1))
        if self.kind == "float":
            return FloatDistribution(float(self.low), float(self.high), log=self.log, step=self.step)
        return CategoricalDistribution(self.choices)

    def spec(self) -> str:
        if self.kind == "choice":
            return f"{self.name}={','.join(map(str, self.choices))}"
        tail = ":log" if self.log else f":{self.step}" if self.step else ""
        return f"{self.name}={self.low}..{self.high}{tail}"


def parse_param(spec: str) -> Param:
    """One `name=lo..hi[:log|:step]` or `name=a,b,c` (values as YAML scalars) or `name=value`."""
    import yaml

    name, sep, body = spec.partition("=")
    name, body = name.strip(), body.strip()
    if not sep or not name or not body:
        raise UsageProblem(f"--param {spec!r}: expected name=low..high[:log|:step] or name=a,b,c",
                           hint="--param fast=5..50 --param exits.stop_loss_pct=1.0..5.0:log")
    if ".." in body:
        m = RANGE.match(body)
        if not m:
            raise UsageProblem(f"--param {name}: bad range {body!r}; expected low..high, low..high:log "
                               "or low..high:step", hint=f"--param {name}=5..50")
        lo_s, hi_s, tail = m.groups()
        is_int = all(re.fullmatch(r"[-+]?\d+", x) for x in (lo_s, hi_s)) and (
            tail in (None, "log") or re.fullmatch(r"\d+", tail or ""))
        lo, hi = (int(lo_s), int(hi_s)) if is_int else (float(lo_s), float(hi_s))
        log = tail == "log"
        step = None if tail in (None, "log") else (int(tail) if is_int else float(tail))
        if lo >= hi:
            raise UsageProblem(f"--param {name}: low ({lo}) must be below high ({hi})")
        if log and lo <= 0:
            raise UsageProblem(f"--param {name}: a log range needs low > 0 (got {lo})")
        if step is not None and step <= 0:
            raise UsageProblem(f"--param {name}: the step must be positive (got {step})")
        return Param(name, "int" if is_int else "float", lo, hi, log, step)
    values = [yaml.safe_load(v.strip()) for v in body.split(",") if v.strip()]
    bad = [v for v in values if not (v is None or isinstance(v, (bool, int, float, str)))]
    if not values or bad:
        raise UsageProblem(f"--param {name}: choices must be plain values (got {body!r})")
    if len(set(map(repr, values))) != len(values):
        raise UsageProblem(f"--param {name}: a choice is listed twice ({body!r})")
    return Param(name, "choice", choices=tuple(values))


def parse_space(specs: list[str]) -> dict[str, Param]:
    space: dict[str, Param] = {}
    for spec in specs:
        p = parse_param(spec)
        if p.name in space:
            raise UsageProblem(f"--param names {p.name!r} twice")
        space[p.name] = p
    if not space:
        raise UsageProblem("--param needs at least one parameter", hint="--param fast=5..50")
    return space


def objective_value(metrics: dict, objective: str) -> float | None:
    if objective == "calmar":
        cagr, mdd = metrics.get("cagr"), metrics.get("max_drawdown")
        if cagr is None or not mdd:
            return None
        value = cagr / abs(mdd)
    else:
        value = metrics.get(objective)
    return float(value) if value is not None and math.isfinite(value) else None


def check_options(objective: str, sampler: str, trials: int, holdout: float, top: int, batch: int) -> None:
    if objective not in OBJECTIVES:
        raise UsageProblem(f"--objective must be one of {', '.join(OBJECTIVES)} (got {objective!r})")
    if sampler not in SAMPLERS:
        raise UsageProblem(f"--sampler must be one of {', '.join(SAMPLERS)} (got {sampler!r})")
    if trials < 1 or top < 1 or batch < 1:
        raise UsageProblem("--trials, --top and --batch must be at least 1")
    if not 0 <= holdout < 1:
        raise UsageProblem(f"--holdout is the share of the window kept out of the search: 0 <= h < 1 (got {holdout})")


def split(rt, w: "replay.Window", holdout: float) -> tuple["replay.Window", "replay.Window | None"]:
    """The in-sample window and the holdout after it (the last `holdout` share of the steps or bars)."""
    if not holdout:
        return w, None
    cut = w.last - int(round((w.last - w.first) * holdout))
    if cut - w.first < 2 or w.last - cut < 2:
        raise UsageProblem(f"--holdout {holdout}: the window ({w.last - w.first} steps) is too short to split",
                           hint="widen the window with --steps or --start")
    if not w.stored:
        return replace(w, last=cut, note=None), replace(w, first=cut, note=None)
    clock = replay.stored_clock(rt.store, w.source, w.timeframe, w.symbols, parse_ts(w.start), parse_ts(w.end))
    c = cut - w.first
    opts = {"source": w.source, "tf": w.timeframe, "symbols": list(w.symbols)}
    return (replay.window(rt, iso(clock[0]), iso(clock[c]), None, **opts),
            replay.window(rt, iso(clock[c]), iso(clock[-1]), None, **opts))


def span(rt, w: "replay.Window") -> dict:
    if w.stored:
        return {"source": w.source, "timeframe": w.timeframe, "symbols": list(w.symbols), "start": w.start,
                "end": w.end, "bars": w.last - w.first}
    return {"source": "sim", "start": iso(rt.world.time_of(w.first)), "end": iso(rt.world.time_of(w.last)),
            "steps": w.last - w.first}


def study_name(strategy: str, objective: str, space: dict[str, Param], w: "replay.Window",
               holdout: float, min_trades: int, seed: int, sampler: str) -> str:
    """A name derived from everything that defines the search: the same command resumes the same study."""
    ident = json.dumps([strategy, objective, sorted(p.spec() for p in space.values()), list(w.as_job()[:-1]),
                        holdout, min_trades, seed, sampler])
    return f"{strategy}-{objective}-{hashlib.sha256(ident.encode()).hexdigest()[:10]}"


def storage_for(url: str, busy_timeout_ms: int = 5000):
    import optuna

    kw: dict[str, Any] = {}
    if url.startswith("sqlite:"):
        kw = {"connect_args": {"timeout": busy_timeout_ms / 1000}}
    return optuna.storages.RDBStorage(url, engine_kwargs=kw)


def make_sampler(kind: str, seed: int):
    import optuna

    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def search(rt, executor, *, strategy: str, w: "replay.Window", space: dict[str, Param], objective: str = "sharpe",
           trials: int = 50, min_trades: int = 1, seed: int = 0, sampler: str = "tpe", batch: int = 4,
           holdout: float = 0.0, top: int = 5, study: str | None = None, storage: str | None = None) -> dict:
    """Run (or resume) the study until it has `trials` finished trials; the best ones, with their holdout."""
    import optuna
    from optuna.trial import TrialState

    check_options(objective, sampler, trials, holdout, top, batch)
    ins, oos = split(rt, w, holdout)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    name = study or study_name(strategy, objective, space, ins, holdout, min_trades, seed, sampler)
    url = storage or f"sqlite:///{rt.db_path.resolve()}"
    _ = rt.store  # the store (and its schema) exists before Optuna adds its tables
    sweeps.prepare(rt, strategy, w)  # every bar of both windows, stored once
    snap = sweeps.make_snapshot(rt, strategy, [{}]) if getattr(executor, "remote", False) else None
    store = storage_for(url, rt.settings.store.busy_timeout_ms)
    try:
        st = optuna.create_study(study_name=name, storage=store, direction="maximize", load_if_exists=True,
                                 sampler=make_sampler(sampler, seed))
        stale = [t.number for t in st.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING))]
        for n in stale:  # asked by a run that was interrupted before it could tell
            st.tell(n, state=TrialState.FAIL)
        dists = {k: p.distribution() for k, p in space.items()}
        done = resumed = _finished(st)
        evaluated = 0
        while done < trials:
            asked = []
            for i in range(min(batch, trials - done)):
                st.sampler = make_sampler(sampler, seed + done + i)  # reproducible across executors and resumes
                asked.append(st.ask(fixed_distributions=dists))
            rows = sweeps.run_cells(rt, executor, strategy, ins, [dict(t.params) for t in asked], snap,
                                    tolerant=True)
            errors = [r["error"] for r in rows if "error" in r]
            if errors and len(errors) == len(rows) and done == 0 and len(set(errors)) == 1:
                for t in asked:
                    st.tell(t, state=TrialState.FAIL)
                raise UsageProblem(errors[0])  # every trial refused the same way: a bad parameter, not bad luck
            for t, row in zip(asked, rows):
                tell(st, t, row, objective, min_trades)
            evaluated += len(asked)
            done = _finished(st)
        best = best_rows(st, top)
        if oos is not None and best:
            combos = [{k: r[k] for k in space} for r in best]
            for r, h in zip(best, sweeps.run_cells(rt, executor, strategy, oos, combos, snap, tolerant=True)):
                r["holdout_id"] = h.get("id")
                r[f"holdout_{objective}"] = objective_value(h, objective)
                for k in ("total_return", "max_drawdown", "trades"):
                    r[f"holdout_{k}"] = h.get(k)
                if "error" in h:
                    r["holdout_error"] = h["error"]
        complete = len(st.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
        pruned = len(st.get_trials(deepcopy=False, states=(TrialState.PRUNED,)))
    finally:
        engine = getattr(store, "engine", None)
        if engine is not None:
            engine.dispose()
    doc: dict[str, Any] = {
        "strategy": strategy, "study": name, "storage": _redact(url), "objective": objective, "sampler": sampler,
        "seed": seed, "space": {k: p.spec().partition("=")[2] for k, p in space.items()},
        "min_trades": min_trades, "trials": complete + pruned, "complete": complete, "pruned": pruned,
        "resumed_from": resumed, "evaluated": evaluated, "failed_stale": len(stale),
        "in_sample": span(rt, ins),
    }
    if oos is not None:
        doc["holdout"] = {**span(rt, oos), "share": holdout}
    if w.note:
        doc["warnings"] = [w.note]
    doc["best"] = best
    return doc


def tell(st, t, row: dict, objective: str, min_trades: int) -> None:
    """Record a trial's backtest and tell its value, or prune it (too few trades, no value, refused)."""
    from optuna.trial import TrialState

    if "error" in row:
        t.set_user_attr("pruned", row["error"])
        st.tell(t, state=TrialState.PRUNED)
        return
    metrics = {k: v for k, v in row.items() if k not in t.params and k != "id"}
    t.set_user_attr("backtest_id", row["id"])
    t.set_user_attr("metrics", metrics)
    value = objective_value(metrics, objective)
    trades = metrics.get("trades") or 0
    if value is None or trades < min_trades:
        t.set_user_attr("pruned", f"{objective} is undefined" if value is None
                        else f"{trades} trades < --min-trades {min_trades}")
        st.tell(t, state=TrialState.PRUNED)
    else:
        st.tell(t, value)


def _finished(st) -> int:
    from optuna.trial import TrialState

    return len(st.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def best_rows(st, top: int) -> list[dict]:
    """The `top` complete trials by value (ties: the earlier trial first)."""
    from optuna.trial import TrialState

    done = st.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    done.sort(key=lambda t: (-t.value, t.number))
    out = []
    for rank, t in enumerate(done[:top], 1):
        m = t.user_attrs.get("metrics", {})
        out.append({"rank": rank, "trial": t.number, **t.params, "value": t.value,
                    "total_return": m.get("total_return"), "sharpe": m.get("sharpe"), "sortino": m.get("sortino"),
                    "max_drawdown": m.get("max_drawdown"), "trades": m.get("trades"),
                    "backtest_id": t.user_attrs.get("backtest_id")})
    return out


def _redact(url: str) -> str:
    """A storage URL without its password (a Postgres URL may carry one)."""
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)
