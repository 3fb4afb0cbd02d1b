"""Issue 14: the command-line contract under bad input. Nothing destroyed, no traceback, no silent
default. Every test runs the real CLI in a subprocess in a temp directory."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

SMALL = ["--param", "n_estimators=5", "--param", "max_depth=2", "--param", "n_jobs=1", "--folds", "2"]


def store_dump(path: Path) -> list[str]:
    """The store's logical content (schema and rows), independent of WAL files and page layout."""
    conn = sqlite3.connect(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def one_error_line(proc, code: int, *needles: str) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    return errors[0]


# --- critical: train --name never escapes ml.models_dir, never deletes what it did not write ------------
@pytest.mark.parametrize("name", ["..", "", ".", "../../x", "a/b", "/tmp/x", "x/../..", ".hidden", "a" * 65])
def test_train_refuses_a_name_that_is_not_a_plain_folder_name(cli, name):
    (cli.cwd / "precious.txt").write_text("mine")
    (cli.cwd / "config").mkdir()
    (cli.cwd / "config" / "settings.yaml").write_text("capital: 5000\n")
    models = cli.cwd / "trained_models" / "keep"
    models.mkdir(parents=True)
    (models / "model_card.json").write_text('{"kind": "classifier", "name": "keep"}')
    before = sorted(str(p.relative_to(cli.cwd)) for p in cli.cwd.rglob("*"))
    proc = cli("train", "--name", name, "--force")
    one_error_line(proc, 2, "not a model name", "letters, digits")
    assert sorted(str(p.relative_to(cli.cwd)) for p in cli.cwd.rglob("*")) == before
    assert (cli.cwd / "precious.txt").read_text() == "mine"


def test_train_never_replaces_a_folder_it_did_not_write(cli):
    assert cli("fetch-bars", "--source", "sim", "--json").returncode == 0
    foreign = cli.cwd / "trained_models" / "notes"
    foreign.mkdir(parents=True)
    (foreign / "todo.txt").write_text("mine")
    proc = cli("train", "--name", "notes", *SMALL)
    one_error_line(proc, 2, "already exists", "--force")
    proc = cli("train", "--name", "notes", "--force", *SMALL)
    one_error_line(proc, 2, "is not a tokenomics model")
    assert (foreign / "todo.txt").read_text() == "mine"


def test_train_force_swaps_in_a_new_model_and_leaves_no_temp_folder(cli):
    assert cli("fetch-bars", "--source", "sim", "--json").returncode == 0
    first = cli.json("train", "--name", "m", *SMALL)
    card = cli.cwd / "trained_models" / "m" / "model_card.json"
    assert json.loads(card.read_text())["params"]["max_depth"] == 2
    proc = cli("train", "--name", "m", *SMALL)
    one_error_line(proc, 2, "already exists")
    second = cli.json("train", "--name", "m", "--force", *SMALL[:2], "--param", "max_depth=3", "--param",
                      "n_jobs=1", "--folds", "2")
    assert second["name"] == first["name"] == "m"
    assert json.loads(card.read_text())["params"]["max_depth"] == 3
    assert sorted(p.name for p in (cli.cwd / "trained_models").iterdir()) == ["m"]


def test_train_bad_param_exits_2_before_any_work(cli):
    assert cli("fetch-bars", "--source", "sim", "--json").returncode == 0
    proc = cli("train", "--name", "m", "--param", "n_estimators=abc")
    one_error_line(proc, 2, "n_estimators", "abc")
    assert not (cli.cwd / "trained_models").exists()


# --- silent defaults and contradictions ---------------------------------------------------------------
@pytest.mark.parametrize("yaml_text,needles", [
    ("riks:\n  max_open_positions: 1\n", ["riks", "unknown key"]),
    ("captial: 5000\n", ["captial", "unknown key"]),
    ("risk:\n  timezone: Mars/Olympus\n", ["risk.timezone", "time zone"]),
    ("capital: .inf\n", ["capital", "finite"]),
    ("risk:\n  max_position_pct: .nan\n", ["risk.max_position_pct", "finite"]),
    ("universe:\n  equities: []\n  crypto: []\n", ["universe", "empty"]),
])
def test_config_problems_exit_2_naming_the_key_in_every_command(cli, yaml_text, needles):
    cfg = cli.cwd / "bad.yaml"
    cfg.write_text(yaml_text)
    for cmd in (["doctor"], ["status"], ["run", "--once"]):
        one_error_line(cli("--config", str(cfg), *cmd), 2, *needles)
    assert not (cli.cwd / "store.db").exists()


@pytest.mark.parametrize("env,needles", [
    ({"TOKENOMICS_UNIVERSE__EQUITIES": "AAPL"}, ["TOKENOMICS_UNIVERSE__EQUITIES", "JSON"]),
    ({"TOKENOMICS_RIKS__MAX_OPEN_POSITIONS": "1"}, ["TOKENOMICS_RIKS__MAX_OPEN_POSITIONS", "unknown setting"]),
    ({"TOKENOMICS_RISK__MAX_OPEN_POSITONS": "1"}, ["TOKENOMICS_RISK__MAX_OPEN_POSITONS", "unknown setting"]),
    ({"TOKENOMICS_CAPITAL": "inf"}, ["capital", "finite"]),
])
def test_environment_problems_exit_2_naming_the_variable(cli, env, needles):
    one_error_line(cli("status", env=env), 2, *needles)


def test_a_json_list_in_the_environment_works(cli):
    doc = cli.json("doctor", env={"TOKENOMICS_UNIVERSE__EQUITIES": '["AAPL"]'})
    assert [c for c in doc["checks"] if c["check"] == "universe"][0]["detail"] == "AAPL, BTC/USD, ETH/USD"


def test_config_that_is_binary_or_a_folder_exits_2(cli):
    (cli.cwd / "bin.yaml").write_bytes(bytes(range(256)) * 4)
    one_error_line(cli("--config", "bin.yaml", "status"), 2, "bin.yaml", "UTF-8")
    (cli.cwd / "cfgdir").mkdir()
    one_error_line(cli("--config", "cfgdir", "status"), 2, "cfgdir", "folder")


@pytest.mark.parametrize("yaml_text,args,needles", [
    ("", ["--live", "status"], ["--live", "mode sim"]),
    ("", ["--mode", "paper", "--live", "status"], ["--live", "mode paper"]),
    ("mode: paper\nbroker:\n  provider: alpaca\n", ["--live", "run", "--once"], ["--live", "mode paper"]),
    ("trading:\n  paper: false\n", ["--mode", "paper", "status"], ["trading.paper: false", "mode paper"]),
    ("trading:\n  paper: false\n", ["status"], ["trading.paper: false", "mode sim"]),
])
def test_contradictory_mode_settings_exit_2_naming_both(cli, yaml_text, args, needles):
    cfg = cli.cwd / "c.yaml"
    cfg.write_text(yaml_text)
    # keys pointing at a closed port: any connection attempt would fail differently (exit 1, not 2)
    env = {"ALPACA_API_KEY": "k", "ALPACA_SECRET_KEY": "s", "TOKENOMICS_BROKER__TRADING_URL": "http://127.0.0.1:9"}
    one_error_line(cli("--config", str(cfg), *args, env=env), 2, *needles)


# --- the store: never created by accident, never someone else's file --------------------------------
def test_db_in_a_missing_folder_is_refused_and_nothing_is_created(cli):
    one_error_line(cli("--db", "nodir/sub/x.db", "status"), 2, "nodir/sub", "does not exist", "init")
    assert not (cli.cwd / "nodir").exists()
    one_error_line(cli("status", env={"TOKENOMICS_STORE__PATH": str(cli.cwd / "typo" / "s.db")}), 2, "typo")
    assert not (cli.cwd / "typo").exists()


def test_init_creates_the_folder_and_puts_everything_under_dir(cli):
    del cli.env["TOKENOMICS_STORE__PATH"], cli.env["TOKENOMICS_LOGS__DIR"]  # the defaults: data/, logs/
    doc = cli.json("init", "--dir", "proj")
    root = cli.cwd / "proj"
    assert (root / "config" / "settings.yaml").exists() and (root / ".env.example").exists()
    assert (cli.cwd / doc["store"]).resolve() == (root / "data" / "tokenomics.db").resolve()
    assert (root / "data" / "tokenomics.db").exists()
    assert (root / "logs" / "app.log").exists()
    assert sorted(p.name for p in cli.cwd.iterdir()) == ["proj"]
    (cli.cwd / "afile").write_text("x")
    one_error_line(cli("init", "--dir", "afile"), 2, "afile", "is a file")
    assert (cli.cwd / "afile").read_text() == "x"


def test_a_foreign_sqlite_file_is_refused_untouched(cli):
    for name, tables in (("other.db", ["CREATE TABLE meta (a, b)", "INSERT INTO meta VALUES (1, 2)"]),
                         ("app.db", ["CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)"])):
        conn = sqlite3.connect(cli.cwd / name)
        for sql in tables:
            conn.execute(sql)
        conn.commit()
        conn.close()
        before = (cli.cwd / name).read_bytes()
        for cmd in (["status"], ["run", "--once"], ["doctor"]):
            one_error_line(cli("--db", name, *cmd), 2, name, "not a tokenomics store")
        assert (cli.cwd / name).read_bytes() == before
    (cli.cwd / "notes.db").write_text("just text, not SQLite\n" * 20)
    one_error_line(cli("--db", "notes.db", "status"), 2, "notes.db", "not a SQLite file")


# --- storage faults: one line naming the store, exit 1; status and doctor say it -----------------------
def _namespace_mounts_work() -> bool:
    import shutil
    import subprocess

    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt"],
                          capture_output=True).returncode == 0


