"""Deployment files, validated as far as this machine allows (no Docker, no cluster): the
compose file against the compose specification, every Kubernetes manifest against the
Kubernetes schemas (both from PyPI packages, offline), Prometheus configurations with
promtool, and the names in them against the code's defaults."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from claimflow.agents.app import STATE_TABLE
from claimflow.streams.settings import WorkerSettings, env_names
from claimflow.streams.topics import Topics
from tests.live_harness import tool

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy" / "compose"
KUBE = ROOT / "deploy" / "kubernetes"
DEFAULTS = WorkerSettings()
TOPICS = Topics()
CHANGELOG = f"{DEFAULTS.app_id}-{STATE_TABLE}-changelog"


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())
    return data


def test_compose_file_follows_the_compose_specification() -> None:
    done = subprocess.run(
        [
            tool("check-jsonschema"),
            "--builtin-schema",
            "vendor.compose-spec",
            str(COMPOSE / "docker-compose.yml"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_compose_creates_the_topics_the_code_uses_with_the_partitions_it_needs() -> None:
    script = _compose()["services"]["topics"]["command"][0]
    created = dict(re.findall(r"--topic (\S+) --partitions (\d+)", script))
    for topic in TOPICS.inputs():
        assert topic in script  # created in the loop, with the default partition count
    assert re.search(rf"--partitions {DEFAULTS.partitions} ", script)
    assert created[TOPICS.sequenced] == "1"  # the detector stage needs exactly one
    assert created[TOPICS.alerts] and created[TOPICS.deadletter]
    assert re.search(rf"--topic {re.escape(CHANGELOG)} .*cleanup.policy=compact", script)


def test_every_claimflow_variable_in_the_deploy_files_is_one_the_worker_reads() -> None:
    known = set(env_names())
    compose_env: dict[str, str] = _compose()["x-worker"]["environment"]
    kube_env = dict(
        line.split("=", 1)
        for line in (KUBE / "worker.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    statefulset = yaml.safe_load((KUBE / "worker-statefulset.yaml").read_text())
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    used = set(compose_env) | set(kube_env) | {e["name"] for e in container["env"]}
    assert used - known == set()
    for env in (compose_env, kube_env):
        assert env["CLAIMFLOW_APP_ID"] == DEFAULTS.app_id  # the changelog created above
        assert int(env["CLAIMFLOW_WEB_PORT"]) == DEFAULTS.web_port
    assert container["ports"][0]["containerPort"] == DEFAULTS.web_port
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        assert container[probe]["httpGet"]["path"] == path


def test_kubernetes_manifests_match_the_kubernetes_schemas() -> None:
    import kubernetes_validate
    from kubernetes_validate.utils import latest_version

    kustomization = yaml.safe_load((KUBE / "kustomization.yaml").read_text())
    kinds = []
    for name in kustomization["resources"]:
        for doc in yaml.safe_load_all((KUBE / name).read_text()):
            kubernetes_validate.validate(doc, latest_version(), strict=True)
            kinds.append(doc["kind"])
    assert {"StatefulSet", "Service", "PodDisruptionBudget"} <= set(kinds)
    # Every file a generator reads exists, the boards among them.
    for generator in kustomization["configMapGenerator"]:
        for entry in generator.get("files", []) + generator.get("envs", []):
            path = KUBE / entry.split("=", 1)[-1]
            assert path.is_file(), f"{generator['name']}: {path} is missing"
    boards = [g for g in kustomization["configMapGenerator"] if g["name"] == "claimflow-dashboards"]
    assert len(boards[0]["files"]) == len(list((ROOT / "dashboards/generated").glob("*.json")))


@pytest.mark.live
@pytest.mark.parametrize("config", [COMPOSE / "prometheus.yml", KUBE / "prometheus.yml"])
def test_prometheus_configurations_pass_promtool(config: Path, tmp_path: Path) -> None:
    data = yaml.safe_load(config.read_text())
    # The rule file is mounted elsewhere in the container: check against the repository's.
    assert [Path(p).name for p in data["rule_files"]] == ["claimflow-rules.yml"]
    data["rule_files"] = [str(ROOT / "deploy/prometheus/claimflow-rules.yml")]
    local = tmp_path / "prometheus.yml"
    local.write_text(yaml.safe_dump(data))
    done = subprocess.run(
        [tool("promtool"), "check", "config", str(local)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert data["scrape_configs"][0]["job_name"] == "claimflow"  # what the rules select on


def _kustomize(folder: Path) -> list[dict[str, Any]]:
    """`kubectl kustomize` exactly as `kubectl apply -k` renders it: no flags."""
    done = subprocess.run(
        [tool("kubectl"), "kustomize", str(folder)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def test_kubectl_kustomize_renders_without_flags_and_every_object_validates() -> None:
    import kubernetes_validate
    from kubernetes_validate.utils import latest_version

    docs = _kustomize(KUBE)
    for doc in docs:
        kubernetes_validate.validate(doc, latest_version(), strict=True)
        assert doc["kind"] == "Namespace" or doc["metadata"]["namespace"] == "claimflow"
    maps = {d["metadata"]["name"].rsplit("-", 1)[0]: d for d in docs if d["kind"] == "ConfigMap"}
    # The ConfigMaps carry what the repository generates, byte for byte.
    rules = maps["claimflow-prometheus"]["data"]["claimflow-rules.yml"]
    assert rules == (ROOT / "deploy/prometheus/claimflow-rules.yml").read_text()
    alertmanager = maps["claimflow-alertmanager"]["data"]["alertmanager.yml"]
    assert alertmanager == (ROOT / "deploy/alertmanager/alertmanager.yml").read_text()
    assert "127.0.0.1" not in alertmanager
    boards = maps["claimflow-dashboards"]
    assert boards["metadata"]["labels"]["grafana_dashboard"] == "1"
    for path in (ROOT / "dashboards/generated").glob("*.json"):
        assert boards["data"][path.name] == path.read_text(), path.name
    agreements = maps["claimflow-agreements"]["data"]["claimflow.yaml"]
    assert agreements == (ROOT / "claimflow/data/claimflow.yaml").read_text()
    assert maps["claimflow-worker"]["data"]["CLAIMFLOW_LOG_FORMAT"] == "json"


def test_prometheus_rule_and_service_monitor_validate_against_their_crds() -> None:
    import jsonschema

    from claimflow.dashboards import mixin

    docs = {d["kind"]: d for d in _kustomize(KUBE / "operator")}
    assert set(docs) == {"PrometheusRule", "ServiceMonitor"}
    for kind, crd in (("PrometheusRule", "prometheusrules"), ("ServiceMonitor", "servicemonitors")):
        schema = json.loads((ROOT / f"tests/schemas/{crd}-v1.json").read_text())
        errors = [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(docs[kind])]
        assert errors == [], kind
    # The same groups as the rule file Prometheus loads.
    assert docs["PrometheusRule"]["spec"] == mixin.rule_groups()
    # The ServiceMonitor finds the worker Service and its port, and keeps job="claimflow".
    service = yaml.safe_load((KUBE / "worker-service.yaml").read_text())
    monitor = docs["ServiceMonitor"]["spec"]
    assert monitor["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["endpoints"][0]["port"] in {p["name"] for p in service["spec"]["ports"]}
    relabel = monitor["endpoints"][0]["relabelings"][0]
    assert (relabel["targetLabel"], relabel["replacement"]) == ("job", mixin.JOB)


def test_deploy_files_log_json() -> None:
    assert _compose()["x-worker"]["environment"]["CLAIMFLOW_LOG_FORMAT"] == "json"
    assert "CLAIMFLOW_LOG_FORMAT=json" in (KUBE / "worker.env").read_text().splitlines()
