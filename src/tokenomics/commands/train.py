"""train: label bars by forward return, cross-validate over time, save the pipeline and its model card."""

from __future__ import annotations

import json

import typer

from tokenomics.commands import symbol_list
from tokenomics.core.errors import UsageProblem
from tokenomics.output import emit

app = typer.Typer()


def _params(pairs: list[str]) -> dict:
    out = {}
    for p in pairs:
        key, sep, value = p.partition("=")
        if not sep or not key:
            raise UsageProblem(f"--param takes key=value (got {p!r})")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


@app.command()
def train(
    ctx: typer.Context,
    name: str = typer.Option(None, "--name", help="Model name: saved under ml.models_dir/NAME/ (not with --grid)."),
    source: str = typer.Option("sim", "--source", help="Bars source in the store: sim, file or ccxt:<exchange>."),
    symbol: list[str] = typer.Option(None, "--symbol", "-s", help="Symbols to train on (default: every stored "
                                     "symbol of that source and timeframe)."),
    timeframe: str = typer.Option(None, "--timeframe", "-t", help="Bars timeframe (default: the sim step for "
                                  "sim, else bars.timeframe)."),
    features: str = typer.Option(None, "--features", help="Comma-separated subset of the features (default: all)."),
    classifier: str = typer.Option(None, "--classifier", help="Dotted scikit-learn classifier (default: ml.classifier)."),
    param: list[str] = typer.Option(None, "--param", help="Classifier parameter key=value (repeatable); replaces "
                                    "ml.params when given."),
    horizon: int = typer.Option(None, "--horizon", min=1, help="Label horizon in bars (default: ml.horizon)."),
    threshold: float = typer.Option(None, "--threshold-pct", min=0, help="Label threshold, % (default: ml.threshold_pct)."),
    cv: str = typer.Option(None, "--cv", help="walk-forward or purged (default: ml.cv)."),
    folds: int = typer.Option(None, "--folds", min=2, help="CV folds (default: ml.folds)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing model of that name."),
    grid: list[str] = typer.Option(None, "--grid", help="Classifier parameter k=v1,v2 (repeatable): cross-validate "
                                   "every combination and compare their out-of-sample metrics; saves no model."),
    executor: str = typer.Option(None, "--executor", help="Where --grid cells run: local (process pool), inline "
                                 "or ray (default: backtest.executor)."),
    address: str = typer.Option(None, "--address", help="Ray cluster for --executor ray: auto or ray://HEAD:10001."),
    workers: int = typer.Option(None, "--workers", min=0, help="Processes for --grid (default: backtest.workers)."),
) -> None:
    """Train a classifier on stored bars: label = forward return over --horizon bars above --threshold-pct;
    time-series CV without shuffling (walk-forward, or purged k-fold with an embargo); per-fold accuracy,
    precision, ROC AUC, Brier and the net return of trading the predictions."""
    from tokenomics.core import features as F
    from tokenomics.core.bars import canonical_timeframe, minutes_timeframe
    from tokenomics.research import bars, ml

    rt = ctx.obj
    s = rt.settings
    if not grid:
        if name is None:
            raise UsageProblem("train needs --name (or --grid to compare parameters without saving a model)")
        ml.check_target(s.ml.models_dir, name, force)  # exit 2 before any work: a safe name, nothing in the way
    params_ = _params(param) if param else dict(s.ml.params)
    combos = _grid_combos(grid) if grid else [{}]
    for combo in combos:  # bad --param or --grid values exit 2 now, not after the folds
        ml.make_classifier(classifier or s.ml.classifier, {**params_, **combo})
    cv = cv or s.ml.cv
    if cv not in ("walk-forward", "purged"):
        raise UsageProblem(f"--cv must be walk-forward or purged (got {cv!r})")
    try:  # 60m and 1h: one timeframe
        tf = canonical_timeframe(timeframe) if timeframe else (
            minutes_timeframe(s.sim.step_minutes) if source == "sim" else s.bars.timeframe)
    except ValueError as exc:
        raise UsageProblem(str(exc)) from None
    feats = [f.strip() for f in features.split(",") if f.strip()] if features else list(F.FEATURES)
    unknown = [f for f in feats if f not in F.FEATURES]
    if unknown:
        raise UsageProblem(f"unknown feature(s) {', '.join(unknown)}", hint=f"available: {', '.join(F.FEATURES)}")
    symbols = symbol_list(symbol) or bars.stored_symbols(rt.store, source, tf)
    if not symbols:
        raise UsageProblem(f"no {source} {tf} bars in the store", hint=f"run `tokenomics fetch-bars --source {source}`")
    if grid:
        _grid(rt, combos, params_, source=source, symbols=symbols, tf=tf, features=feats, classifier=classifier,
              horizon=horizon, threshold=threshold, cv=cv, folds=folds, executor=executor, address=address,
              workers=workers)
        return
    with rt.store.run("train", rt.mode) as counts:
        card = ml.train(
            rt.store, name=name, source=source, symbols=symbols, timeframe=tf, features=feats,
            classifier=classifier or s.ml.classifier, params=params_,
            horizon=horizon or s.ml.horizon, threshold_pct=s.ml.threshold_pct if threshold is None else threshold,
            cv=cv, folds=folds or s.ml.folds, embargo=s.ml.embargo, min_probability=s.ml.min_probability,
            cost_rate=rt.cost_rate, models_dir=s.ml.models_dir, now=rt.now(), force=force)
        counts.update(rows=card["rows"], folds=len(card["metrics"]["folds"]))
    doc = {"name": card["name"], "path": str(s.ml.models_dir / name), "rows": card["rows"],
           "symbols": card["symbols"], "date_range": card["date_range"], "feature_set": card["feature_set"],
           "mean": card["metrics"]["mean"], "folds": card["metrics"]["folds"]}
    emit(rt, doc, title=f"train {name}", rows_key="folds",
         columns=["fold", "test_from", "test_to", "rows", "accuracy", "precision", "roc_auc", "brier", "trades",
                  "net_return"])


