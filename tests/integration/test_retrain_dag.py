"""Whole DAG runs with dag.test() against a real MLflow server, real files and the local training backend.

Each test registers its own model (a fresh spec name), so tests share one server without sharing state.
Assertions are on task states and on the registry, never on an exit code alone.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from retrain.registry import CHAMPION_ALIAS, PREVIOUS_ALIAS
from retrain.tags import Tag
from tests.support import TASKS, artifacts, run_dag, run_rollback, write_spec

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("airflow_db", "mlflow_server")]

NIGHT_1 = dt.date(2025, 5, 1)
NIGHT_2 = dt.date(2025, 5, 2)


def model_name(spec_path: Path) -> str:
    return spec_path.stem


def test_first_run_trains_registers_and_promotes(spec_dir, registry, mlflow_client):
    spec_path = write_spec(spec_dir)
    name = model_name(spec_path)
    states, dag_run = run_dag(spec_path, NIGHT_1)
    assert states == dict.fromkeys(TASKS, "success")
    assert str(dag_run.state) == "success"

    champion = registry.champion(name)
    assert champion.version == "1"
    tags = champion.tags
    assert tags[Tag.DECISION] == "promoted" and tags[Tag.PASSED_EVALUATION] == "true"
    assert tags[Tag.DAG_ID] == f"retrain_{name}"
    assert tags[Tag.RUN_ID] == dag_run.run_id
    assert tags[Tag.WINDOW_END] == "2025-05-01"
    assert len(tags[Tag.INPUT_HASH]) == 64 and tags[Tag.CODE_VERSION]
    assert "no champion" in tags[Tag.REASONS].lower()
    assert tags[Tag.TRIGGER] == "manual" and tags[Tag.TRIGGER_REASON] == ""  # dag.test() makes a manual run

    run = mlflow_client.get_run(champion.run_id)
    assert run.data.metrics["roc_auc"] > 0.6
    assert {i.dataset.digest for i in run.inputs.dataset_inputs} == {
        tags[Tag.TRAIN_HASH][:32],
        tags[Tag.HOLDOUT_HASH][:32],
    }
    artifact_paths = {a.path for a in mlflow_client.list_artifacts(champion.run_id, "reports")}
    assert {"reports/validation.html", "reports/evaluation.html", "reports/evaluation.json"} <= artifact_paths

    partitions = sorted(p.name for p in (artifacts(name) / "features").iterdir())
    assert partitions == ["end_date=2025-05-01"]
    evaluation = json.loads(
        next((artifacts(name) / "reports" / "end_date=2025-05-01").glob("*/evaluation.json")).read_text()
    )
    assert evaluation["promote"] is True and evaluation["champion_version"] is None


def test_rerun_of_the_same_date_reuses_the_version_and_the_partition(spec_dir, registry):
    spec_path = write_spec(spec_dir)
    name = model_name(spec_path)
    run_dag(spec_path, NIGHT_1)
    states, _ = run_dag(spec_path, NIGHT_1)
    assert states["train"] == "success" and states["evaluate"] == "success"
    assert states["promote"] == "skipped"  # already champion: nothing to promote, no Asset event
    versions = registry.versions(name)
    assert [v.version for v in versions] == ["1"]
    assert sorted(p.name for p in (artifacts(name) / "features").iterdir()) == ["end_date=2025-05-01"]


def test_worse_challenger_is_declined_and_champion_kept(spec_dir, registry):
    spec_path = write_spec(spec_dir)
    name = model_name(spec_path)
    run_dag(spec_path, NIGHT_1)
    states, _ = run_dag(spec_path, NIGHT_2, estimator_params={"max_iter": 3, "learning_rate": 0.01})
    assert states["evaluate"] == "success" and states["promote"] == "skipped"
    assert registry.champion(name).version == "1"
    declined = registry.version(name, "2")
    assert declined.tags[Tag.DECISION] == "declined"
    assert declined.tags[Tag.PASSED_EVALUATION] == "false"
    assert "vs champion" in declined.tags[Tag.REASONS]
    assert registry.aliases(name)[PREVIOUS_ALIAS] is None


def test_better_challenger_promotes_and_previous_is_set_then_rollback_restores(spec_dir, registry):
    spec_path = write_spec(spec_dir, **{"promotion.min_score": 0.5})
    name = model_name(spec_path)
    run_dag(spec_path, NIGHT_1, estimator_params={"max_iter": 2, "learning_rate": 0.02, "max_depth": 1})
    assert registry.champion(name).version == "1"
    states, _ = run_dag(spec_path, NIGHT_2)
    assert states["promote"] == "success"
    assert registry.aliases(name) == {CHAMPION_ALIAS: "2", PREVIOUS_ALIAS: "1"}

    assert run_rollback(spec_dir, model_name=name, reason="v2 misbehaves in production") == {"rollback": "success"}
    assert registry.aliases(name) == {CHAMPION_ALIAS: "1", PREVIOUS_ALIAS: "2"}
    assert registry.version(name, "1").tags[Tag.ROLLBACK_REASON] == "v2 misbehaves in production"


def test_dry_run_evaluates_and_records_but_moves_nothing(spec_dir, registry):
    spec_path = write_spec(spec_dir)
    name = model_name(spec_path)
    states, _ = run_dag(spec_path, NIGHT_1, dry_run=True)
    assert states["evaluate"] == "success" and states["promote"] == "skipped"
    assert registry.aliases(name) == {CHAMPION_ALIAS: None, PREVIOUS_ALIAS: None}
    assert registry.version(name, "1").tags[Tag.DECISION] == "dry_run_would_promote"


def test_force_promote_overrides_comparison_and_is_recorded(spec_dir, registry):
    spec_path = write_spec(spec_dir, **{"promotion.min_score": 0.5})
    name = model_name(spec_path)
    run_dag(spec_path, NIGHT_1)
    states, _ = run_dag(spec_path, NIGHT_2, force_promote=True, estimator_params={"max_iter": 3, "max_depth": 1})
    assert states["promote"] == "success"
    assert registry.aliases(name) == {CHAMPION_ALIAS: "2", PREVIOUS_ALIAS: "1"}
    assert registry.version(name, "2").tags[Tag.FORCED] == "true"


def test_concurrent_alias_change_is_detected_and_nothing_changes(spec_dir, registry):
    spec_path = write_spec(spec_dir)
    name = model_name(spec_path)
    run_dag(spec_path, NIGHT_1)
    run_dag(spec_path, NIGHT_2, estimator_params={"max_iter": 3})  # version 2, declined
    from retrain.errors import PromotionConflictError

    # Evaluation saw no champion; meanwhile v1 became champion: promoting v2 must refuse.
    with pytest.raises(
        PromotionConflictError, match="points to version 1 but evaluation compared against version None"
    ):
        registry.promote(name, "2", expected_champion=None)
    assert registry.aliases(name) == {CHAMPION_ALIAS: "1", PREVIOUS_ALIAS: None}


def test_rollback_refuses_a_version_that_never_passed_evaluation(spec_dir, registry):
    spec_path = write_spec(spec_dir)
    name = model_name(spec_path)
    run_dag(spec_path, NIGHT_1)
    run_dag(spec_path, NIGHT_2, estimator_params={"max_iter": 3})  # declined
    states = run_rollback(spec_dir, model_name=name, target_version=2, reason="try the declined one")
    assert states == {"rollback": "failed"}
    assert registry.aliases(name)[CHAMPION_ALIAS] == "1"