needs_mounts = pytest.mark.skipif(not _namespace_mounts_work(), reason="needs unshare -m and mount (root)")


def _in_mount_namespace(cli, script: str) -> dict[str, tuple[int, str, str]]:
    """Run `script` (sh) in a private mount namespace; each `step NAME args...` runs the CLI and records
    (exit code, stdout, stderr) under NAME."""
    import shlex
    import subprocess
    import sys

    out = cli.cwd / "out"
    out.mkdir()
    prelude = (f'step() {{ n=$1; shift; {shlex.quote(sys.executable)} -m tokenomics.cli "$@" '
               f'>{out}/$n.out 2>{out}/$n.err; echo $? >{out}/$n.rc; }}\n')
    proc = subprocess.run(["unshare", "-m", "sh", "-c", prelude + script], cwd=cli.cwd, env=cli.env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return {p.stem: (int(p.read_text()), (out / f"{p.stem}.out").read_text(), (out / f"{p.stem}.err").read_text())
            for p in out.glob("*.rc")}


class _Proc:
    def __init__(self, rc, stdout, stderr):
        self.returncode, self.stdout, self.stderr = rc, stdout, stderr


@needs_mounts
def test_a_full_disk_is_one_line_naming_the_store_and_the_store_recovers(cli):
    res = _in_mount_namespace(cli, """
mkdir d && mount -t tmpfs -o size=3m tmpfs d
step init --db d/s.db init --json
dd if=/dev/zero of=d/filler bs=4k count=700 2>/dev/null || true
step loop --db d/s.db run --loop --ticks 400 --interval 0 --json
dd if=/dev/zero of=d/filler2 bs=4k 2>/dev/null || true
step status --db d/s.db status --json
step doctor --db d/s.db doctor --json
rm d/filler d/filler2
step again --db d/s.db run --loop --ticks 2 --interval 0 --json
""")
    assert res["init"][0] == 0, res["init"]
    one_error_line(_Proc(*res["loop"]), 1, "d/s.db", "disk is full", "free some space")
    assert json.loads(res["status"][1])["store"]["writable"] is False and "not writable" in res["status"][2]
    doctor = json.loads(res["doctor"][1])
    assert not doctor["ok"] and "disk is full" in [c for c in doctor["checks"] if c["check"] == "store writable"][0]["detail"]
    assert res["again"][0] == 0 and json.loads(res["again"][1])["ticks"] == 2


@needs_mounts
def test_a_read_only_store_is_one_line_and_status_says_so(cli):
    res = _in_mount_namespace(cli, """
mkdir d
step init --db d/s.db init --json
mount --bind d d && mount -o remount,ro,bind d
step run --db d/s.db run --once --json
step loop --db d/s.db run --loop --ticks 3 --interval 0 --json
step status --db d/s.db status --json
step doctor --db d/s.db doctor --json
""")
    for name in ("run", "loop"):
        one_error_line(_Proc(*res[name]), 1, "d/s.db", "read-only")
    status = json.loads(res["status"][1])
    assert res["status"][0] == 0 and status["store"]["writable"] is False and status["cash"] == 10000
    doctor = json.loads(res["doctor"][1])
    assert res["doctor"][0] == 1 and "read-only" in [c for c in doctor["checks"]
                                                      if c["check"] == "store writable"][0]["detail"]


# --- the corpus: the 21 tracebacks, each one line, the right exit code, the store untouched ------
def _sha(path: Path) -> str:
    """The store's bytes once every connection is closed (a write would have reached the main file)."""
    import hashlib

    h = hashlib.sha256()
    for p in (path, path.with_name(path.name + "-wal")):
        if p.exists():
            h.update(p.read_bytes())
    return h.hexdigest()


def _bad_files(d: Path) -> None:
    (d / "tz.yaml").write_text("risk:\n  timezone: Mars/Olympus\n")
    (d / "inf.yaml").write_text("capital: .inf\n")
    (d / "bin.yaml").write_bytes(bytes(range(256)) * 4)
    (d / "cfgdir").mkdir()
    (d / "empty.yaml").write_text("universe:\n  equities: []\n  crypto: []\n")
    conn = sqlite3.connect(d / "other.db")
    conn.execute("CREATE TABLE meta (key TEXT, value TEXT)")
    conn.execute("INSERT INTO meta VALUES ('schema_version', '3')")
    conn.commit()
    conn.close()
    header = "Date,Open,High,Low,Close,Volume\n"
    (d / "text.csv").write_text(header + "2024-03-01 15:00:00,10,11,9,ten,100\n")
    (d / "when.csv").write_text(header + "the ides of March,10,11,9,10,100\n")
    (d / "afile").write_text("not a folder")


ARTICLE = {"id": "corpus:1", "headline": "Bitcoin surges to a record on ETF inflows", "summary": "",
           "symbols": ["BTC/USD"], "created_at": "2026-01-05T15:00:00Z"}

# (case, args, stdin, env, exit code, needles in the error line); the store must be unchanged by each
CORPUS = [
    ("train --param n_estimators=abc", ["train", "--name", "m", "--param", "n_estimators=abc"], None, {}, 2,
     ["n_estimators", "abc"]),  # first: scikit-learn is the slowest import
    ("config: time zone", ["--config", "tz.yaml", "status"], None, {}, 2, ["risk.timezone", "Mars/Olympus"]),
    ("config: .inf", ["--config", "inf.yaml", "status"], None, {}, 2, ["capital", "finite"]),
    ("config: binary YAML", ["--config", "bin.yaml", "status"], None, {}, 2, ["bin.yaml", "UTF-8"]),
    ("config: --config a folder", ["--config", "cfgdir", "status"], None, {}, 2, ["cfgdir", "folder"]),
    ("config: a plain list in the environment", ["status"], None, {"TOKENOMICS_UNIVERSE__EQUITIES": "AAPL"}, 2,
     ["TOKENOMICS_UNIVERSE__EQUITIES", "JSON"]),
    ("config: empty universe", ["--config", "empty.yaml", "run", "--once"], None, {}, 2, ["universe", "empty"]),
    ("store: a foreign SQLite file with a meta table", ["--db", "other.db", "run", "--once"], None, {}, 2,
     ["other.db", "not a tokenomics store"]),
    ("score -: created_at yesterday", ["score", "-"], json.dumps({**ARTICLE, "created_at": "yesterday"}), {}, 2,
     ["line 1", "created_at", "yesterday"]),
    ("score -: created_at an epoch number", ["score", "-"], json.dumps({**ARTICLE, "created_at": 1767625200}), {},
     2, ["line 1", "created_at", "1767625200"]),
    ("score -: symbols 5", ["score", "-"], json.dumps({**ARTICLE, "symbols": 5}), {}, 2, ["line 1", "symbols"]),
    ("score -: non-UTF-8 bytes", ["score", "-"], b'{"id": "x", "headline": "caf\xe9 \xff"}\n', {}, 2,
     ["line 1", "UTF-8"]),
    ("fetch-bars: text in a price column", ["fetch-bars", "--source", "file", "--file", "text.csv", "-s", "X",
     "-t", "1h"], None, {}, 2, ["text.csv", "line 2", "close 'ten' is not a number"]),
    ("fetch-bars: an unparseable timestamp", ["fetch-bars", "--source", "file", "--file", "when.csv", "-s", "X",
     "-t", "1h"], None, {}, 2, ["when.csv", "line 2", "'the ides of March' is not a date/time"]),
    ("train --name ..", ["train", "--name", "..", "--force"], None, {}, 2, ["'..'", "not a model name"]),
    ("train --name ''", ["train", "--name", "", "--force"], None, {}, 2, ["''", "not a model name"]),
    ("backtest --grid fast=a,b", ["backtest", "--strategy", "sma", "--grid", "fast=a,b"], None, {}, 2,
     ["--grid", "fast=a", "fast must be a whole number"]),
    ("backtest --report to an unwritable path", ["backtest", "--report", "afile/report.html"], None, {}, 2,
     ["--report", "afile/report.html", "cannot write", "afile is a file"]),
    ("rebalance --plot to an unwritable path", ["rebalance", "--plot", "afile/weights.png"], None, {}, 2,
     ["--plot", "afile/weights.png", "cannot write", "afile is a file"]),
    ("init --dir a file", ["init", "--dir", "afile"], None, {}, 2, ["afile", "is a file"]),
]


def test_the_bad_input_corpus_is_one_line_each_with_the_right_exit_code_and_the_store_untouched(cli, tmp_path):
    """The issue's 21 tracebacks (the read-only store, the 21st, needs a mount namespace: below) through the
    real CLI, three at a time: no traceback, exactly one `error:` line naming the input and the rule, exit 2,
    and the store's bytes unchanged (one store seeded with bars, copied per case)."""
    import shutil
    import subprocess
    import sys
    from concurrent.futures import ThreadPoolExecutor

    seed = tmp_path / "seed"
    seed.mkdir()
    assert cli.json("init", "--db", str(seed / "store.db"))["store"]

    def run(i_case):
        i, (case, args, stdin, env, _, _) = i_case
        d = tmp_path / f"case{i}"
        d.mkdir()
        _bad_files(d)
        shutil.copy(seed / "store.db", d / "store.db")
        before = {p.name: _sha(p) for p in (d / "store.db", d / "other.db")}
        proc = subprocess.run([sys.executable, "-m", "tokenomics.cli", *args], cwd=d, capture_output=True,
                              input=stdin.encode() if isinstance(stdin, str) else stdin, timeout=120,
                              env={**cli.env, "TOKENOMICS_STORE__PATH": str(d / "store.db"),
                                   "TOKENOMICS_LOGS__DIR": str(d / "logs"), **env})
        after = {p.name: _sha(p) for p in (d / "store.db", d / "other.db")}
        return proc.returncode, proc.stderr.decode(errors="replace"), before == after

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(run, enumerate(CORPUS)))
    problems = []
    for (case, args, _, _, code, needles), (rc, stderr, unchanged) in zip(CORPUS, results):
        errors = [line for line in stderr.splitlines() if line.startswith("error:")]
        if "Traceback" in stderr or rc != code or len(errors) != 1 or not unchanged or \
                any(n not in errors[0] for n in needles):
            problems.append(f"{case}: exit {rc}, store unchanged {unchanged}, stderr:\n{stderr}")
    assert not problems, "\n\n".join(problems)


