"""The training command: one function builds it, the local process and the Kubernetes pod both run it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from retrain.options import Run
from retrain.spec import ModelSpec

TRAIN_MODULE = "retrain.train"
DEFAULT_RESULT_PATH = "/airflow/xcom/return.json"


@dataclass(frozen=True)
class TrainInvocation:
    """Arguments after `python -m retrain.train`, and the non-secret environment."""

    arguments: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)

    def command(self, python: str = "python") -> list[str]:
        return [python, "-m", TRAIN_MODULE, *self.arguments]


def training_invocation(
    spec: ModelSpec, run: Run, *, task_id: str, features_dir: str, result_path: str = DEFAULT_RESULT_PATH
) -> TrainInvocation:
    """The training job's command for this run: the spec and the run (options, window, ids) as JSON."""
    arguments = (
        "--spec-json", spec.model_dump_json(),
        "--run-json", json.dumps(run.to_dict(), sort_keys=True),
        "--task-id", task_id,
        "--features-dir", features_dir,
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
