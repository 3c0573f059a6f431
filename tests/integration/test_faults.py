"""Faults with real components: the MLflow server really stops (and restarts on the same store).

Promise under test: whatever fails, the champion is a model that passed every gate, nothing is
registered twice, and a rerun completes what was interrupted.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import pytest
from mlflow import MlflowClient

from retrain.data import read_window
from retrain.errors import RegistryError
from retrain.features import build_partition
from retrain.invocation import training_invocation
from retrain.registry import Registry
from retrain.spec import load_spec
from retrain.tags import Decision, Tag
from retrain.window import Window
from tests.support import TASKS, MlflowServer, bare_run, run_dag, tracking, write_spec

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.usefixtures("airflow_db")]


@pytest.fixture
def own_server(tmp_path):
    """A server this test may stop and restart (same port, same store); the env points at it."""
    with tracking(MlflowServer(tmp_path / "mlflow").start()) as server:
        yield server


def test_registry_down_during_a_run_fails_it_changes_nothing_and_a_rerun_completes(spec_dir, own_server):
    spec_path = write_spec(spec_dir)
    name = spec_path.stem
    states, _ = run_dag(spec_path, dt.date(2025, 5, 1))
    assert states == dict.fromkeys(TASKS, "success")

    own_server.stop()
    states, _ = run_dag(spec_path, dt.date(2025, 5, 2))
    assert states["validate_data"] == "success"  # validation needs no registry
    assert states["check_drift"] == "failed"  # the champion's reference data lives in MLflow
    assert {states[t] for t in TASKS[2:]} == {"upstream_failed"}

    server = own_server.start()  # same port, same store
    client = MlflowClient(server.uri)
    assert Registry(client=client).aliases(name) == {"champion": "1", "previous": None}
    assert [v.version for v in client.search_model_versions(f"name='{name}'")] == ["1"]

    states, _ = run_dag(spec_path, dt.date(2025, 5, 2))
    assert {states[t] for t in TASKS[:5]} == {"success"}
    versions = {v.version: v for v in client.search_model_versions(f"name='{name}'")}
    assert set(versions) == {"1", "2"}
    assert versions["2"].tags[Tag.DECISION] in {"promoted", "declined"}


def test_registry_down_during_evaluation_promotes_nothing_and_a_rerun_reuses_the_version(spec_dir, own_server):
    spec_path = write_spec(spec_dir)
    name = spec_path.stem
    run_dag(spec_path, dt.date(2025, 5, 1))

    states, _ = run_dag(spec_path, dt.date(2025, 5, 2), before_task={"evaluate": lambda context: own_server.stop()})
    assert {states[t] for t in TASKS[:4]} == {"success"}
    assert states["evaluate"] == "failed" and states["promote"] == "upstream_failed"

    client = MlflowClient(own_server.start().uri)
    assert Registry(client=client).aliases(name) == {"champion": "1", "previous": None}
    trained = client.get_model_version(name, "2")
    assert trained.tags.get(Tag.PASSED_EVALUATION) != "true", "an unevaluated version must not be promotable"

    states, _ = run_dag(spec_path, dt.date(2025, 5, 2))
    assert {states[t] for t in TASKS[:5]} == {"success"}
    versions = {v.version: v for v in client.search_model_versions(f"name='{name}'")}
    assert set(versions) == {"1", "2"}, "the rerun reuses the trained version instead of registering another"
    assert versions["2"].tags[Tag.DECISION] in {"promoted", "declined"}


def test_registry_down_between_the_two_alias_writes_then_a_rerun_completes_the_promotion(spec_dir, own_server):
    spec_path = write_spec(spec_dir)
    name = spec_path.stem
    run_dag(spec_path, dt.date(2025, 5, 1))
    states, _ = run_dag(spec_path, dt.date(2025, 5, 2), dry_run=True)
    assert states["promote"] == "skipped"
    assert Registry(own_server.uri).aliases(name) == {"champion": "1", "previous": None}

    class ServerDiesAfterFirstWrite(MlflowClient):
        def set_registered_model_alias(self, *args, **kwargs):
            super().set_registered_model_alias(*args, **kwargs)
            own_server.stop()

    with pytest.raises(Exception, match=r"previous|Max retries|Connection|API request"):
        Registry(client=ServerDiesAfterFirstWrite(own_server.uri)).promote(name, "2", expected_champion="1")

    server = own_server.start()  # same port, same store
    client = MlflowClient(server.uri)
    # Interrupted after the first write: champion moved, previous not yet. The task fails (and is retried).
    assert Registry(client=client).aliases(name) == {"champion": "2", "previous": None}
    assert Registry(client=client).promote(name, "2", expected_champion="1") == {"champion": "2", "previous": "1"}
    # A third attempt is a no-op that reads back the same state.
    assert Registry(client=client).promote(name, "2", expected_champion="1") == {"champion": "2", "previous": "1"}


def test_training_with_the_registry_down_fails_clearly_and_writes_no_result(spec_dir, tmp_path, own_server):
    spec = load_spec(write_spec(spec_dir, **{"model.params": {"max_iter": 20}}))
    window = Window.ending(dt.date(2025, 5, 1), spec.data)
    frame = read_window(spec, window, columns=[*spec.features.columns, spec.target]).frame
    partition = build_partition(frame, spec, window, tmp_path / "features" / window.partition)  # as the task does
    own_server.stop()
    result = tmp_path / "return.json"
    invocation = training_invocation(
        spec,
        bare_run(spec, dt.date(2025, 5, 1), "manual__registry_down"),
        task_id="train",
        features_dir=str(partition.path),
        result_path=str(result),
    )
    done = subprocess.run(
        invocation.command(sys.executable),
        env={**os.environ, **invocation.env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1
    assert "training failed" in done.stdout
    assert own_server.uri.removeprefix("http://") in done.stdout, (
        "the message must name the registry it could not reach"
    )
    assert not result.exists()
    server = own_server.start()  # same port, same store
    assert MlflowClient(server.uri).search_model_versions(f"name='{spec.name}'") == []
    assert Registry(server.uri).aliases(spec.name) == {"champion": None, "previous": None}


def test_a_champion_history_entry_that_cannot_be_written_moves_no_alias_and_a_retry_completes(own_server):
    """The history entry is written before the alias moves, with the same guard: the registry stops right
    before the entry is written (promotion, then rollback), and nothing moves."""
    name = "history_fault"
    client = MlflowClient(own_server.uri)
    client.create_registered_model(name)
    for _ in range(2):  # two READY versions, no training needed for the registry's own rules
        client.create_model_version(name, source="s3://example-bucket/models/history_fault")
    registry = Registry(client=client)
    # Version 1 passed the policy in a real run, as promote's evaluation would tag it: one rollback restores.
    registry.set_tags(name, "1", {Tag.PASSED_EVALUATION: "true", Tag.DECISION: Decision.PROMOTED})
    registry.promote(name, "1", expected_champion=None, run_id="manual__1")

    class RegistryStopsBeforeTheHistoryWrite(MlflowClient):
        def set_registered_model_tag(self, *args, **kwargs):
            own_server.stop()
            return super().set_registered_model_tag(*args, **kwargs)

    failing = Registry(client=RegistryStopsBeforeTheHistoryWrite(own_server.uri))
    with pytest.raises(RegistryError, match=r"champion history entry \(promotion to version 2\) could not be written, so no alias moved"):
        failing.promote(name, "2", expected_champion="1", run_id="manual__2")
    registry = Registry(client=MlflowClient(own_server.start().uri))
    assert registry.aliases(name) == {"champion": "1", "previous": None}
    assert [(m.from_version, m.to_version) for m in registry.champion_history(name)] == [(None, "1")]

    # The task's retry, with the registry back: the move and its entry, once.
    assert registry.promote(name, "2", expected_champion="1", run_id="manual__2") == {"champion": "2", "previous": "1"}
    assert [(m.from_version, m.to_version) for m in registry.champion_history(name)] == [(None, "1"), ("1", "2")]

    with pytest.raises(RegistryError, match=r"\(rollback to version 1\) could not be written, so no alias moved"):
        failing.rollback(name, None, "v2 misbehaves", "ops", run_id="manual__rollback")
    registry = Registry(client=MlflowClient(own_server.start().uri))
    assert registry.aliases(name) == {"champion": "2", "previous": "1"}
    assert [m.kind for m in registry.champion_history(name)] == ["promotion", "promotion"]