@needs_mounts
def test_a_read_only_store_under_run_is_one_line_exit_1_and_unchanged(cli):
    """The corpus's 21st case: a read-only store under `run`."""
    (cli.cwd / "d").mkdir()
    cli.json("init", "--db", "d/s.db")
    before = _sha(cli.cwd / "d" / "s.db")
    res = _in_mount_namespace(cli, """
mount --bind d d && mount -o remount,ro,bind d
step run --db d/s.db run --once
""")
    one_error_line(_Proc(*res["run"]), 1, "d/s.db", "read-only")
    assert _sha(cli.cwd / "d" / "s.db") == before


# --- consistency: train refuses folds too small to mean anything --------------------------------------
def test_train_refuses_too_little_data_for_its_folds_naming_the_minimum(cli):
    assert cli("fetch-bars", "--source", "sim", "--json").returncode == 0  # 500 hourly bars
    proc = cli("train", "--name", "m", "--folds", "20", "--param", "n_jobs=1")
    line = one_error_line(proc, 2, "too little data", "--folds 20", "at least 50 bars per fold")
    assert "bars" in line and "need" in line
    assert not (cli.cwd / "trained_models").exists()
    grid = cli("train", "--grid", "max_depth=2,3", "--folds", "20", "--workers", "0")
    one_error_line(grid, 2, "too little data", "--folds 20")