def _grid_combos(grid: list[str]) -> list[dict]:
    from tokenomics.research.backtest import grid_combinations

    return grid_combinations(grid)


def _grid(rt, combos: list[dict], params: dict, *, source: str, symbols: list[str], tf: str, features: list[str],
          classifier: str | None, horizon: int | None, threshold: float | None, cv: str, folds: int | None,
          executor: str | None, address: str | None, workers: int | None) -> None:
    """train --grid: the dataset is built once here and sent to the workers by value."""
    from tokenomics.executors import for_settings
    from tokenomics.research import ml, sweeps

    s = rt.settings
    args = {"classifier": classifier or s.ml.classifier, "cv": cv, "folds": folds or s.ml.folds,
            "horizon": horizon or s.ml.horizon, "embargo": s.ml.embargo, "min_probability": s.ml.min_probability,
            "cost_rate": rt.cost_rate}
    with rt.store.run("train", rt.mode) as counts:
        data = ml.dataset(rt.store, source, symbols, tf, features, args["horizon"],
                          s.ml.threshold_pct if threshold is None else threshold)
        ml.check_folds(data, cv, args["folds"])
        ex = for_settings(s, executor, address, workers)
        try:
            rows = sweeps.train_grid(ex, data, combos, params, args)
        finally:
            ex.close()
        counts.update(rows=int(len(data["y"])), combinations=len(rows))
    keys = sorted({k for c in combos for k in c})
    doc = {"classifier": args["classifier"], "params": params, "source": source, "symbols": data["symbols"],
           "timeframe": tf, "rows": int(len(data["y"])), "cv": {"scheme": cv, "folds": args["folds"]},
           "horizon": args["horizon"], "combinations": len(rows), "grid": rows}
    emit(rt, doc, title=f"train --grid ({args['classifier']})", rows_key="grid",
         columns=[*keys, "accuracy", "precision", "roc_auc", "brier", "net_return", "trades", "folds"])
