"""What ships to a cluster, checked offline: the Dockerfile, the Kubernetes manifests and the Helm
values. No Docker engine or cluster runs here; these tests hold the files to what the official
image, Kubernetes' OpenAPI schema and the Airflow chart expect, and to each other."""

from __future__ import annotations

import copy
import json
import re

import jsonschema
import kubernetes_validate
import pytest
import yaml

from retrain.spec import load_spec
from tests.support import REPO

DOCKERFILE = (REPO / "Dockerfile").read_text()
MANIFESTS = REPO / "deploy" / "kubernetes"
HELM_VALUES = REPO / "deploy" / "helm" / "values.yaml"
# The official chart's schema, version and source in the README beside it.
HELM_SCHEMA = REPO / "tests" / "fixtures" / "helm" / "values.schema.json"
HELM_CHART_VERSION = "1.21.0"
SPEC = load_spec(REPO / "include" / "models" / "churn.yaml")


def requirement_pin(package: str) -> str:
    for line in (REPO / "requirements.txt").read_text().splitlines():
        name, _, version = line.partition("==")
        if name.strip().lower() == package:
            return version.strip()
    raise AssertionError(f"{package} is not pinned in requirements.txt")


def instructions(keyword: str) -> list[str]:
    return [line.split(None, 1)[1] for line in DOCKERFILE.splitlines() if line.startswith(keyword + " ")]


def manifests() -> list[dict]:
    docs = []
    for path in sorted(MANIFESTS.rglob("*.yaml")):
        docs += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return docs


def by_kind(kind: str) -> list[dict]:
    return [doc for doc in manifests() if doc["kind"] == kind]


def test_base_image_is_the_official_airflow_image_of_the_pinned_versions():
    (default,) = re.findall(r"^ARG AIRFLOW_IMAGE=(\S+)$", DOCKERFILE, re.M)
    assert default == f"apache/airflow:{requirement_pin('apache-airflow')}-python3.11"


def test_every_file_the_dockerfile_copies_exists_and_is_in_the_build_context():
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    allowed = [line[1:].removesuffix("/**") for line in ignore if line.startswith("!")]
    copies = [arg for arg in instructions("COPY") if not arg.startswith("--from")]
    assert copies
    for arg in copies:
        sources = [part for part in arg.split() if not part.startswith("--")][:-1]
        for source in sources:
            assert (REPO / source).exists(), f"Dockerfile copies {source}, which does not exist"
            assert any(source == a or source.startswith(a + "/") for a in allowed), (
                f"{source} is excluded by .dockerignore"
            )


def test_pip_installs_exactly_requirements_txt_and_the_project_without_extra_packages():
    installs = [line for line in instructions("RUN") if "pip install" in line]
    assert installs == [
        "pip install --no-cache-dir -r /opt/retrain/requirements.txt",
        "pip install --no-cache-dir --no-deps /opt/retrain",
    ]
    assert "COPY --chown=airflow:0 requirements.txt /opt/retrain/requirements.txt" in DOCKERFILE


def test_both_targets_run_as_the_non_root_airflow_uid_and_hold_no_secret():
    stages = re.split(r"^FROM ", DOCKERFILE, flags=re.M)[1:]
    targets = {stage.split()[2]: stage for stage in stages}
    assert set(targets) == {"airflow", "training"}
    for name, stage in targets.items():
        users = re.findall(r"^USER (\S+)$", stage, re.M)
        if users:
            assert users[-1] in {"airflow", "50000:0"}, f"target {name} ends as {users[-1]}"
    assert re.findall(r"^USER (\S+)$", targets["training"], re.M)[-1] == "50000:0"
    assert not re.search(r"(?i)^(ENV|ARG) .*(PASSWORD|TOKEN|SECRET|MLFLOW_TRACKING_URI)", DOCKERFILE, re.M)


def test_image_environment_points_at_the_baked_in_specs_and_suites():
    env = dict(re.findall(r"(RETRAIN_[A-Z_]+)=(\S+)", DOCKERFILE))
    copied = {arg.split()[-1] for arg in instructions("COPY")}
    assert env["RETRAIN_SPECS_DIR"] in copied
    assert env["RETRAIN_EXPECTATIONS_DIR"] in copied
    assert env["RETRAIN_TRAINING_BACKEND"] == "kubernetes"


