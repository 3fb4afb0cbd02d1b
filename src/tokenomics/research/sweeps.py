"""Sweeps through an executor: backtest cells (grids and search trials) and training grids.

On a local executor (inline, process pool) a backtest cell is `research.backtest.grid_job`: the
worker opens the store file, runs, saves its row. On a remote one (Ray) the workers may sit on
machines without that file, so the data goes by value: a snapshot of the store (its bytes, taken
once after the bars the window needs are stored), the resolved settings and the model files the
strategy reads travel once through Ray's object store; each worker writes them to a private temp
directory once and runs the very same `grid_job` there; the backtest row it saved comes back
and is saved in the main store here. Either way a cell gives the same row.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import shutil
import sqlite3
from pathlib import Path

from tokenomics.executors import scratch_dir
from tokenomics.research import backtest as replay


# --- backtest cells --------------------------------------------------------------------------
def jobs_for(rt, strategy: str, w: "replay.Window", combos: list[dict], curves: bool = False) -> list[dict]:
    return [{"config": rt.opts.config, "db": rt.db_path, "mode": rt.opts.mode, "strategy": strategy,
             "window": w.as_job(), "params": c, "curves": curves} for c in combos]


def prepare(rt, strategy: str, w: "replay.Window") -> None:
    """Store the sim bars the window needs, once, before any worker reads them (stored bars are there)."""
    from tokenomics.research import bars as bars_mod
    from tokenomics.research import ml

    if w.stored:
        return
    warmup = bars_mod.sim_steps_for(ml.LOOKBACK_BARS) if strategy == "model" else 0
    bars_mod.ensure_sim_bars(rt, w.first + 1 - warmup, w.last)


def run_cells(rt, executor, strategy: str, w: "replay.Window", combos: list[dict],
              snapshot: dict | None = None, tolerant: bool = False, curves: bool = False) -> list[dict]:
    """One row per combination (`{id, **params, **metrics}`), each saved in the backtests table.
    `tolerant`: a combination refused as bad usage (e.g. sma's fast >= slow) gives `{"error": msg}`
    instead of stopping the sweep."""
    prepare(rt, strategy, w)
    jobs = jobs_for(rt, strategy, w, combos, curves)
    if tolerant:
        jobs = [{**j, "tolerant": True} for j in jobs]
    if not getattr(executor, "remote", False):
        return executor.map(cell_job if tolerant else replay.grid_job, jobs)
    snap = snapshot or make_snapshot(rt, strategy, combos)
    out = executor.map(portable_job, jobs, shared=snap)
    rows = []
    for res in out:
        if "error" in res:
            rows.append(res)
            continue
        saved = {k: v for k, v in res["saved"].items() if k != "id"}
        with rt.store.tx():
            cols = ", ".join(f'"{k}"' for k in saved)
            cur = rt.store.execute(f"INSERT INTO backtests({cols}) VALUES ({', '.join('?' * len(saved))})",
                                   list(saved.values()))
        rows.append({**res["row"], "id": int(cur.lastrowid)})
    return rows


def cell_job(job: dict) -> dict:
    """`grid_job`, or `{"error": msg}` when the combination is refused as bad usage (tolerant jobs)."""
    from tokenomics.core.errors import UsageProblem

    try:
        return replay.grid_job(job)
    except UsageProblem as exc:
        if not job.get("tolerant"):
            raise
        return {"error": str(exc)}


def _files_of(folder: Path, prefix: str) -> dict[str, bytes]:
    return {f"{prefix}/{p.relative_to(folder).as_posix()}": p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def make_snapshot(rt, strategy: str, combos: list[dict]) -> dict:
    """What a worker on another machine needs to run `grid_job`: the store's bytes, the settings,
    and the model files the strategy reads. Keyed by its content, so a worker unpacks it once."""
    from tokenomics.research import ml

    s = rt.settings
    data: bytes = rt.store.conn.serialize()
    settings = json.loads(s.model_dump_json())
    files: dict[str, bytes] = {}
    if strategy == "model":
        names = {c.get("model") for c in combos if c.get("model")} or {s.ml.model}
        for name in sorted(names):
            files.update(_files_of(ml.model_path(s.ml.models_dir, name), f"models/{name}"))
        settings["ml"]["models_dir"] = "models"  # relative: resolved against the worker's directory
    if strategy == "sentiment" and s.sentiment.provider in ("offline", "offline-transformer"):
        from tokenomics.adapters.scorers.offline import MODEL_DIR

        files.update(_files_of(Path(s.sentiment.model_dir or MODEL_DIR), "scorer"))
        settings["sentiment"]["model_dir"] = "scorer"
    if strategy == "sentiment" and s.sentiment.provider == "offline-transformer":
        from tokenomics.adapters.scorers import transformer

        files.update(_files_of(Path(s.sentiment.transformer_dir or transformer.MODEL_DIR), "transformer"))
        settings["sentiment"]["transformer_dir"] = "transformer"
    digest = hashlib.sha256(data)
    digest.update(json.dumps(settings, sort_keys=True).encode())
    for k in sorted(files):
        digest.update(k.encode() + files[k])
    return {"key": digest.hexdigest()[:16], "store": data, "settings": settings, "files": files,
            "mode": rt.mode}


_HOMES: dict[str, Path] = {}  # this worker's unpacked snapshots


def unpack(snap: dict) -> Path:
    """The snapshot written to a private directory of this worker process (once per snapshot)."""
    import yaml

    home = _HOMES.get(snap["key"])
    if home is not None and (home / "store.db").exists():
        return home
    if not _HOMES:
        atexit.register(_remove_homes)
    home = scratch_dir(snap["key"])
    for rel, blob in snap["files"].items():
        (home / rel).parent.mkdir(parents=True, exist_ok=True)
        (home / rel).write_bytes(blob)
    settings = json.loads(json.dumps(snap["settings"]))
    for section, key in (("ml", "models_dir"), ("sentiment", "model_dir"), ("sentiment", "transformer_dir")):
        value = settings[section].get(key)
        if value and not Path(value).is_absolute() and (home / value).exists():
            settings[section][key] = str(home / value)
    settings["store"]["path"] = str(home / "store.db")
    settings["logs"]["dir"] = str(home / "logs")
    (home / "settings.yaml").write_text(yaml.safe_dump(settings, sort_keys=False))
    mem, dst = sqlite3.connect(":memory:"), sqlite3.connect(home / "store.tmp")
    try:
        image = bytearray(snap["store"])
        if len(image) >= 100 and image[18:20] == b"\x02\x02":
            image[18:20] = b"\x01\x01"  # a WAL-mode image: an in-memory database opens it as rollback
        mem.deserialize(bytes(image))
        mem.backup(dst)
    finally:
        mem.close()
        dst.close()
    os.replace(home / "store.tmp", home / "store.db")
    _HOMES[snap["key"]] = home
    return home


def _remove_homes() -> None:
    for home in _HOMES.values():
        shutil.rmtree(home, ignore_errors=True)
    _HOMES.clear()


def portable_job(job: dict, snap: dict) -> dict:
    """`grid_job` on this worker's copy of the store; returns its row and the backtests row it saved."""
    from tokenomics.store import Store

    home = unpack(snap)
    row = cell_job({**job, "config": home / "settings.yaml", "db": home / "store.db", "mode": snap["mode"]})
    if "error" in row:
        return row
    st = Store.open(home / "store.db")
    try:
        saved = st.one("SELECT * FROM backtests WHERE id = ?", [row["id"]])
    finally:
        st.close()
    return {"row": row, "saved": saved}


# --- training grids --------------------------------------------------------------------------
def train_cell(job: dict, shared: dict) -> dict:
    """Cross-validate one parameter combination on the shared dataset; the row of its mean metrics."""
    from tokenomics.research import ml

    a = shared["args"]
    folds = ml.cross_validate(shared["data"], classifier=a["classifier"], params=job["params"], cv=a["cv"],
                              folds=a["folds"], horizon=a["horizon"], embargo=a["embargo"],
                              min_probability=a["min_probability"], cost_rate=a["cost_rate"])
    mean = ml.mean_metrics(folds)
    trades = sum(f["trades"] for f in folds)
    return {**job["cell"], **mean, "folds": len(folds), "trades": trades}


def train_grid(executor, data: dict, combos: list[dict], base_params: dict, args: dict) -> list[dict]:
    """Every combination of classifier parameters, cross-validated on the same data (sent once)."""
    digest = hashlib.sha256(data["data_hash"].encode() + json.dumps(args, sort_keys=True).encode())
    shared = {"key": digest.hexdigest()[:16], "data": data, "args": args}
    jobs = [{"cell": c, "params": {**base_params, **c}} for c in combos]
    return executor.map(train_cell, jobs, shared=shared)
