"""The production training backend: the training command in a hardened Kubernetes pod.

Imported only when RETRAIN_TRAINING_BACKEND=kubernetes, so laptops never import the Kubernetes
client. The pod runs the same `python -m retrain.train ...` arguments and non-secret environment as
the local backend (`retrain.invocation.training_invocation`); MLflow credentials come only from a Secret,
mounted as files the job reads at its start (not as environment variables, which `kubectl describe`,
crash dumps and child processes see). The image must be pinned by digest; Kubernetes stops the pod after
`training.timeout_minutes` (activeDeadlineSeconds). Nothing of the pod is a Jinja template: spec values
are data, never rendered (a template in a spec could read Airflow connections and variables).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from kubernetes.client import models as k8s

from retrain.credentials import SECRET_DIR_ENV
from retrain.invocation import DEFAULT_RESULT_PATH, TRAIN_MODULE, training_invocation
from retrain.settings import artifacts_root, features_dir
from retrain_operators.base import run_from_context
from retrain_operators.lineage import ReportsLineage

if TYPE_CHECKING:
    from retrain.pipeline import Step
    from retrain.spec import ModelSpec

INIT = ["/usr/bin/dumb-init", "--"]  # in the official Airflow image, hence in the training image
RUN_AS_USER = 50000  # the uid of the official Airflow image and of the training image
# The root filesystem is read-only; these emptyDir volumes are the only writable places.
SCRATCH_MOUNTS = {"scratch-tmp": "/tmp", "scratch-home": "/home/retrain"}  # noqa: S108 - a pod-private emptyDir
# The MLflow Secret's keys, one file each (read by retrain.credentials.load_secret_files in the job).
SECRET_MOUNT = "/var/run/secrets/retrain/mlflow"  # noqa: S105 - a mount path, not a secret
SECRET_FILE_MODE = 0o440  # owner root, group 0: the job runs as uid 50000 in group 0 (run_as_group)
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
# Checks of the infrastructure scanner (checkov, scripts/scan_infra.sh) that do not apply to this pod, each
# with its reason, on the pod itself.
SCANNER_SKIPS = {
    "checkov.io/skip1": "CKV_K8S_8=a batch job serves nothing to probe; activeDeadlineSeconds bounds its run",
    "checkov.io/skip2": "CKV_K8S_9=a batch job receives no traffic for readiness to gate",
    "checkov.io/skip3": "CKV_K8S_15=images are pinned by digest: IfNotPresent cannot run other content",
}


def label_value(value: str) -> str:
    """A valid Kubernetes label value: at most 63 characters of [A-Za-z0-9_.-], alphanumeric at both ends."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", value)[:63]
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", cleaned) or "none"


def hardened_container_context() -> k8s.V1SecurityContext:
    return k8s.V1SecurityContext(
        run_as_non_root=True,
        run_as_user=RUN_AS_USER,
        allow_privilege_escalation=False,
        privileged=False,
        read_only_root_filesystem=True,
        capabilities=k8s.V1Capabilities(drop=["ALL"]),
        seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault"),
    )


def pod_security_context() -> k8s.V1PodSecurityContext:
    return k8s.V1PodSecurityContext(
        run_as_non_root=True,
        run_as_user=RUN_AS_USER,
        run_as_group=0,
        fs_group=0,
        seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault"),
    )


