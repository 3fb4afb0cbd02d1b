"""Training, model storage and model signals over the store's bars.

A model lives in <ml.models_dir>/<name>/: model.joblib (the fitted scikit-learn pipeline), model.npz
(its numpy export, what predicting loads when the pipeline is a tree model: see research/forest.py) and
model_card.json (what it was trained on, how, and how well it did out of sample).
"""

from __future__ import annotations

import bisect
import hashlib
import importlib
import json
import os
import platform
import re
import shutil
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from tokenomics.core import features as F
from tokenomics.core import ml as core
from tokenomics.core.bars import canonical_timeframe, minutes_timeframe, timeframe_seconds
from tokenomics.core.errors import UsageProblem
from tokenomics.logs import progress
from tokenomics.research import forest
from tokenomics.store import Store, iso, parse_ts

SHIPPED = Path(__file__).resolve().parents[3] / "trained_models"
CARD = "model_card.json"
PIPELINE = "model.joblib"
NAME_RULE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def check_name(name: str, option: str = "--name") -> str:
    """A model name is one plain folder name under ml.models_dir: never a path, never empty."""
    if not NAME_RULE.fullmatch(name or "") or ".." in name:
        raise UsageProblem(
            f"{option} {name!r} is not a model name: use 1-64 letters, digits, '.', '_' or '-', starting with "
            "a letter or digit (no '/', no '..')", hint="e.g. --name btc-rf-1h")
    return name


def _is_model_dir(path: Path) -> bool:
    """A folder tokenomics wrote: a real directory (not a link) holding a classifier's model card."""
    if path.is_symlink() or not path.is_dir():
        return False
    try:
        return json.loads((path / CARD).read_text()).get("kind") == "classifier"
    except (OSError, ValueError, AttributeError):
        return False


def check_target(models_dir: Path, name: str, force: bool) -> Path:
    """Where model `name` goes; exit 2 before any work when something is in the way."""
    target = models_dir / check_name(name)
    if target.exists() or target.is_symlink():
        if not force:
            raise UsageProblem(f"model {name!r} already exists in {models_dir}", hint="pass --force to replace it")
        if not _is_model_dir(target):
            raise UsageProblem(f"{target} exists and is not a tokenomics model (no {CARD}): not replacing it",
                               hint="move it away or choose another --name")
    return target


def save_model(models_dir: Path, name: str, pipe: Any, card: dict[str, Any], force: bool) -> Path:
    """Write into a fresh temp folder beside the target, then swap it in. Only a folder that this
    function created (the temp folder, or the previous model moved aside) is ever deleted."""
    import joblib

    target = check_target(models_dir, name, force)
    models_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.new-", dir=models_dir))
    try:
        joblib.dump(pipe, tmp / PIPELINE, compress=3)
        forest.save(pipe, tmp / forest.NUMPY_FILE, tmp / PIPELINE)  # what predicting loads, without sklearn
        (tmp / CARD).write_text(json.dumps(card, indent=2) + "\n")
        old = None
        if target.exists():
            check_target(models_dir, name, force)  # still a model of ours, still allowed
            old = Path(tempfile.mkdtemp(prefix=f".{name}.old-", dir=models_dir)) / name
            os.rename(target, old)
        try:
            os.rename(tmp, target)
        except OSError:
            if old is not None:
                os.rename(old, target)  # put the previous model back
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old.parent, ignore_errors=True)
    return target


# --- data ------------------------------------------------------------------------------------
def frame_features(bars_df, features: list[str]):
    """Features of one symbol's bars after the warm-up (a polars frame with ts, close and the features)."""
    import polars as pl

    df = F.compute(bars_df)
    missing = [f for f in features if f not in df.columns]
    if missing:
        raise UsageProblem(f"unknown feature(s) {', '.join(missing)}", hint=f"available: {', '.join(F.FEATURES)}")
    return df.select("ts", "close", *features).slice(F.WARMUP).with_columns(
        pl.col(f).fill_nan(None) for f in features)