@pytest.mark.parametrize("doc", manifests(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_each_manifest_passes_the_kubernetes_schema_strictly(doc):
    kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)


def test_manifests_match_what_the_spec_asks_of_the_cluster():
    training = SPEC.training
    (namespace,) = by_kind("Namespace")
    assert namespace["metadata"]["name"] == training.namespace
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    (account,) = by_kind("ServiceAccount")
    assert account["metadata"]["name"] == training.service_account
    assert account["automountServiceAccountToken"] is False
    claims = {doc["metadata"]["name"] for doc in by_kind("PersistentVolumeClaim")}
    assert training.artifacts_pvc in claims
    (secret,) = by_kind("Secret")
    assert secret["metadata"]["name"] == training.mlflow_secret
    assert secret["metadata"]["namespace"] == training.namespace
    assert "MLFLOW_TRACKING_URI" in secret["stringData"]
    assert set(secret["stringData"].values()) == {""}, "the committed Secret is a shape: values stay empty"
    assert "data" not in secret


def test_the_launcher_role_grants_what_the_pod_operator_uses_and_nothing_cluster_wide():
    (role,) = by_kind("Role")
    grants = {(resource, verb) for rule in role["rules"] for resource in rule["resources"] for verb in rule["verbs"]}
    needed = {("pods", v) for v in ("create", "get", "list", "watch", "delete", "patch")}
    needed |= {("pods/log", "get"), ("pods/exec", "create"), ("events", "list")}
    assert needed <= grants
    assert not by_kind("ClusterRole") and not by_kind("ClusterRoleBinding")
    assert all("*" not in rule["verbs"] and "*" not in rule["resources"] for rule in role["rules"])


def test_helm_values_use_the_project_image_bake_dags_in_and_take_connections_from_secrets():
    values = yaml.safe_load(HELM_VALUES.read_text())
    assert values["airflowVersion"] == requirement_pin("apache-airflow")
    assert values["executor"] in {"LocalExecutor", "CeleryExecutor", "KubernetesExecutor", "CeleryKubernetesExecutor"}
    assert values["images"]["airflow"]["repository"] == values["defaultAirflowRepository"]
    assert values["dags"]["gitSync"]["enabled"] is False and values["dags"]["persistence"]["enabled"] is False
    env = {item["name"]: item["value"] for item in values["env"]}
    assert env["RETRAIN_TRAINING_BACKEND"] == "kubernetes"
    connections = {item["envName"]: item for item in values["secret"]}
    assert set(connections) == {"AIRFLOW_CONN_MLFLOW_DEFAULT", "AIRFLOW_CONN_KUBERNETES_DEFAULT"}
    assert all(set(item) == {"envName", "secretName", "secretKey"} for item in connections.values())
    workers = values["workers"]["celery"]
    mounts = {m["mountPath"] for m in workers["extraVolumeMounts"]}
    assert env["RETRAIN_ARTIFACTS_ROOT"] in mounts, "workers must write partitions where the pods read them"
    claims = {v["persistentVolumeClaim"]["claimName"] for v in workers["extraVolumes"]}
    assert SPEC.training.artifacts_pvc in claims
    assert values["securityContexts"]["pod"]["runAsUser"] == 50000


def helm_schema_errors(values: dict) -> list[str]:
    """What the chart's values.schema.json (the check `helm install` runs) says about these values."""
    schema = json.loads(HELM_SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema)
    errors = [f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in validator.iter_errors(values)]
    # The chart's schema leaves the top level open: a misspelt top-level key would pass it silently.
    errors += [f"{key}: not a value of the chart" for key in values if key not in schema["properties"]]
    return errors


def test_the_helm_values_pass_the_official_chart_schema_of_the_version_named_in_the_readme():
    source = (HELM_SCHEMA.parent / "README.md").read_text()
    assert f"chart {HELM_CHART_VERSION}" in source and "apache/airflow" in source
    assert f"--version {HELM_CHART_VERSION}" in (REPO / "README.md").read_text()
    assert f"--version {HELM_CHART_VERSION}" in HELM_VALUES.read_text()
    assert helm_schema_errors(yaml.safe_load(HELM_VALUES.read_text())) == []


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("executor",), "Nope", "executor: 'Nope' does not match"),
        (("data", "metadataSecretName"), {"name": "x"}, "data.metadataSecretName: {'name': 'x'} is not of type"),
        (("images", "airflow", "tag"), 1, "images.airflow.tag: 1 is not of type"),
        (("workers", "celery", "replicas"), "two", "workers.celery.replicas: 'two' is not of type"),
        (("executer",), "LocalExecutor", "executer: not a value of the chart"),
    ],
)
def test_a_wrong_helm_value_fails_the_schema_check_naming_the_field(path, value, expected):
    values = copy.deepcopy(yaml.safe_load(HELM_VALUES.read_text()))
    node = values
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    errors = helm_schema_errors(values)
    assert any(error.startswith(expected) for error in errors), errors


def test_helm_values_set_the_executor_the_postgresql_secret_and_the_images_and_use_no_deprecated_key():
    values = yaml.safe_load(HELM_VALUES.read_text())
    assert values["executor"] == "CeleryExecutor"
    assert values["data"]["metadataSecretName"], "the metadata connection comes from a Secret"
    assert "metadataConnection" not in values["data"], "no connection details in the values"
    assert values["postgresql"]["enabled"] is False, "an external PostgreSQL, not the chart's bundled one"
    assert values["images"]["airflow"]["repository"].endswith("/retrain-airflow")
    assert values["images"]["airflow"]["tag"] == values["defaultAirflowTag"]
    schema = json.loads(HELM_SCHEMA.read_text())

    def deprecated(node: dict, schema_node: dict, path: str) -> list[str]:
        found = []
        for key, value in node.items():
            child = schema_node.get("properties", {}).get(key, {})
            if "deprecated" in child.get("description", "").lower():
                found.append(f"{path}{key}")
            if isinstance(value, dict):
                found += deprecated(value, child, f"{path}{key}.")
        return found

    assert deprecated(values, schema, "") == [], "chart 1.21 deprecates these keys"
