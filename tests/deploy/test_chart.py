"""The Helm chart and its rendered manifests, checked offline.

Helm's own template engine (helm-python-sdk) renders the chart; the copy in
``deploy/kustomize/`` must be exactly that rendering. Every object validates
against the Kubernetes schemas, the objects refer to each other correctly,
and the chart's configuration matches the code's settings.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml
from yamllint import linter
from yamllint.config import YamlLintConfig

from libs.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "chart" / "chinwag"
KUBERNETES = ("1.28", "1.37")  # the chart's oldest supported version and the newest known
# Settings the chart sets from its structure rather than from ``config``.
STRUCTURAL = {
    "database_url": "a Secret",
    "nats_url": "nats.url",
    "http_host": "0.0.0.0 in a pod",
    "http_port": "gateway.port",
    "ops_port": "opsPort",
    "fanout_workers": "fanout.workers",
    "fanout_ordinal": "the pod's ordinal",
    "data_dir": "only `chinwag up` uses it",
}
CHART_DEFAULTS = {"stream_replicas": 3, "log_format": "json"}  # differ from the code's, on purpose
VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "own database secret": {"database": {"url": "postgresql://chinwag@db:5432/chinwag"}},
    "fixed replicas": {
        c: {"autoscaling": {"enabled": False}, "replicas": 3}
        for c in ("gateway", "history", "presence")
    },
    "tls ingress": {
        "gateway": {"ingress": {"className": "nginx", "tlsSecretName": "chat-tls"}},
        "imagePullSecrets": [{"name": "registry"}],
        "nodeSelector": {"pool": "chat"},
    },
    "bare": {
        "serviceMonitor": {"enabled": False},
        "migration": {"enabled": False},
        "serviceAccount": {"create": False},
        "gateway": {"ingress": {"enabled": False}},
        "fanout": {
            "workers": 4,
            "podDisruptionBudget": {"maxUnavailable": None, "minAvailable": 3},
        },
    },
}


def _load_render() -> ModuleType:
    spec = importlib.util.spec_from_file_location("deploy_render", ROOT / "deploy" / "render.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


render = _load_render()


def _objects(files: dict[str, str]) -> list[dict[str, Any]]:
    return [doc for text in files.values() for doc in yaml.safe_load_all(text) if doc]


@pytest.fixture(scope="module", params=list(VARIANTS))
def objects(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return _objects(render.render(VARIANTS[request.param]))


def _kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def _named(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [o for o in _kind(objects, kind) if o["metadata"]["name"] == name]
    assert len(found) == 1, f"no single {kind} {name}"
    return found[0]


def _workloads(objects: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    yield from (o for o in objects if o["kind"] in ("Deployment", "StatefulSet", "Job"))


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_the_committed_manifests_are_the_chart_rendered() -> None:
    wanted = render.kustomize_files()
    committed = {p.name: p.read_text() for p in (ROOT / "deploy" / "kustomize").glob("*.yaml")}
    assert committed.keys() == wanted.keys(), "run `python deploy/render.py`"
    for name, text in wanted.items():
        assert committed[name] == text, f"{name} is stale: run `python deploy/render.py`"


def test_the_chart_lints_clean() -> None:
    result = helm.lint(str(CHART), strict=True)
    assert result["errors"] == []
    assert [m for m in result["messages"] if m["severity"] > 1] == []  # above "info"


@pytest.mark.parametrize("values", [{"config": {"maxHistory": 0}}, {"gateway": {"port": "x"}}])
def test_the_values_schema_refuses_bad_values(values: dict[str, Any]) -> None:
    with pytest.raises(helm.HelmValuesError):
        render.render(values)


def test_more_fanout_workers_than_partitions_is_refused() -> None:
    with pytest.raises(helm.HelmError, match=r"cannot exceed config\.partitions"):
        render.render({"fanout": {"workers": 5}})


def test_a_grace_period_shorter_than_the_shutdown_grace_is_refused() -> None:
    with pytest.raises(helm.HelmError, match=r"must exceed config\.shutdownGrace"):
        render.render({"fanout": {"terminationGracePeriodSeconds": 20}})


def test_every_object_validates_against_the_kubernetes_schemas(
    objects: list[dict[str, Any]],
) -> None:
    for obj in objects:
        if obj["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # a CRD: no schema ships with Kubernetes; checked in the next test
        for version in KUBERNETES:
            kubernetes_validate.validate(obj, version, strict=True)


def test_the_objects_refer_to_each_other_correctly(objects: list[dict[str, Any]]) -> None:
    pods = {(w["kind"], w["metadata"]["name"]): w["spec"]["template"] for w in _workloads(objects)}
    for workload in _workloads(objects):
        template = workload["spec"]["template"]
        if workload["kind"] != "Job":
            selector = workload["spec"]["selector"]["matchLabels"]
            assert _selects(selector, template["metadata"]["labels"]), workload["metadata"]
        for container in template["spec"]["containers"]:
            ports = {p["name"] for p in container.get("ports", [])}
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                if probe in container:
                    assert container[probe]["httpGet"]["port"] in ports, container["name"]
            for source in container.get("envFrom", []):
                _named(objects, "ConfigMap", source["configMapRef"]["name"])
            for env in container.get("env", []):
                secret = env.get("valueFrom", {}).get("secretKeyRef")
                if secret and any(o["kind"] == "Secret" for o in objects):
                    secret_obj = _named(objects, "Secret", secret["name"])
                    assert secret["key"] in secret_obj["stringData"]
    for service in _kind(objects, "Service"):
        targets = [
            pod
            for pod in pods.values()
            if _selects(service["spec"]["selector"], pod["metadata"]["labels"])
        ]
        assert targets, f"Service {service['metadata']['name']} selects no pods"
        named = {
            p["name"] for pod in targets for c in pod["spec"]["containers"] for p in c["ports"]
        }
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in named, service["metadata"]["name"]
    for hpa in _kind(objects, "HorizontalPodAutoscaler"):
        target = _named(objects, "Deployment", hpa["spec"]["scaleTargetRef"]["name"])
        assert "replicas" not in target["spec"], "the HPA owns the replica count"
    for budget in _kind(objects, "PodDisruptionBudget"):
        selector = budget["spec"]["selector"]["matchLabels"]
        assert any(_selects(selector, p["metadata"]["labels"]) for p in pods.values())
    for statefulset in _kind(objects, "StatefulSet"):
        governing = _named(objects, "Service", statefulset["spec"]["serviceName"])
        assert governing["spec"]["clusterIP"] == "None"
    for ingress in _kind(objects, "Ingress"):
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                service = _named(objects, "Service", backend["name"])
                assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}
    for monitor in _kind(objects, "ServiceMonitor"):
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        selector = monitor["spec"]["selector"]["matchLabels"]
        services = [
            s for s in _kind(objects, "Service") if _selects(selector, s["metadata"]["labels"])
        ]
        scraped = {p["name"] for s in services for p in s["spec"]["ports"]}
        endpoints = {e["port"] for e in monitor["spec"]["endpoints"]}
        assert endpoints == scraped and all(
            e["path"] == "/metrics" for e in monitor["spec"]["endpoints"]
        )
        assert len(services) == 4  # the gateway and the three workers


def test_every_pod_runs_unprivileged_with_requests_and_probes(
    objects: list[dict[str, Any]],
) -> None:
    for workload in _workloads(objects):
        spec = workload["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["readOnlyRootFilesystem"] is True
            assert context["capabilities"]["drop"] == ["ALL"]
            assert container["resources"]["requests"]["cpu"]
            assert container["resources"]["requests"]["memory"]
            if workload["kind"] != "Job":
                assert {"livenessProbe", "readinessProbe"} <= container.keys()
        if workload["kind"] != "Job":  # SIGTERM's grace ends before the kubelet's
            (config,) = _kind(objects, "ConfigMap")
            grace = float(config["data"]["CHINWAG_SHUTDOWN_GRACE"])
            assert spec["terminationGracePeriodSeconds"] > grace


def test_fanout_is_a_statefulset_whose_ordinal_picks_its_partitions(
    objects: list[dict[str, Any]],
) -> None:
    (fanout,) = _kind(objects, "StatefulSet")
    (container,) = fanout["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["fanout"]
    ordinal = {e["name"]: e for e in container["env"]}["CHINWAG_FANOUT_ORDINAL"]
    field = ordinal["valueFrom"]["fieldRef"]["fieldPath"]
    assert field == "metadata.labels['apps.kubernetes.io/pod-index']"
    (config,) = _kind(objects, "ConfigMap")
    assert config["data"]["CHINWAG_FANOUT_WORKERS"] == str(fanout["spec"]["replicas"])
    for job in _kind(objects, "Job"):
        assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]
        hook = job["metadata"]["annotations"]["helm.sh/hook"]
        assert set(hook.split(",")) == {"pre-install", "pre-upgrade"}


def test_the_configuration_is_every_setting_at_the_code_s_default(
    objects: list[dict[str, Any]],
) -> None:
    (config,) = _kind(objects, "ConfigMap")
    env = config["data"]
    names = {key.removeprefix("CHINWAG_").lower() for key in env}
    assert names <= set(Settings.model_fields), names - set(Settings.model_fields)
    missing = set(Settings.model_fields) - names - {"database_url", "fanout_ordinal", "data_dir"}
    assert not missing, f"settings the chart does not set: {sorted(missing)}"
    settings = Settings.model_validate(
        {k.removeprefix("CHINWAG_").lower(): v for k, v in env.items()}
    )
    code = Settings()
    for name in names - set(STRUCTURAL):
        expected = CHART_DEFAULTS.get(name, getattr(code, name))
        assert getattr(settings, name) == expected, name


def test_the_values_schema_describes_every_setting() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    described = schema["properties"]["config"]["properties"]
    wanted = {_camel(name) for name in Settings.model_fields} - {_camel(n) for n in STRUCTURAL}
    assert set(described) == wanted
    assert schema["properties"]["config"]["additionalProperties"] is False
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert set(values["config"]) == wanted


def test_the_yaml_is_lint_free() -> None:
    config = YamlLintConfig(file=str(ROOT / ".yamllint.yaml"))
    files = [
        ROOT / "docker-compose.yml",
        ROOT / ".yamllint.yaml",
        CHART / "Chart.yaml",
        CHART / "values.yaml",
        *sorted((ROOT / "deploy" / "kustomize").glob("*.yaml")),
    ]
    problems = [
        f"{path.relative_to(ROOT)}:{p.line}: {p.desc}"
        for path in files
        for p in linter.run(path.read_text(), config, str(path))
    ]
    assert problems == []


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part.title() for part in rest)