def dataset(store: Store, source: str, symbols: list[str], timeframe: str, features: list[str],
            horizon: int, threshold_pct: float) -> dict[str, Any]:
    """Rows of (features, label, forward return) for every symbol, sorted by time."""
    from tokenomics.research import bars as bars_mod

    parts, used, digest = [], [], hashlib.sha256()
    for sym in symbols:
        raw = bars_mod.load_frame(store, source, sym, timeframe)
        if raw.height <= F.WARMUP + horizon + 10:
            continue
        digest.update(sym.encode())
        digest.update(raw.select("ts", "open", "high", "low", "close", "volume").write_csv().encode())
        df = frame_features(raw, features)
        fwd = core.forward_returns(df["close"].to_numpy(), horizon)
        y = core.labels(fwd, threshold_pct)
        x = df.select(features).to_numpy().astype(float)
        ok = ~np.isnan(y) & ~np.isnan(x).any(axis=1)
        ts = df["ts"].to_numpy()
        label_end = np.concatenate([ts[horizon:], np.full(min(horizon, len(ts)), ts[-1])])  # its own bar t + h
        close = df["close"].to_numpy().astype(float)
        parts.append((ts[ok], x[ok], y[ok], fwd[ok], label_end[ok], np.full(int(ok.sum()), len(used)), close[ok]))
        used.append(sym)
    if not parts:
        raise UsageProblem(
            f"not enough {source} {timeframe} bars to train (need more than {F.WARMUP + horizon + 10} per symbol)",
            hint="run `tokenomics fetch-bars` first")
    ts = np.concatenate([p[0] for p in parts])
    order = np.argsort(ts, kind="stable")
    return {"ts": ts[order], "x": np.concatenate([p[1] for p in parts])[order],
            "y": np.concatenate([p[2] for p in parts])[order], "fwd": np.concatenate([p[3] for p in parts])[order],
            "label_end": np.concatenate([p[4] for p in parts])[order],
            "group": np.concatenate([p[5] for p in parts])[order],
            "close": np.concatenate([p[6] for p in parts])[order],
            "symbols": used, "data_hash": digest.hexdigest()}


# --- model -----------------------------------------------------------------------------------
def make_classifier(dotted: str, params: dict[str, Any]):
    from sklearn.base import is_classifier

    module, _, name = dotted.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        raise UsageProblem(f"cannot import classifier {dotted!r}",
                           hint="give a dotted name like sklearn.linear_model.LogisticRegression") from None
    try:
        clf = cls(**params)
    except TypeError as exc:
        raise UsageProblem(f"bad parameters for {dotted}: {exc}") from None
    if not is_classifier(clf):
        raise UsageProblem(f"{dotted} is not a scikit-learn classifier")
    validate = getattr(clf, "_validate_params", None)  # scikit-learn's own parameter constraints
    if validate is not None:
        try:
            validate()
        except (ValueError, TypeError) as exc:
            raise UsageProblem(f"bad parameters for {dotted}: {exc}", hint="--param takes key=value, "
                               "e.g. --param n_estimators=200") from None
    return clf


def make_pipeline(dotted: str, params: dict[str, Any]):
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline([("scale", StandardScaler()), ("model", make_classifier(dotted, params))])


def fold_metrics(y: np.ndarray, proba: np.ndarray, fwd: np.ndarray, min_probability: float, horizon: int,
                 cost_rate: float, group: np.ndarray | None = None, close: np.ndarray | None = None,
                 symbols: list[str] | None = None) -> dict[str, Any]:
    """Classification metrics over the fold's rows, and the returns of trading them per symbol (rows in
    time order within each symbol; one position per symbol, so positions never overlap and compound
    across symbols), next to each symbol's real buy-and-hold over the fold (enter at its first test
    bar, exit at its last, paying costs once each way); both averaged over the symbols (an equally
    weighted book)."""
    from sklearn.metrics import (
        accuracy_score,
        brier_score_loss,
        precision_score,
        roc_auc_score,
    )

    pred = (proba >= 0.5).astype(int)
    group = np.zeros(len(y), int) if group is None else group
    per: dict[str, dict[str, Any]] = {}
    for g in np.unique(group):
        rows = group == g  # already in time order: the dataset is sorted by time, stably
        ret, trades = core.trade_predictions(proba[rows] >= min_probability, fwd[rows], horizon, cost_rate)
        hold = core.buy_and_hold(close[rows], cost_rate) if close is not None else float("nan")
        name = symbols[int(g)] if symbols else str(int(g))
        per[name] = {"net_return": round(ret, 6), "trades": trades, "buy_and_hold_net_return": round(hold, 6)}
    return {
        "rows": int(len(y)), "positive_rate": round(float(y.mean()), 4),
        "accuracy": round(float(accuracy_score(y, pred)), 4),
        "precision": round(float(precision_score(y, pred, zero_division=0)), 4),
        "roc_auc": round(float(roc_auc_score(y, proba)), 4) if len(set(y.tolist())) == 2 else None,
        "brier": round(float(brier_score_loss(y, proba)), 4),
        "trades": sum(p["trades"] for p in per.values()),
        "net_return": round(float(np.mean([p["net_return"] for p in per.values()])), 6),
        "buy_and_hold_net_return": round(float(np.mean([p["buy_and_hold_net_return"] for p in per.values()])), 6),
        "per_symbol": per,
    }