class KubernetesTrainOperator(ReportsLineage, KubernetesPodOperator):
    """Trains one model version in a pod built from the spec's `training` section."""

    ui_color = "#d9d2e9"
    # Spec values (image, namespace, labels, node selector, ...) are data: none is rendered by Jinja.
    template_fields: Sequence[str] = ()

    def __init__(self, *, spec: ModelSpec, step: Step, **kwargs) -> None:
        from retrain.errors import SpecError

        kwargs.setdefault("task_id", step.task_id)
        training = spec.training
        if not training.image or not DIGEST.search(training.image):
            raise SpecError(
                f"field 'training.image': {training.image!r} is not pinned by digest (name@sha256:<64 hex>); the"
                " kubernetes backend runs only pinned images (README: resolving a digest)"
            )
        resources = training.resources
        limits = {"cpu": resources.cpu_limit, "memory": resources.memory_limit}
        if resources.gpu:
            limits["nvidia.com/gpu"] = str(resources.gpu)
        volumes = [
            k8s.V1Volume(name=name, empty_dir=k8s.V1EmptyDirVolumeSource(size_limit="2Gi")) for name in SCRATCH_MOUNTS
        ]
        mounts = [k8s.V1VolumeMount(name=name, mount_path=path) for name, path in SCRATCH_MOUNTS.items()]
        volumes.append(
            k8s.V1Volume(
                name="mlflow-credentials",
                secret=k8s.V1SecretVolumeSource(secret_name=training.mlflow_secret, default_mode=SECRET_FILE_MODE),
            )
        )
        mounts.append(k8s.V1VolumeMount(name="mlflow-credentials", mount_path=SECRET_MOUNT, read_only=True))
        if training.artifacts_pvc:
            volumes.append(
                k8s.V1Volume(
                    name="artifacts",
                    persistent_volume_claim=k8s.V1PersistentVolumeClaimVolumeSource(claim_name=training.artifacts_pvc),
                )
            )
            mounts.append(k8s.V1VolumeMount(name="artifacts", mount_path=str(artifacts_root())))
        super().__init__(
            image=training.image,
            image_pull_policy="IfNotPresent",
            namespace=training.namespace,
            service_account_name=training.service_account,
            # The job talks to MLflow, not to the Kubernetes API: no token in the pod.
            automount_service_account_token=False,
            # `command` replaces the image's ENTRYPOINT: keep dumb-init as PID 1 so SIGTERM reaches the job.
            cmds=[*INIT, "python", "-m", TRAIN_MODULE],
            arguments=[],
            container_resources=k8s.V1ResourceRequirements(
                requests={"cpu": resources.cpu_request, "memory": resources.memory_request}, limits=limits
            ),
            node_selector=dict(training.node_selector) or None,
            tolerations=[k8s.V1Toleration(**t.model_dump(exclude_none=True)) for t in training.tolerations] or None,
            affinity=dict(training.affinity) or None,
            labels={"app.kubernetes.io/name": "retrain-training", "retrain/model": label_value(spec.name)},
            annotations=dict(SCANNER_SKIPS),
            # Kubernetes stops the pod after training.timeout_minutes, as the local backend stops its job.
            active_deadline_seconds=training.timeout_minutes * 60,
            security_context=pod_security_context(),
            container_security_context=hardened_container_context(),
            xcom_sidecar_container_security_context=hardened_container_context(),
            volumes=volumes,
            volume_mounts=mounts,
            do_xcom_push=True,
            on_finish_action="delete_succeeded_pod",
            # A retried task reconnects to its running pod instead of starting a second training.
            durable=True,
            startup_timeout_seconds=training.startup_timeout_seconds,
            deferrable=training.deferrable,
            termination_message_policy="FallbackToLogsOnError",
            get_logs=True,
            log_events_on_failure=True,
            name=f"train-{spec.name}",
            random_name_suffix=True,
            **kwargs,
        )
        self.spec = spec
        self.step = step

    def prepare(self, context: Any) -> None:
        """Sets the run-specific arguments, environment and labels (they need the run's context)."""
        run = run_from_context(context, self.spec)
        self.keep_lineage(run, {})
        invocation = training_invocation(
            self.spec, run, task_id=self.task_id, features_dir=str(features_dir(self.spec.name, run.window)),
            result_path=DEFAULT_RESULT_PATH,
        )  # fmt: skip
        self.arguments = list(invocation.arguments)
        env = {**invocation.env, SECRET_DIR_ENV: SECRET_MOUNT}
        self.env_vars = [k8s.V1EnvVar(name=k, value=v) for k, v in sorted(env.items())]
        self.labels = {
            **self.labels,
            "retrain/dag": label_value(self.spec.dag_id),
            "retrain/task": label_value(self.task_id),
            "retrain/run": label_value(context["run_id"]),
            "retrain/window-end": run.window.end_date.isoformat(),
        }

    def build_pod_request_obj(self, context: Any = None, *, dry_run: bool = False) -> k8s.V1Pod:
        """The provider's pod, with the XCom sidecar pulled like the training container (both by digest)."""
        pod = super().build_pod_request_obj(context, dry_run=dry_run)
        for container in pod.spec.containers:
            container.image_pull_policy = container.image_pull_policy or self.image_pull_policy
        return pod

    def execute(self, context: Any):
        from retrain.errors import RetrainError
        from retrain_operators.base import without_retry

        try:
            self.prepare(context)  # resolves the run: a refused form value fails here, before any pod exists
        except RetrainError as error:
            if not error.retryable:
                raise without_retry(error) from error
            raise
        result = super().execute(context)
        self.keep_result(result if isinstance(result, dict) else None)
        return result
