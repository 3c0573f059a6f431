"""The training CLI against a real MLflow server: deterministic, idempotent, safe to kill."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from retrain.data import read_window
from retrain.features import build_partition
from retrain.invocation import training_invocation
from retrain.registry import CHAMPION_ALIAS, PREVIOUS_ALIAS
from retrain.spec import load_spec
from retrain.tags import Tag
from retrain.window import Window
from tests.support import bare_run, write_spec

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("mlflow_server")]


@pytest.fixture
def prepared(spec_dir, tmp_path):
    spec = load_spec(write_spec(spec_dir, **{"model.params": {"max_iter": 30}}))
    window = Window.ending(dt.date(2025, 5, 1), spec.data)
    frame = read_window(spec, window, columns=[*spec.features.columns, spec.target]).frame
    partition = build_partition(frame, spec, window, tmp_path / "features" / window.partition)  # as the task does
    return spec, partition


def run_job(spec, partition, result: Path, run_id: str, code_version: str, **popen) -> subprocess.Popen:
    invocation = training_invocation(
        spec,
        bare_run(spec, dt.date(2025, 5, 1), run_id),
        task_id="train",
        features_dir=str(partition.path),
        result_path=str(result),
    )
    env = {**os.environ, **invocation.env, "RETRAIN_CODE_VERSION": code_version}
    return subprocess.Popen(invocation.command(sys.executable), env=env, **popen)


def test_same_inputs_give_identical_metrics_and_are_not_registered_twice(prepared, tmp_path, registry):
    spec, partition = prepared
    results = []
    for attempt, code in enumerate(["code-a", "code-b", "code-a"]):
        result = tmp_path / f"result-{attempt}.json"
        assert run_job(spec, partition, result, f"manual__{attempt}", code).wait(timeout=300) == 0
        results.append(json.loads(result.read_text()))
    first, retrained, retried = results
    assert retrained["model_version"] != first["model_version"]  # code changed: a new version
    assert retrained["metrics"] == first["metrics"]  # same seed, same data: same numbers
    assert retried["model_version"] == first["model_version"] and retried["reused"] is True
    assert len(registry.versions(spec.name)) == 2
    version = registry.version(spec.name, first["model_version"])
    assert version.tags[Tag.DECISION] == "pending_evaluation"
    assert version.tags[Tag.INPUT_HASH] == partition.input_hash
    # The model's requirements are declared (the installed pins), not inferred from whatever the job imported.
    import mlflow.artifacts

    from retrain.registry.tracking import model_requirements

    requirements = mlflow.artifacts.download_artifacts(
        artifact_uri=f"models:/{spec.name}/{first['model_version']}/requirements.txt", dst_path=str(tmp_path / "req")
    )
    assert Path(requirements).read_text().split() == model_requirements()


def running_runs(client, experiment: str) -> list:
    found = client.get_experiment_by_name(experiment)
    return client.search_runs([found.experiment_id], "attributes.status = 'RUNNING'") if found else []


def test_a_killed_job_promotes_nothing_and_leaves_the_partition_intact(prepared, tmp_path, registry, mlflow_client):
    spec, partition = prepared
    result = tmp_path / "result.json"
    process = run_job(spec, partition, result, "manual__killed", "code-k", start_new_session=True,
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    # Killed mid-job: once its MLflow run is open (fitting and logging still to come), not after a fixed sleep
    # that a fast job outlives.
    deadline = time.monotonic() + 120
    while not running_runs(mlflow_client, f"retrain/{spec.name}"):
        assert process.poll() is None and time.monotonic() < deadline, "the job ended before its run was seen"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode != 0
    assert not result.exists()
    assert registry.aliases(spec.name) == {CHAMPION_ALIAS: None, PREVIOUS_ALIAS: None}
    assert sorted(p.name for p in partition.path.iterdir()) == ["_manifest.json", "holdout.parquet", "train.parquet"]