def positive_proba(pipe, x: np.ndarray) -> np.ndarray:
    classes = list(pipe.classes_)
    if 1.0 not in classes and 1 not in classes:
        return np.zeros(len(x))
    return pipe.predict_proba(x)[:, classes.index(1.0 if 1.0 in classes else 1)]


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("tokenomics", "scikit-learn", "numpy", "polars", "joblib"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "unknown"
    return out


def cross_validate(data: dict[str, Any], *, classifier: str, params: dict[str, Any], cv: str, folds: int,
                   horizon: int, embargo: int, min_probability: float, cost_rate: float,
                   label: str = "train: folds") -> list[dict[str, Any]]:
    """Out-of-sample metrics of each time-series fold (no shuffling) of `dataset(...)`'s rows."""
    splits = core.time_splits(data["ts"], data["label_end"], data["group"], cv, folds, embargo)
    fold_rows = []
    with progress(label, len(splits)) as advance:
        fold_rows = _folds(data, splits, classifier, params, horizon, min_probability, cost_rate, advance)
    return fold_rows


def _folds(data: dict[str, Any], splits: list, classifier: str, params: dict[str, Any], horizon: int,
           min_probability: float, cost_rate: float, advance: Any) -> list[dict[str, Any]]:
    fold_rows = []
    for i, (tr, te) in enumerate(splits):
        advance(1)
        ytr = data["y"][tr]
        if len(set(ytr.tolist())) < 2 or not len(te):
            continue
        pipe = make_pipeline(classifier, params).fit(data["x"][tr], ytr)
        proba = positive_proba(pipe, data["x"][te])
        m = fold_metrics(data["y"][te], proba, data["fwd"][te], min_probability, horizon, cost_rate,
                         data["group"][te], data["close"][te], data["symbols"])
        fold_rows.append({"fold": i + 1, "train_from": iso(data["ts"][tr].min().astype(datetime)),
                          "test_from": iso(data["ts"][te].min().astype(datetime)),
                          "test_to": iso(data["ts"][te].max().astype(datetime)), **m})
    return fold_rows


MEAN_KEYS = ("accuracy", "precision", "roc_auc", "brier", "net_return", "buy_and_hold_net_return")


def mean_metrics(fold_rows: list[dict[str, Any]]) -> dict[str, float]:
    return {k: round(float(np.mean([f[k] for f in fold_rows if f[k] is not None])), 4)
            for k in MEAN_KEYS if any(f[k] is not None for f in fold_rows)}


MIN_FOLD_BARS = 50  # a test block of fewer bars gives metrics that are mostly noise


def check_folds(data: dict[str, Any], cv: str, folds: int) -> None:
    """Exit 2 when the data cannot fill the folds: each test block (walk-forward cuts time in folds + 1
    blocks, purged in folds) must hold at least MIN_FOLD_BARS bar times."""
    blocks = folds + 1 if cv == "walk-forward" else folds
    times = len(np.unique(data["ts"]))
    if times < MIN_FOLD_BARS * blocks:
        raise UsageProblem(
            f"too little data to train with --folds {folds} ({cv}): {times} labelled bars make folds of "
            f"{times // blocks} bars; need at least {MIN_FOLD_BARS} bars per fold, {MIN_FOLD_BARS * blocks} in all",
            hint=f"fetch more bars or use fewer --folds (at most {max(times // MIN_FOLD_BARS - (cv == 'walk-forward'), 0)})")


def train(store: Store, *, name: str, source: str, symbols: list[str], timeframe: str, features: list[str],
          classifier: str, params: dict[str, Any], horizon: int, threshold_pct: float, cv: str, folds: int,
          embargo: int, min_probability: float, cost_rate: float, models_dir: Path, now: datetime,
          force: bool = False) -> dict[str, Any]:
    """Cross-validate (no shuffling), fit on everything, save pipeline and card; return the card."""
    check_target(models_dir, name, force)
    data = dataset(store, source, symbols, timeframe, features, horizon, threshold_pct)
    check_folds(data, cv, folds)
    fold_rows = cross_validate(data, classifier=classifier, params=params, cv=cv, folds=folds, horizon=horizon,
                               embargo=embargo, min_probability=min_probability, cost_rate=cost_rate,
                               label=f"train {name}: folds")
    if len(set(data["y"].tolist())) < 2:
        raise UsageProblem("every label is the same class: change ml.horizon or ml.threshold_pct")
    pipe = make_pipeline(classifier, params).fit(data["x"], data["y"])
    mean = mean_metrics(fold_rows)
    times = np.unique(data["ts"])
    card = {
        "name": name, "created_at": iso(now), "kind": "classifier", "classifier": classifier, "params": params,
        "source": source, "symbols": data["symbols"], "timeframe": timeframe,
        "date_range": {"first": iso(times[0].astype(datetime)), "last": iso(times[-1].astype(datetime))},
        "rows": int(len(data["y"])), "positive_rate": round(float(data["y"].mean()), 4),
        "features": features, "feature_set": F.feature_set_id(features), "feature_version": F.FEATURE_VERSION,
        "warmup_bars": F.WARMUP,
        "label": {"horizon_bars": horizon, "threshold_pct": threshold_pct},
        "cv": {"scheme": cv, "folds": folds, "embargo_bars": embargo if cv == "purged" else 0, "shuffle": False},
        "min_probability": min_probability, "cost_rate_per_side": cost_rate,
        "metrics": {"folds": fold_rows, "mean": mean},
        "data_hash": data["data_hash"], "versions": versions(),
    }
    save_model(models_dir, name, pipe, card, force)
    return card


# --- loading and predicting ------------------------------------------------------------------
def model_path(models_dir: Path, name: str) -> Path:
    """<models_dir>/<name>, else the shipped trained_models/<name>."""
    check_name(name, "model name")
    for base in (models_dir, SHIPPED):
        if (base / name / CARD).exists():
            return base / name
    raise UsageProblem(f"no model named {name!r} in {models_dir} or {SHIPPED}",
                       hint="train one with `tokenomics train --name NAME`; `tokenomics models` lists them")


def list_models(models_dir: Path) -> list[dict[str, Any]]:
    seen, out = set(), []
    for base in (models_dir, SHIPPED):
        if not base.is_dir():
            continue
        for card_path in sorted(base.glob(f"*/{CARD}")):
            card = json.loads(card_path.read_text())
            if card.get("kind") != "classifier" or card["name"] in seen:
                continue
            seen.add(card["name"])
            mean = card["metrics"]["mean"]
            out.append({"name": card["name"], "path": str(card_path.parent), "classifier": card["classifier"],
                        "source": card["source"], "symbols": card["symbols"], "timeframe": card["timeframe"],
                        "first": card["date_range"]["first"], "last": card["date_range"]["last"], "rows": card["rows"],
                        "features": len(card["features"]), "roc_auc": mean.get("roc_auc"),
                        "net_return": mean.get("net_return"), "created_at": card["created_at"]})
    return out


class Model:
    def __init__(self, path: Path):
        self.path = path
        self.card = json.loads((path / CARD).read_text())
        self.name = self.card["name"]
        self.features: list[str] = self.card["features"]
        self.pipe = forest.load(path / forest.NUMPY_FILE, path / PIPELINE)  # the numpy export of this pickle
        if self.pipe is None:
            import joblib

            self.pipe = joblib.load(path / PIPELINE)
            for _, step in getattr(self.pipe, "steps", []):  # one row at a time: worker threads only cost time
                if getattr(step, "n_jobs", None) not in (None, 1):
                    step.n_jobs = 1

    def check_features(self, features: list[str]) -> None:
        """Refuse to predict on a feature set other than the one the model was trained on."""
        want, have = self.card["feature_set"], F.feature_set_id(features)
        if list(features) != list(self.features) or want != have:
            raise UsageProblem(
                f"model {self.name!r} was trained on feature set {want} ({len(self.features)} features, "
                f"definitions v{self.card.get('feature_version')}); this data has feature set {have} "
                f"({len(features)} features, definitions v{F.FEATURE_VERSION})",
                hint=f"retrain it: tokenomics train --name {self.name} --force")

    def latest_features(self, bars_df) -> tuple[datetime, np.ndarray]:
        """(open time, feature row) of the newest bar of one symbol's bars."""
        df = frame_features(bars_df, self.features)
        self.check_features([c for c in df.columns if c not in ("ts", "close")])
        last = df.tail(1)
        x = last.select(self.features).to_numpy().astype(float)[0]
        if np.isnan(x).any():
            raise UsageProblem(f"not enough bars to compute the features of model {self.name!r}")
        return last["ts"][0], x

    def predict_latest(self, bars_df) -> tuple[datetime, float]:
        """P(up) for the newest bar of one symbol's bars."""
        ts, x = self.latest_features(bars_df)
        return ts, float(positive_proba(self.pipe, x[None, :])[0])


LOOKBACK_BARS = F.WARMUP + 200  # closed bars read per symbol to compute the newest bar's features
_LOADED: dict[tuple[str, int, int | None], Model] = {}


def load_model(path: Path) -> Model:
    """A model, loaded once per process and again only when its pipeline file changes (a loop or a
    backtest predicts every tick)."""
    npz = path / forest.NUMPY_FILE
    key = (str(path), (path / PIPELINE).stat().st_mtime_ns, npz.stat().st_mtime_ns if npz.exists() else None)
    if key not in _LOADED:
        _LOADED[key] = Model(path)
    return _LOADED[key]


class Predictions:
    """P(up) of every bar of a replay's symbols, computed once before the replay: each symbol's
    features over all its bars (causal: a bar's row reads only the bars up to it) and one batched
    predict. The per-step path computes the same row from the last LOOKBACK_BARS bars; the recursive
    features' dependence on where their window starts has faded far below what a decision sees
    (the tests compare the two backtests' signals, orders and equity)."""

    def __init__(self, model: Model, store: Store, source: str, timeframe: str, symbols: list[str]):
        from tokenomics.research import bars as bars_mod

        self.name = model.name
        self.table: dict[str, tuple[list[float], list[datetime], np.ndarray]] = {}
        need = F.WARMUP + 35  # bars up to a bar for its features (as the per-step path asks)
        xs, spans = [], []
        for sym in symbols:
            df = bars_mod.load_frame(store, source, sym, timeframe)
            if df.height < need:  # none of its bars is predicted on
                self.table[sym] = ([t.timestamp() for t in df["ts"].to_list()], [], np.empty(0))
                continue
            feats = frame_features(df, model.features)  # its rows: bars WARMUP, WARMUP + 1, ...
            model.check_features([c for c in feats.columns if c not in ("ts", "close")])
            x = feats.select(model.features).to_numpy().astype(float)[need - 1 - F.WARMUP:]
            xs.append(x)
            spans.append((sym, df["ts"].to_list()))
        if not xs:
            return
        x = np.vstack(xs)
        ok = ~np.isnan(x).any(axis=1)
        proba = np.full(len(x), np.nan)
        if ok.any():
            proba[ok] = positive_proba(model.pipe, x[ok])
        at = 0
        for sym, ts in spans:
            k = len(ts) - (need - 1)  # bars with a prediction: from the need-th on
            self.table[sym] = ([t.timestamp() for t in ts], ts, np.concatenate([np.full(need - 1, np.nan),
                                                                                proba[at:at + k]]))
            at += k

    SKIP = ("skip",)  # too few bars up to then: the symbol is not predicted on

    def latest(self, symbol: str, until: datetime) -> "tuple[datetime, float] | tuple[str] | None":
        """(open time, P(up)) of the symbol's newest bar at or before `until`; SKIP when it has fewer
        bars than the features need; None when the table cannot say (a symbol it does not hold, a NaN
        feature): the per-step path then decides, as it always did."""
        row = self.table.get(symbol)
        if row is None:
            return None
        epochs, ts, proba = row
        i = bisect.bisect_right(epochs, until.timestamp()) - 1
        if i + 1 < F.WARMUP + 35:
            return self.SKIP
        if np.isnan(proba[i]):
            return None
        return ts[i], float(proba[i])


def model_signals(rt, name: str) -> dict[str, Any]:
    """Predict on each symbol's latest stored bar; write a buy signal (strength = probability) or a skip.
    A bar already predicted on is read back from its signal, not recomputed; a replay with precomputed
    `predictions` looks its bars up."""
    from tokenomics.research import bars as bars_mod

    s = rt.settings
    st = rt.store
    model = load_model(model_path(s.ml.models_dir, name))
    card = model.card
    # the bars it was trained on (a card of 60m reads 1h bars); a replay over stored bars predicts on the
    # replayed ones (scale-free features)
    source, tf = getattr(rt, "model_bars", None) or (card["source"], canonical_timeframe(card["timeframe"]))
    tf_s = timeframe_seconds(tf)
    now = rt.now()
    if source == "sim" and rt.mode == "sim" and tf == minutes_timeframe(s.sim.step_minutes):
        bars_mod.sync_sim_bars(rt, bars_mod.sim_steps_for(LOOKBACK_BARS))  # closed bars up to now
    symbols = [sym for sym in bars_mod.stored_symbols(st, source, tf) if sym in s.universe.symbols]
    held = {p["symbol"] for p in st.positions()}
    pending = {r["symbol"] for r in st.all(
        "SELECT symbol FROM signals WHERE side = 'buy' AND status IN ('new', 'sized') "
        "UNION SELECT symbol FROM orders WHERE intent = 'entry' AND status NOT IN "
        "('filled', 'rejected', 'canceled', 'expired')")}
    made, skipped, rows = [], 0, []
    until = now - timedelta(seconds=tf_s)
    pre = getattr(rt, "predictions", None)
    pre = pre if pre is not None and pre.name == name else None
    latest: list[list] = []  # [symbol, bar open time, P(up) (None: read its signal), features to predict on]
    for sym in symbols:
        hit = pre.latest(sym, until) if pre is not None else None
        if hit is Predictions.SKIP:
            continue
        if hit is not None:
            latest.append([sym, hit[0], hit[1], None])
            continue
        newest = st.scalar("SELECT MAX(ts) FROM bars WHERE source = ? AND symbol = ? AND timeframe = ? AND ts <= ?",
                           [source, sym, tf, until.isoformat()])
        if newest and st.scalar("SELECT 1 FROM signals WHERE id = ?", [f"model:{name}:{sym}:{iso(parse_ts(newest))}"]):
            latest.append([sym, parse_ts(newest), None, None])  # predicted on already: its signal says what
            continue
        df = bars_mod.load_frame(st, source, sym, tf, until=until, limit=LOOKBACK_BARS)
        if df.height >= F.WARMUP + 35:
            bar_ts, x = model.latest_features(df)
            latest.append([sym, bar_ts, None, x])
    todo = [r for r in latest if r[3] is not None]
    if todo:  # one predict for the symbols with a new bar
        for r, p in zip(todo, positive_proba(model.pipe, np.vstack([r[3] for r in todo]))):
            r[2] = float(p)
    for sym, bar_ts, p, x in latest:
        sid = f"model:{name}:{sym}:{iso(bar_ts)}"
        if p is None:  # (x is None too: a bar predicted on before)
            row = st.one("SELECT * FROM signals WHERE id = ?", [sid])
            rows.append({**row, "bar_ts": iso(bar_ts), "already_recorded": True})
            continue
        bar_close = bar_ts + timedelta(seconds=tf_s)
        stale = now - bar_close > timedelta(seconds=tf_s * s.ml.max_bar_age_bars)
        d = core.decide_model_entry(
            probability=p, min_probability=s.ml.min_probability, held=sym in held, pending=sym in pending,
            open_slots=s.risk.max_open_positions - len(held | pending), tradable=rt.tradable(sym, now), stale=stale)
        row = {
            "id": sid, "symbol": sym, "side": "buy", "source": "model", "strength": round(p, 6),
            "reason": f"{name}: P(up over {card['label']['horizon_bars']} bars) = {p:.3f}", "ref": name,
            "asset_class": rt.asset_class(sym), "created_at": iso(now), "status": d.status,
            "status_reason": d.reason, "size_method": None, "notional": None, "updated_at": iso(now),
        }
        with st.tx():
            new = st.insert_ignore("signals", [row])
        if not new:  # this bar was already predicted on: report what was recorded then
            row = st.one("SELECT * FROM signals WHERE id = ?", [sid])
        rows.append({**row, "bar_ts": iso(bar_ts), "already_recorded": not new})
        if not new:
            continue
        if d.status == "new":
            pending.add(sym)
            made.append(row)
        else:
            skipped += 1
    return {"model": name, "considered": len(rows), "signals": len(made), "skipped": skipped, "rows": rows}
