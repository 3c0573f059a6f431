"""The production training pod, tested as data: no cluster runs here, so we build the exact pod
request the provider would send (`build_pod_request_obj`) for the `train` task the DAG factory builds
with the kubernetes backend, and check it against the spec, the local backend's command and the
Kubernetes OpenAPI schema (offline, kubernetes-validate)."""

from __future__ import annotations

import datetime as dt
import json
from types import SimpleNamespace

import kubernetes_validate
import pytest
from kubernetes.client import ApiClient

from retrain.invocation import training_invocation
from retrain.settings import features_dir
from retrain.spec import load_spec
from retrain_operators.base import run_from_context
from retrain_operators.pod_train import SECRET_MOUNT, KubernetesTrainOperator, label_value
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


def train_task(spec=SPEC) -> KubernetesTrainOperator:
    """The `train` task of the spec's DAG as the factory builds it for the kubernetes backend."""
    from retrain_operators.dag_factory import build_retrain_dag

    return build_retrain_dag(spec, SPEC_PATH, backend="kubernetes").get_task("train")


def built_pod(spec=SPEC):
    operator = train_task(spec)
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
    # The same environment, plus where the job finds the MLflow Secret's files.
    assert {e.name: e.value for e in base.env} == {**invocation.env, "RETRAIN_MLFLOW_SECRET_DIR": SECRET_MOUNT}
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


def test_mlflow_credentials_reach_the_pod_only_from_a_secret_mounted_as_files():
    _, pod = built_pod()
    base = container(pod, "base")
    volume = next(v for v in pod.spec.volumes if v.secret is not None)
    assert volume.secret.secret_name == SPEC.training.mlflow_secret
    mount = next(m for m in base.volume_mounts if m.name == volume.name)
    assert mount.mount_path == SECRET_MOUNT and mount.read_only is True
    assert not base.env_from, "no Secret as environment variables (kubectl describe and child processes see them)"
    manifest = json.dumps(as_manifest(pod))
    assert "MLFLOW_TRACKING_PASSWORD" not in manifest and "MLFLOW_TRACKING_TOKEN" not in manifest
    assert not any(e.name.startswith("MLFLOW_") for e in base.env or [])
    sidecar = container(pod, "airflow-xcom-sidecar")
    assert all(m.name != volume.name for m in sidecar.volume_mounts or []), "the sidecar never sees the credentials"


def test_the_job_limit_is_timeout_minutes_on_both_backends_and_the_task_backstop_is_above_it():
    from retrain_operators.dag_factory import TRAINING_GRACE, build_retrain_dag

    operator, pod = built_pod()
    training = SPEC.training
    assert pod.spec.active_deadline_seconds == training.timeout_minutes * 60  # Kubernetes stops the pod
    assert operator.execution_timeout == dt.timedelta(
        minutes=training.timeout_minutes, seconds=training.startup_timeout_seconds
    ) + TRAINING_GRACE
    local = build_retrain_dag(SPEC, SPEC_PATH, backend="local").get_task("train")
    assert local.execution_timeout == dt.timedelta(minutes=training.timeout_minutes) + TRAINING_GRACE


def test_the_kubernetes_backend_refuses_an_image_not_pinned_by_digest(tmp_path):
    from retrain_operators.dag_factory import build_model_dags

    pinned = SPEC.training.image
    (tmp_path / "churn.yaml").write_text(SPEC_PATH.read_text().replace(pinned, pinned.split("@")[0]))
    dag = build_model_dags([tmp_path / "churn.yaml"], backend="kubernetes")["retrain_churn"]
    assert "invalid-spec" in dag.tags and "not pinned by digest" in dag.doc_md


def test_no_spec_value_of_the_pod_is_rendered_as_a_template():
    assert train_task().template_fields == ()
    # A value that would read an Airflow connection if rendered cannot even be written in a spec.
    data = SPEC.model_dump(mode="json")
    data["training"]["node_selector"] = {"pool": "{{ conn.mlflow_default.password }}"}
    with pytest.raises(ValueError, match="node_selector"):
        type(SPEC).model_validate(data)


def test_operator_options_keep_failed_pods_and_reconnect_on_retry():
    operator, pod = built_pod()
    assert operator.do_xcom_push is True
    assert operator.on_finish_action.value == "delete_succeeded_pod"
    assert operator.durable is True
    assert operator.startup_timeout_seconds == SPEC.training.startup_timeout_seconds
    assert operator.deferrable is SPEC.training.deferrable
    assert container(pod, "base").termination_message_policy == "FallbackToLogsOnError"
    assert {c.image_pull_policy for c in pod.spec.containers} == {"IfNotPresent"}  # both pinned by digest


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
