"""The production training pod, tested as data: no cluster runs here, so we build the exact pod
request the provider would send (`build_pod_request_obj`) and check it against the spec, the local
backend's command and the Kubernetes OpenAPI schema (offline, kubernetes-validate)."""

from __future__ import annotations

import datetime as dt
import json
from types import SimpleNamespace

import kubernetes_validate
import pytest
from kubernetes.client import ApiClient

from retrain.contracts import TrainingResult
from retrain.invocation import training_invocation
from retrain.pipeline import producer
from retrain.settings import features_dir
from retrain.spec import load_spec
from retrain_operators.base import run_from_context
from retrain_operators.pod_train import KubernetesTrainOperator, label_value
from tests.support import REPO

SPEC_PATH = REPO / "include" / "models" / "churn.yaml"
SPEC = load_spec(SPEC_PATH)
RUN_ID = "scheduled__2025-05-01T02:00:00+00:00"


def run_context() -> dict:
    return {
        "params": {"end_date": "2025-05-01", "estimator_params": {"max_iter": 40}},
        "dag_run": SimpleNamespace(conf={}, run_after=dt.datetime(2025, 5, 1, 2, tzinfo=dt.UTC)),
        "run_id": RUN_ID,
    }


def built_pod(spec=SPEC):
    operator = KubernetesTrainOperator(spec=spec, step=producer(TrainingResult))
    operator.prepare(run_context())
    pod = operator.build_pod_request_obj(context=None, dry_run=True)
    return operator, pod


def as_manifest(pod) -> dict:
    manifest = ApiClient().sanitize_for_serialization(pod)
    return {"apiVersion": "v1", "kind": "Pod", **manifest}


def container(pod, name: str):
    return next(c for c in pod.spec.containers if c.name == name)


def test_pod_runs_the_same_command_and_environment_as_the_local_backend():
    _, pod = built_pod()
    base = container(pod, "base")
    run = run_from_context(run_context(), SPEC)
    invocation = training_invocation(
        SPEC, run, task_id="train", features_dir=str(features_dir(SPEC.name, run.window)),
        result_path="/airflow/xcom/return.json",
    )  # fmt: skip
    assert base.command == ["/usr/bin/dumb-init", "--", "python", "-m", "retrain.train"]
    assert base.args == list(invocation.arguments)
    assert {e.name: e.value for e in base.env} == invocation.env
    run_json = json.loads(base.args[base.args.index("--run-json") + 1])
    assert run_json["window"]["end"] == "2025-05-01T00:00:00+00:00"
    assert run_json["options"]["estimator_params"] == {"max_iter": 40}


def test_pod_is_built_from_the_spec_with_requests_and_limits():
    _, pod = built_pod()
    base = container(pod, "base")
    training = SPEC.training
    assert base.image == training.image
    assert pod.metadata.namespace == training.namespace
    assert pod.spec.service_account_name == training.service_account
    assert base.resources.requests == {"cpu": "1", "memory": "2Gi"}
    assert base.resources.limits == {"cpu": "2", "memory": "4Gi"}
    assert pod.spec.automount_service_account_token is False
    assert pod.metadata.name.startswith("train-churn")


def test_gpu_node_selector_and_tolerations_come_from_the_spec():
    data = SPEC.model_dump(mode="json")
    data["training"]["resources"]["gpu"] = 1
    data["training"]["node_selector"] = {"nvidia.com/gpu.present": "true"}
    data["training"]["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    spec = type(SPEC).model_validate(data)
    _, pod = built_pod(spec)
    assert container(pod, "base").resources.limits["nvidia.com/gpu"] == "1"
    assert pod.spec.node_selector == {"nvidia.com/gpu.present": "true"}
    assert pod.spec.tolerations[0].key == "nvidia.com/gpu"
    kubernetes_validate.validate(as_manifest(pod), kubernetes_validate.latest_version(), strict=True)


def test_labels_identify_dag_task_run_and_model_and_are_valid_label_values():
    _, pod = built_pod()
    labels = pod.metadata.labels
    assert labels["retrain/model"] == "churn"
    assert labels["retrain/dag"] == "retrain_churn"
    assert labels["retrain/task"] == "train"
    assert labels["retrain/run"] == label_value(RUN_ID)
    assert labels["retrain/window-end"] == "2025-05-01"
    assert labels["app.kubernetes.io/name"] == "retrain-training"
    kubernetes_validate.validate(as_manifest(pod), kubernetes_validate.latest_version(), strict=True)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("scheduled__2025-05-01T02:00:00+00:00", "scheduled__2025-05-01T02-00-00-00-00"),
        ("--x--", "x"),
        ("", "none"),
        ("a" * 80, "a" * 63),
    ],
)
def test_label_value_is_always_a_valid_kubernetes_label(raw, expected):
    assert label_value(raw) == expected