# --- bad data must not become trades: future-dated articles, huge articles -----------------------------
FUTURE = {"id": "f1", "headline": "Bitcoin soars to a record high as ETF inflows surge", "summary": "",
          "symbols": ["BTC/USD"], "created_at": "2030-01-01T00:00:00Z"}


def test_a_future_dated_article_is_rejected_at_every_entry_point_and_never_traded(cli):
    proc = cli("score", "-", "--json", input=json.dumps(FUTURE) + "\n")
    assert proc.returncode == 0 and json.loads(proc.stdout)["articles"] == 0
    assert "dated after now" in proc.stderr and "f1" in proc.stderr
    (cli.cwd / "news.jsonl").write_text(json.dumps({**FUTURE, "id": "f2"}) + "\n")
    (cli.cwd / "c.yaml").write_text("news:\n  provider: file\n  file: news.jsonl\n")
    fetched = cli("--config", "c.yaml", "fetch-news", "--json")
    assert fetched.returncode == 0 and json.loads(fetched.stdout)["new"] == 0 and "dated after now" in fetched.stderr
    assert cli("--config", "c.yaml", "run", "--once", "--json").returncode == 0
    conn = sqlite3.connect(cli.cwd / "store.db")
    try:
        assert conn.execute("SELECT COUNT(*) FROM articles WHERE id LIKE '%f1' OR id LIKE '%f2'").fetchone()[0] == 0
        assert conn.execute("SELECT COUNT(*) FROM orders").fetchone()[0] == 0
    finally:
        conn.close()


