"""Every DAG file imports cleanly and every DAG carries what operators of a cluster rely on."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from airflow.sdk.definitions.param import ParamValidationError

from tests.support import REPO, TASKS

MANUAL_DAGS = {"retrain_rollback"}


def dagbag(specs_dir: Path | None = None):
    from airflow.dag_processing.dagbag import DagBag

    if specs_dir is not None:
        os.environ["RETRAIN_SPECS_DIR"] = str(specs_dir)
    try:
        return DagBag(dag_folder=str(REPO / "dags"))
    finally:
        os.environ["RETRAIN_SPECS_DIR"] = str(REPO / "include" / "models")


@pytest.fixture(scope="module")
def bag():
    return dagbag()


def test_no_import_errors(bag):
    assert bag.import_errors == {}
    assert {"retrain_churn", "retrain_rollback"} <= set(bag.dag_ids)


def test_every_dag_has_tags_owner_retries_and_a_deliberate_schedule(bag):
    for dag_id, dag in bag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        assert "retrain" in dag.tags
        assert "retries" in dag.default_args, f"{dag_id} does not set retries"
        for task in dag.tasks:
            assert task.owner not in (None, "", "airflow"), f"{dag_id}.{task.task_id} has no owner"
        if dag_id in MANUAL_DAGS:
            assert dag.schedule is None, f"{dag_id} is manual-only and must not be scheduled"
        else:
            assert dag.schedule is not None, f"{dag_id} has no schedule"
            assert dag.catchup is False and dag.max_active_runs == 1
            assert dag.default_args["retries"] >= 1


def test_retraining_chain_and_pools(bag):
    dag = bag.dags["retrain_churn"]
    assert [t.task_id for t in dag.topological_sort()] == TASKS
    for upstream, downstream in itertools.pairwise(TASKS):
        assert dag.get_task(upstream).downstream_task_ids == {downstream}
    assert dag.get_task("train").pool == "retrain_training"
    assert dag.get_task("promote").pool == "retrain_promotion"
    assert [a.uri for a in dag.get_task("promote").outlets] == ["mlflow://models/churn"]
    assert dag.doc_md and "champion" in dag.doc_md


def test_trigger_form_params_have_titles_and_descriptions(bag):
    dag = bag.dags["retrain_churn"]
    assert set(dag.params) == {"end_date", "force", "force_promote", "dry_run", "estimator_params"}
    for name in dag.params:
        param = dag.params.get_param(name)
        assert param.schema.get("title") and param.description, name
    rollback = bag.dags["retrain_rollback"]
    assert rollback.params.get_param("model_name").schema["enum"] == ["churn"]


def test_trigger_form_values_are_checked_under_the_declared_dialect(bag):
    """The Params declare JSON Schema draft 7 (cheaper to parse): the form's values are still checked."""
    params = bag.dags["retrain_churn"].params
    assert {params.get_param(n).schema["$schema"] for n in params} == {"http://json-schema.org/draft-07/schema#"}
    end_date, overrides = params.get_param("end_date"), params.get_param("estimator_params")
    assert end_date.resolve("2025-05-01") == "2025-05-01" and end_date.resolve(None) is None
    for bad in ("2025-13-01", "yesterday", 20250501):
        with pytest.raises(ParamValidationError):
            end_date.resolve(bad)
    assert overrides.resolve({"max_iter": 5}) == {"max_iter": 5}
    with pytest.raises(ParamValidationError):
        overrides.resolve("max_iter=5")
    with pytest.raises(ParamValidationError):
        params.get_param("force").resolve("yes")


def test_a_bad_spec_gives_a_clear_error_and_does_not_break_the_others(tmp_path):
    shutil.copy(REPO / "include" / "models" / "churn.yaml", tmp_path / "churn.yaml")
    (tmp_path / "broken.yaml").write_text(
        (REPO / "include" / "models" / "churn.yaml")
        .read_text()
        .replace("name: churn", "name: broken")
        .replace("lookback_days: 56", "lookback_days: fifty-six")
    )
    bag = dagbag(tmp_path)
    assert bag.import_errors == {}
    assert "retrain_churn" in bag.dag_ids
    broken = bag.dags["retrain_broken"]
    assert "invalid-spec" in broken.tags and broken.schedule is None
    assert "broken.yaml" in broken.doc_md and "field 'data.lookback_days'" in broken.doc_md


def test_parsing_imports_no_heavy_library():
    code = (
        "import runpy, sys, json; runpy.run_path(sys.argv[1]);"
        "print(json.dumps(sorted(m for m in ('sklearn', 'pandas', 'mlflow', 'great_expectations', 'scipy', 'kubernetes')"
        " if m in sys.modules)))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "plugins"), str(REPO / "include")])}
    out = subprocess.run(
        [sys.executable, "-c", code, str(REPO / "dags" / "retrain_models.py")],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
