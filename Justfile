# tokenomics recipes. `just` itself comes with the dev extras (the rust-just package).

set dotenv-load := false

# Create a virtualenv and install tokenomics with every extra and the test tools.
setup:
    python3 -m venv .venv
    .venv/bin/python -m pip install --upgrade pip
    .venv/bin/python -m pip install -e ".[dev]"

# Run the test suite (the same command CI runs).
test:
    python -m pytest -n 2

# The demo: 200 sim ticks of the whole loop (no keys, no network), then the account.
demo ticks="200":
    tokenomics run --loop --ticks {{ticks}}
    tokenomics status

# Trade forever on the configured mode; Ctrl-C finishes the current step and exits cleanly.
loop:
    tokenomics run --loop

# The model strategy forever: the shipped (or ml.model) price model's signals each tick instead of the news chain.
loop-model:
    tokenomics run --loop --strategy model

# Backtest the three strategies on the sim history (no keys, no network); HTML reports in reports/.
backtests steps="200":
    tokenomics backtest --strategy sentiment --steps {{steps}} --report reports/backtest-sentiment.html
    tokenomics backtest --strategy model --steps {{steps}} --report reports/backtest-model.html
    tokenomics backtest --strategy sma --steps {{steps}} --grid symbol=BTC/USD --report reports/backtest-sma.html

# One tick of the chain, for cron: */5 * * * * cd /path/to/tokenomics && just cron
cron:
    mkdir -p logs
    tokenomics run --once --json >> logs/cron.jsonl

# The same chain as separate commands (what `run --once` does), e.g. to insert your own step.
# (In sim mode time moves only when `run` ticks: use `just sim-chain`.)
chain:
    tokenomics fetch-news --json
    just chain-rest

# Rebuild the offline sentiment model from the TFNS training data.
train-scorer:
    python scripts/train_scorer.py

# Rebuild the offline-transformer scorer's model as shipped (dev-time: torch etc. in a venv of its own,
# ../tfm-venv by default; see the scripts' docstrings): three fine-tuning runs on TFNS and the formal
# news set (data seeds 0-2) in RUNS, their weights averaged, the blend chosen on the two development
# sets, written to trained_models/sentiment-minilm. About 15-20 minutes on 2 CPU threads.
train-transformer venv="../tfm-venv" runs="../tfm-runs":
    for d in 0 1 2; do PYTHONPATH=src nice -n 10 {{venv}}/bin/python scripts/train_transformer.py --keep-all \
        --data-seed $d --extra-train scripts/data/formal_news_train.csv --out {{runs}}/f2s0d$d > /dev/null || exit 1; done
    PYTHONPATH=src {{venv}}/bin/python scripts/average_transformer_runs.py {{runs}}/f2s0d0 {{runs}}/f2s0d1 {{runs}}/f2s0d2 --out {{runs}}/soup
    {{venv}}/bin/python scripts/compare_transformer_candidates.py {{runs}}/f2s0d0 {{runs}}/f2s0d1 {{runs}}/f2s0d2 {{runs}}/soup \
        --write-pick trained_models/sentiment-minilm

# Print the benchmarks' figures.
bench:
    python benchmarks/startup.py
    python benchmarks/scorer_phrasebank.py
    python benchmarks/features.py
    python benchmarks/train.py
    python benchmarks/backtest_sma.py
    python benchmarks/backtest_grid.py
    python benchmarks/sweeps.py
    python benchmarks/gemini_cost.py

# Sim mode: the chain as separate commands, moving the sim clock one step first.
sim-chain:
    tokenomics fetch-news --advance 1 --json
    just chain-rest

[private]
chain-rest:
    tokenomics score --json
    tokenomics signal --json
    tokenomics size --json
    tokenomics trade --json
    tokenomics check-exits --json

# Rebuild the shipped example price model (trained_models/sim-example) on another seed of the sim market,
# so it is out of sample on the default world (seed 7).
train-sim-example:
    rm -f data/sim-example.db
    TOKENOMICS_SIM__SEED=11 TOKENOMICS_SIM__HISTORY_STEPS=6000 tokenomics --db data/sim-example.db fetch-bars --source sim --json > /dev/null
    TOKENOMICS_SIM__SEED=11 TOKENOMICS_SIM__HISTORY_STEPS=6000 tokenomics --db data/sim-example.db train --name sim-example --force --json
