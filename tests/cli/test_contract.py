"""The CLI contract: fast --help, JSON on stdout, exit codes, config errors that name the key."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

HEAVY = ("sklearn", "pandas", "numpy", "polars", "sqlite_utils", "alpaca", "google.genai", "ccxt", "skfolio",
         "exchange_calendars", "joblib", "optuna", "ray", "sqlalchemy", "onnxruntime", "tokenizers")


def test_help_imports_no_heavy_library():
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "tokenomics.cli", "--help"],
                          capture_output=True, text=True)
    assert proc.returncode == 0
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    heavy = sorted(m for m in imported if m.split(".")[0] in {h.split(".")[0] for h in HEAVY}
                   and (m.split(".")[0] != "google" or m.startswith("google.genai")))
    assert heavy == []
    assert "fetch-news" in proc.stdout and "check-exits" in proc.stdout


def test_every_command_explains_itself_in_its_help():
    from typer.testing import CliRunner

    from tokenomics.cli import COMMANDS, app

    for name in COMMANDS:
        out = CliRunner().invoke(app, [name, "--help"], env={"COLUMNS": "200"})
        assert out.exit_code == 0, (name, out.output)
        assert "Usage: " in out.output and name in out.output
        assert "completion" not in out.output, name  # completion is the top-level command's option only


def test_help_is_also_h_lists_the_global_options_and_shows_no_bool_metavars():
    """`-h` is `--help` everywhere; a subcommand's help names the global options too; a flag takes no
    value, so its help shows none (no `<bool>`)."""
    from tokenomics.cli import COMMANDS

    for args in (["-h"], ["run", "-h"], ["-h", "status"], ["fetch-bars", "--help"], ["risk", "resume", "-h"]):
        proc = subprocess.run([sys.executable, "-m", "tokenomics.cli", *args], capture_output=True, text=True,
                              env={**os.environ, "COLUMNS": "200"})
        assert proc.returncode == 0, (args, proc.stderr)
        assert "Usage: tokenomics" in proc.stdout and "-h, --help" in proc.stdout, (args, proc.stdout)
        assert "<bool>" not in proc.stdout, (args, proc.stdout)
        if args != ["-h"]:
            for option in ("--config", "--db", "--json", "--jsonl", "--mode", "--live", "--verbose"):
                assert option in proc.stdout, (args, option)
    run_help = subprocess.run([sys.executable, "-m", "tokenomics.cli", "run", "-h"], capture_output=True,
                              text=True, env={**os.environ, "COLUMNS": "200"}).stdout
    once = [line.split()[:2] for line in run_help.splitlines() if line.strip().startswith("--once")]
    assert once == [["--once", "One"]]
    assert len(COMMANDS) > 10


def test_global_options_work_after_the_command(cli):
    doc = cli.json("status")  # --json appended after the command name
    assert doc["mode"] == "sim" and doc["cash"] == 10000


@pytest.mark.parametrize("args,needle", [
    (["run"], "--once or --loop"),
    (["--mode", "bogus", "status"], "--mode"),
    (["score", "nonsense"], "'-'"),
    (["no-such-command"], "No such command"),
    (["run", "--once", "--ticks", "0"], "--ticks"),
])
def test_bad_arguments_exit_2_with_a_message(cli, args, needle):
    proc = cli(*args)
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr
    assert proc.stdout == ""


@pytest.mark.parametrize("yaml_text,needle", [
    ("risk:\n  max_open_positions: 0\n", "risk.max_open_positions"),
    ("sizing:\n  min_usd: 2000\n  max_usd: 1000\n", "min_usd"),
    ("exits:\n  stop_los_pct: 2\n", "exits.stop_los_pct: unknown key"),
    ("mode: sim\nbroker:\n  slippage_bps: lots\n", "broker.slippage_bps"),
    ("- just\n- a list\n", "mapping"),
    ("alpaca:\n  api_key: abc\n", "secrets"),
])
def test_bad_config_exits_2_naming_the_key(cli, yaml_text, needle):
    cfg = cli.cwd / "bad.yaml"
    cfg.write_text(yaml_text)
    proc = cli("--config", str(cfg), "status")
    assert proc.returncode == 2
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_environment_override_exits_2(cli):
    proc = cli("status", env={"TOKENOMICS_RISK__MAX_OPEN_POSITIONS": "many"})
    assert proc.returncode == 2 and "risk.max_open_positions" in proc.stderr


def test_environment_overrides_yaml(cli):
    doc = cli.json("status", env={"TOKENOMICS_CAPITAL": "2500"})
    assert doc["cash"] == 2500


def test_missing_config_file_exits_2(cli):
    proc = cli("--config", "nope.yaml", "status")
    assert proc.returncode == 2 and "nope.yaml" in proc.stderr


def test_live_mode_needs_config_and_flag(cli):
    proc = cli("--mode", "live", "status")
    assert proc.returncode == 2 and "--live" in proc.stderr
    cfg = cli.cwd / "live.yaml"
    cfg.write_text("trading:\n  paper: false\n")
    proc = cli("--config", str(cfg), "--mode", "live", "status")
    assert proc.returncode == 2


def test_init_writes_a_config_equal_to_the_defaults(cli):
    doc = cli.json("init")
    assert (cli.cwd / "config" / "settings.yaml").exists() and (cli.cwd / ".env.example").exists()
    assert doc["schema_version"] >= 1
    again = cli.json("init")
    assert again["config_status"] == "kept existing"
    from tokenomics.config import Settings, load_settings

    assert load_settings(cli.cwd / "config" / "settings.yaml") == Settings()


def test_repo_config_is_the_shipped_default():
    shipped = (REPO / "src" / "tokenomics" / "default_settings.yaml").read_text()
    assert (REPO / "config" / "settings.yaml").read_text() == shipped


def test_every_command_prints_json_that_parses(cli):
    for cmd in (["init"], ["doctor"], ["fetch-news"], ["score"], ["signal"], ["size"], ["trade"],
                ["check-exits"], ["status"], ["run", "--once"]):
        proc = cli(*cmd, "--json")
        assert proc.returncode == 0, (cmd, proc.stderr)
        assert isinstance(json.loads(proc.stdout), dict), cmd


def test_jsonl_prints_one_object_per_line(cli):
    proc = cli("fetch-news", "--advance", "5", "--jsonl")
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    assert lines and all("headline" in x for x in lines)


def test_one_spelling_for_symbols_repeatable_or_comma_separated(cli):
    """Every command takes symbols as `--symbol/-s`, repeatable, each value also a comma-separated list."""
    from tokenomics.cli import COMMANDS

    for name in COMMANDS:
        out = subprocess.run([sys.executable, "-m", "tokenomics.cli", name, "-h"], capture_output=True, text=True,
                             env={**os.environ, "COLUMNS": "200"}).stdout
        assert "--symbols" not in out.split("Global options")[0], name
    fetched = cli.json("fetch-bars", "--source", "sim", "-s", "BTC/USD,eth/usd")
    assert sorted(r["symbol"] for r in fetched["rows"]) == ["BTC/USD", "ETH/USD"]
    one = cli.json("risk", "-s", "BTC/USD", "-s", "ETH/USD", "--source", "sim")
    assert one["symbols"] == ["BTC/USD", "ETH/USD"]
    assert cli.json("risk", "--symbol", "BTC/USD,ETH/USD", "--source", "sim") == one
    assert cli.json("risk", "--symbols", "BTC/USD,ETH/USD", "--source", "sim") == one  # the old spelling still works
    plan = cli.json("rebalance", "-s", "BTC/USD", "-s", "ETH/USD", "--method", "equal")
    assert sorted(plan["target_weights"]) == ["BTC/USD", "ETH/USD"]


def test_the_quick_start_needs_only_the_core_package(cli):
    """README command 1 installs `pip install -e .` (no extras): the sim loop and status import nothing
    that only an extra (or the dev tools) would install."""
    extras = {"alpaca", "google", "ccxt", "skfolio", "matplotlib", "apprise", "optuna", "ray", "talib",
              "backtesting", "empyrical", "quantstats", "pytest", "hypothesis", "responses", "httpx"}
    for args in (["run", "--loop", "--ticks", "3", "--interval", "0", "--json"], ["status", "--json"]):
        proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "tokenomics.cli", *args], cwd=cli.cwd,
                              env=cli.env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-2000:]
        imported = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in proc.stderr.splitlines() if "|" in line}
        assert imported & extras == set(), (args, imported & extras)
    readme = (REPO / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("## ", 1)[0]
    first, second = [block for block in quick.split("# ") if block.startswith(("1.", "2."))]
    assert 'pip install -e .' in first and "[dev]" not in first and "tokenomics run --loop" in first
    assert 'pip install -e ".[dev]"' in second and "python -m pytest -n 2" in second
    ci = (REPO / ".ci" / "run").read_text()
    assert 'pip install --quiet -e ".[dev]"' in ci and "python -m pytest -n 2" in ci


def test_just_cron_works_on_a_fresh_clone_without_a_logs_folder(cli):
    import shutil

    just = shutil.which("just", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    if just is None:
        pytest.skip("just (rust-just, a dev extra) is not installed")
    shutil.copy(REPO / "Justfile", cli.cwd / "Justfile")
    bindir = os.path.dirname(sys.executable)  # the venv's `tokenomics` console script
    env = {**cli.env, "PATH": bindir + os.pathsep + cli.env.get("PATH", "")}
    del env["TOKENOMICS_LOGS__DIR"]  # the default: ./logs, absent on a fresh clone
    for _ in range(2):
        proc = subprocess.run([just, "cron"], cwd=cli.cwd, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
    lines = (cli.cwd / "logs" / "cron.jsonl").read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(line)["ticks"] == 1 for line in lines)


def test_the_top_level_one_liners_name_every_choice_they_list():
    from tokenomics.cli import COMMANDS
    from tokenomics.commands.size import METHODS
    from tokenomics.research.bars import SOURCES

    assert all(m in COMMANDS["size"][1] for m in METHODS), COMMANDS["size"][1]
    assert all(s in COMMANDS["fetch-bars"][1].lower() for s in SOURCES), COMMANDS["fetch-bars"][1]


def test_shell_completion_like_other_typer_apps(cli):
    script = subprocess.run([sys.executable, "-m", "tokenomics.cli", "--show-completion", "bash"], cwd=cli.cwd,
                            env=cli.env, capture_output=True, text=True)
    assert script.returncode == 0 and "_tokenomics_completion" in script.stdout, script.stderr
    done = subprocess.run([sys.executable, "-m", "tokenomics.cli"], cwd=cli.cwd, capture_output=True, text=True,
                          env={**cli.env, "_TOKENOMICS_COMPLETE": "complete_bash", "COMP_WORDS": "tokenomics fetch-b",
                               "COMP_CWORD": "1"})
    assert done.stdout.split() == ["fetch-bars"], (done.stdout, done.stderr)
