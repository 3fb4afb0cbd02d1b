"""Average the weights of MiniLM runs that share their start (a "model soup"), export int8, and write a
run directory that scripts/compare_transformer_candidates.py compares like any other run.

    python scripts/average_transformer_runs.py RUN_DIR... --out SOUP_DIR [--threads N]

Each RUN_DIR was written by `train_transformer.py --keep-all --seed S --data-seed D --out RUN_DIR` with one
seed S (the classifier head starts from the same weights in every run; only the data order and dropout
differ), so the fine-tuned weights lie in one basin and their mean is one model: the same size and speed
as a single run, with the variance of a single fine-tuning run averaged away (Wortsman et al. 2022,
"Model soups"). The fp32 ONNX exports are averaged initializer by initializer (the graphs must be the
same: same names, shapes and dtypes, else this stops), then quantised to int8 as train_transformer.py does.
Writes SOUP_DIR/model.fp32.onnx, model.int8.onnx, tokenizer.json, valid_proba.npz (TFNS-valid
probabilities of fp32, int8 and the TF-IDF model) and model_card.json (the first run's card with the
members, and its TFNS-valid metrics replaced). Financial PhraseBank is never read here.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "scripts"))


def average(paths: list[Path], out: Path) -> None:
    import onnx
    from onnx import numpy_helper

    models = [onnx.load(str(p)) for p in paths]
    first = models[0]
    for p, m in zip(paths[1:], models[1:]):
        if [n.op_type for n in m.graph.node] != [n.op_type for n in first.graph.node]:
            raise SystemExit(f"{p}: not the same graph as {paths[0]}")
    tensors = [{t.name: numpy_helper.to_array(t) for t in m.graph.initializer} for m in models]
    for p, t in zip(paths[1:], tensors[1:]):
        if {k: (v.shape, v.dtype) for k, v in t.items()} != {k: (v.shape, v.dtype) for k, v in tensors[0].items()}:
            raise SystemExit(f"{p}: initializers differ from {paths[0]} (names, shapes or dtypes)")
    for init in first.graph.initializer:
        arrays = [t[init.name] for t in tensors]
        if arrays[0].dtype.kind == "f":
            mean = np.mean(np.stack(arrays), axis=0).astype(arrays[0].dtype)
        elif all(np.array_equal(a, arrays[0]) for a in arrays[1:]):
            mean = arrays[0]
        else:
            raise SystemExit(f"integer initializer {init.name} differs between runs")
        init.CopyFrom(numpy_helper.from_array(mean, init.name))
    onnx.save(first, str(out))


def main() -> None:
    from train_transformer import metrics

    from tokenomics.adapters.scorers import offline
    from tokenomics.adapters.scorers import transformer as tf

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "tfns")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    if len(args.runs) < 2:
        raise SystemExit("give two runs or more")
    cards = [json.loads((r / tf.CARD_FILE).read_text(encoding="utf-8")) for r in args.runs]
    starts = {c["hyperparameters"]["seed"] for c in cards}
    if len(starts) != 1:
        raise SystemExit(f"the runs start from different heads (--seed {sorted(starts)}); average runs of one --seed")
    recipes = {json.dumps({k: v for k, v in c["hyperparameters"].items() if k != "data_seed"}, sort_keys=True)
               for c in cards}
    if len(recipes) != 1:
        raise SystemExit("the runs were trained with different hyperparameters")

    args.out.mkdir(parents=True, exist_ok=True)
    fp32, int8 = args.out / "model.fp32.onnx", args.out / "model.int8.onnx"
    average([r / "model.fp32.onnx" for r in args.runs], fp32)
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
    shutil.copy(args.runs[0] / tf.TOKENIZER_FILE, args.out / tf.TOKENIZER_FILE)

    _, valid = offline.tfns_splits(args.data)
    x_valid, y_valid = offline.load_tfns(valid)
    probs = {}
    for name, path in (("fp32", fp32), ("int8", int8)):
        probs[name] = tf.OnnxModel(args.out, threads=args.threads, onnx_path=path).predict_proba(x_valid)
        print(f"soup {name}: TFNS-valid accuracy {np.mean(probs[name].argmax(1) == y_valid):.4f}", file=sys.stderr)
    p_tfidf = offline.OfflineScorer().predict_proba(x_valid)
    np.savez(args.out / "valid_proba.npz", fp32=probs["fp32"], int8=probs["int8"], tfidf=p_tfidf, labels=y_valid)

    seeds = [c["hyperparameters"].get("data_seed", c["hyperparameters"]["seed"]) for c in cards]
    card = json.loads(json.dumps(cards[0]))
    card["model"] = card["model"].replace("fine-tuned end to end", "fine-tuned end to end "
                                          f"{len(cards)} times (data seeds {seeds}), "
                                          "the runs' weights averaged")
    card["hyperparameters"].pop("data_seed", None)
    card["soup"] = {"members": [r.name for r in args.runs],
                    "data_seeds": seeds,
                    "rule": "the fp32 weights averaged (scripts/average_transformer_runs.py), then int8",
                    "member_tfns_valid": {r.name: {"fp32": c["metrics"]["tfns_valid"]["minilm_fp32"]["accuracy"],
                                                   "int8": c["metrics"]["tfns_valid"]["minilm_int8"]["accuracy"]}
                                          for r, c in zip(args.runs, cards)},
                    "train_seconds": round(sum(c["train_seconds"] for c in cards), 1)}
    card["metrics"] = {"tfns_valid": {"minilm_fp32": metrics(y_valid, probs["fp32"].argmax(1), offline.LABELS),
                                      "minilm_int8": metrics(y_valid, probs["int8"].argmax(1), offline.LABELS),
                                      "tfidf_alone": metrics(y_valid, p_tfidf.argmax(1), offline.LABELS)}}
    card["onnx"]["fp32_mb"] = round(fp32.stat().st_size / 1e6, 1)
    card["onnx"]["int8_mb"] = round(int8.stat().st_size / 1e6, 1)
    card["onnx"].pop("fp32_vs_torch_max_abs_diff", None)
    card["created_at"] = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    (args.out / tf.CARD_FILE).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(card["soup"], indent=2))


if __name__ == "__main__":
    main()