def test_every_container_including_the_xcom_sidecar_is_hardened():
    _, pod = built_pod()
    names = {c.name for c in pod.spec.containers}
    assert names == {"base", "airflow-xcom-sidecar"}, "do_xcom_push must add the sidecar that reads return.json"
    assert pod.spec.security_context.run_as_non_root is True
    assert pod.spec.security_context.run_as_user == 50000
    assert pod.spec.security_context.seccomp_profile.type == "RuntimeDefault"
    for c in pod.spec.containers:
        context = c.security_context
        assert context is not None, c.name
        assert context.run_as_non_root is True, c.name
        assert context.allow_privilege_escalation is False, c.name
        assert context.privileged is False, c.name
        assert context.read_only_root_filesystem is True, c.name
        assert context.capabilities.drop == ["ALL"], c.name
        assert context.seccomp_profile.type == "RuntimeDefault", c.name


def test_read_only_root_has_writable_scratch_and_the_shared_artifacts_claim():
    _, pod = built_pod()
    mounts = {m.mount_path: m.name for m in container(pod, "base").volume_mounts}
    assert {"/tmp", "/home/retrain"} <= set(mounts)
    volumes = {v.name: v for v in pod.spec.volumes}
    assert volumes["scratch-tmp"].empty_dir.size_limit == "2Gi"
    claim = volumes["artifacts"].persistent_volume_claim.claim_name
    assert claim == SPEC.training.artifacts_pvc
    features_dir = container(pod, "base").args[container(pod, "base").args.index("--features-dir") + 1]
    artifacts_mount = next(path for path, name in mounts.items() if name == "artifacts")
    assert features_dir.startswith(artifacts_mount + "/"), "the pod must see the partition the worker wrote"


def test_mlflow_credentials_reach_the_pod_only_from_a_secret():
    _, pod = built_pod()
    base = container(pod, "base")
    assert [source.secret_ref.name for source in base.env_from] == [SPEC.training.mlflow_secret]
    manifest = json.dumps(as_manifest(pod))
    assert "MLFLOW_TRACKING_PASSWORD" not in manifest and "MLFLOW_TRACKING_TOKEN" not in manifest
    assert not any(e.name.startswith("MLFLOW_") for e in base.env or [])


def test_operator_options_keep_failed_pods_reconnect_on_retry_and_time_out():
    operator, pod = built_pod()
    assert operator.do_xcom_push is True
    assert operator.on_finish_action.value == "delete_succeeded_pod"
    assert operator.durable is True
    assert operator.startup_timeout_seconds == SPEC.training.startup_timeout_seconds
    assert operator.execution_timeout == dt.timedelta(minutes=SPEC.training.timeout_minutes)
    assert operator.deferrable is SPEC.training.deferrable
    assert container(pod, "base").termination_message_policy == "FallbackToLogsOnError"


def test_pod_manifest_passes_the_kubernetes_schema_and_a_broken_one_does_not():
    _, pod = built_pod()
    manifest = as_manifest(pod)
    kubernetes_validate.validate(manifest, kubernetes_validate.latest_version(), strict=True)
    broken = json.loads(json.dumps(manifest))
    broken["spec"]["containers"][0]["resources"]["limits"]["cpu"] = {"not": "a quantity"}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, kubernetes_validate.latest_version(), strict=True)


def test_dag_with_kubernetes_backend_uses_the_pod_operator_in_the_training_pool(monkeypatch):
    from retrain.pipeline import TRAINING_POOL
    from retrain_operators.dag_factory import build_retrain_dag

    dag = build_retrain_dag(SPEC, SPEC_PATH, backend="kubernetes")
    train = dag.get_task("train")
    assert isinstance(train, KubernetesTrainOperator)
    assert train.pool == TRAINING_POOL
    assert "backend:kubernetes" in dag.tags