def test_a_huge_article_is_cut_with_a_marker_quickly_and_never_logged_whole(cli):
    import time

    big = {"id": "big", "headline": "Bitcoin soars " + "A" * 5_000_000, "summary": "B" * 6_000_000,
           "symbols": ["BTC/USD"], "created_at": "2026-01-05T15:00:00Z"}
    t0 = time.monotonic()
    proc = cli("score", "-", "--json", input=json.dumps(big) + "\n")
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - t0 < 20 and "truncated 1 article" in proc.stderr
    conn = sqlite3.connect(cli.cwd / "store.db")
    try:
        headline, summary = conn.execute("SELECT headline, summary FROM articles").fetchone()
    finally:
        conn.close()
    assert len(headline) == 500 and headline.endswith("…[truncated]") and len(summary) == 5000
    for log in (cli.cwd / "logs").glob("*.log"):
        assert "A" * 1000 not in log.read_text() and "B" * 1000 not in log.read_text(), log.name
    assert len(proc.stdout) < 20_000


def test_every_command_under_a_bad_config_is_one_line_exit_2_and_the_store_untouched(cli):
    """The corpus over every command: a binary YAML config (a bad option is one parse path for all: test_contract)."""
    import subprocess
    import sys
    from concurrent.futures import ThreadPoolExecutor

    from tokenomics.cli import COMMANDS

    cli.json("init")
    (cli.cwd / "bin.yaml").write_bytes(bytes(range(256)) * 4)
    before = _sha(cli.cwd / "store.db")
    needed = {"run": ["--once"], "explain": ["BTC/USD"], "optimize": ["--param", "fast=5..10"]}  # else a usage error
    cases = [(name, ["--config", "bin.yaml", name, *needed.get(name, [])], ["bin.yaml", "UTF-8"]) for name in COMMANDS]

    def run(case):
        name, args, needles = case
        proc = subprocess.run([sys.executable, "-m", "tokenomics.cli", *args], cwd=cli.cwd, env=cli.env,
                              capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
        ok = (proc.returncode == 2 and "Traceback" not in proc.stderr and len(errors) == 1
              and all(n in errors[0] for n in needles))
        return None if ok else f"{' '.join(args)}: exit {proc.returncode}\n{proc.stderr}"

    with ThreadPoolExecutor(3) as pool:
        problems = [p for p in pool.map(run, cases) if p]
    assert not problems, "\n".join(problems)
    assert _sha(cli.cwd / "store.db") == before
