"""The training command: one function builds it, the local process and the Kubernetes pod both run it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from retrain.spec import ModelSpec

TRAIN_MODULE = "retrain.train"
DEFAULT_RESULT_PATH = "/airflow/xcom/return.json"


@dataclass(frozen=True)
class AirflowIds:
    dag_id: str
    run_id: str
    task_id: str
    try_number: int = 1


@dataclass(frozen=True)
class TrainInvocation:
    """Arguments after `python -m retrain.train`, and the non-secret environment."""

    arguments: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)

    def command(self, python: str = "python") -> list[str]:
        return [python, "-m", TRAIN_MODULE, *self.arguments]


def training_invocation(
    spec: ModelSpec,
    *,
    features_dir: str,
    window_end: str,
    ids: AirflowIds,
    params_override: dict | None = None,
    result_path: str = DEFAULT_RESULT_PATH,
) -> TrainInvocation:
    arguments = (
        "--spec-json", spec.model_dump_json(),
        "--features-dir", features_dir,
        "--window-end", window_end,
        "--params-override", json.dumps(params_override or {}, sort_keys=True),
        "--dag-id", ids.dag_id,
        "--run-id", ids.run_id,
        "--task-id", ids.task_id,
        "--result-path", result_path,
    )  # fmt: skip
    env = {
        "PYTHONHASHSEED": "0",
        "PYTHONUNBUFFERED": "1",
        # Threads match the pod's CPU limit, so a laptop and a pod fit the same way.
        "OMP_NUM_THREADS": str(_whole_cpus(spec.training.resources.cpu_limit)),
    }
    return TrainInvocation(arguments=arguments, env=env)


def _whole_cpus(quantity: str) -> int:
    cpus = float(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)
    return max(1, int(cpus))
