"""End to end, as users run it: the real Airflow API server, scheduler and UI in a real browser,
with a real MLflow server. Assertions are on task states and on the registry, not on exit codes."""

from __future__ import annotations

import datetime as dt
import json
import subprocess

import pytest
from mlflow import MlflowClient

from retrain.registry import CHAMPION_ALIAS
from tests.e2e.conftest import ARTIFACTS, BROKEN_MODEL, E2E_MODEL, postgres_processes, signed_in_page
from tests.support import REPO, TASKS

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def trigger(stack, dag_id: str, conf: dict) -> str:
    stack.request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
    # No logical date, as the UI does by default: the window end comes from conf (the form's end_date).
    run = stack.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf})
    return run["dag_run_id"]


def test_the_stack_runs_on_postgresql_and_a_second_start_starts_nothing(stack):
    stack_sh = ["bash", str(REPO / "scripts" / "stack.sh")]
    data = stack.root / "postgres" / "data"
    (postmaster,) = postgres_processes(data)
    pid_files = {p.name: p.read_text() for p in (stack.root / "pids").iterdir()}
    assert set(pid_files) == {
        f"{name}.pid" for name in ("postgres", "mlflow", "api-server", "scheduler", "dag-processor", "triggerer")
    }
    # Airflow's metadata is in the cluster's `airflow` database: the DAGs the API lists are rows there.
    listed = set(stack.wait_for_dags(f"retrain_{E2E_MODEL}"))
    assert listed <= {dag_id for (dag_id,) in stack.sql("airflow", "SELECT dag_id FROM dag")}

    again = subprocess.run([*stack_sh, "start"], env=stack.env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "already running" in again.stdout and "postgres: running" in again.stdout
    assert postgres_processes(data) == [postmaster], "a second start must not start a second server"
    assert {p.name: p.read_text() for p in (stack.root / "pids").iterdir()} == pid_files

    status = subprocess.run([*stack_sh, "status"], env=stack.env, capture_output=True, text=True, timeout=60)
    assert status.returncode == 0, status.stdout
    assert f"postgres: running (pid {postmaster}, 127.0.0.1:" in status.stdout


def test_rest_lists_dags_triggers_a_retraining_and_the_registry_has_a_champion(stack):
    dags = stack.wait_for_dags(f"retrain_{E2E_MODEL}", f"retrain_{BROKEN_MODEL}", "retrain_rollback")
    assert "retrain" in {tag["name"] for tag in dags[f"retrain_{E2E_MODEL}"]["tags"]}
    run_id = trigger(stack, f"retrain_{E2E_MODEL}", {"end_date": "2025-05-01"})
    run = stack.wait_for_run(f"retrain_{E2E_MODEL}", run_id)
    states = stack.task_states(f"retrain_{E2E_MODEL}", run_id)
    assert run["state"] == "success", states
    assert states == dict.fromkeys(TASKS, "success")
    champion = MlflowClient(stack.mlflow).get_model_version_by_alias(E2E_MODEL, CHAMPION_ALIAS)
    assert champion.version == "1"
    assert champion.tags["airflow.run_id"] == run_id
    assert champion.tags["retrain.window_end"] == "2025-05-01"
    # Both stores are the PostgreSQL cluster's: the run in `airflow`, the registered model in `mlflow`.
    assert stack.sql("airflow", "SELECT state FROM dag_run WHERE run_id = %s", run_id) == [("success",)]
    assert (E2E_MODEL,) in stack.sql("mlflow", "SELECT name FROM registered_models")


def test_a_run_that_fails_validation_shows_why_in_the_task_log(stack):
    dag_id = f"retrain_{BROKEN_MODEL}"
    stack.wait_for_dags(dag_id)
    run_id = trigger(stack, dag_id, {"end_date": "2025-05-01"})
    run = stack.wait_for_run(dag_id, run_id)
    states = stack.task_states(dag_id, run_id)
    assert run["state"] == "failed"
    assert states["validate_data"] == "failed"
    assert {states[t] for t in TASKS[1:]} == {"upstream_failed"}
    log = stack.request(
        "GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/validate_data/logs/1?full_content=true"
    )
    text = json.dumps(log)
    (ARTIFACTS / "validate_data.log.json").write_text(text)
    assert "DataValidationError" in text
    assert "expect_column_values_to_not_be_null" in text and "churned" in text
    assert "expect_column_values_to_be_in_set" in text and "n0rth" in text
    assert not MlflowClient(stack.mlflow).search_model_versions(f"name='{BROKEN_MODEL}'")


def test_browser_login_trigger_form_shows_every_param_and_the_run_succeeds(stack):
    from playwright.sync_api import expect

    from retrain.spec import load_spec
    from retrain_operators.dag_factory import trigger_params
    from tests.support import REPO

    dag_id = f"retrain_{E2E_MODEL}"
    stack.wait_for_dags(dag_id)
    before = {r["dag_run_id"] for r in stack.request("GET", f"/api/v2/dags/{dag_id}/dagRuns")["dag_runs"]}
    params = trigger_params(load_spec(REPO / "include" / "models" / "churn.yaml"))
    with signed_in_page(stack, f"/dags/{dag_id}", then=f"**/dags/{dag_id}**") as page:
        page.screenshot(path=ARTIFACTS / "1-dag-page.png")
        page.get_by_role("button", name="Trigger").first.click()
        dialog = page.get_by_role("dialog")
        expect(dialog).to_be_visible(timeout=30_000)
        titles = [param.schema["title"] for param in params.values()]
        if not dialog.get_by_text(titles[0], exact=True).first.is_visible():
            dialog.get_by_role("button", name="Run Parameters").click()
        (ARTIFACTS / "trigger-form.aria.yaml").write_text(dialog.aria_snapshot())
        for param in params.values():
            # Title and description shown together, in the field's own group.
            field = (
                dialog.get_by_role("group").filter(has_text=param.schema["title"]).filter(has_text=param.description)
            )
            expect(field.first).to_be_visible(timeout=15_000)
        page.screenshot(path=ARTIFACTS / "2-trigger-form.png", full_page=True)
        end_date = (
            dialog.get_by_role("group").filter(has_text=params["end_date"].schema["title"]).get_by_role("textbox")
        )
        end_date.fill("2025-05-02")
        dialog.get_by_role("button", name="Trigger").last.click()
        expect(dialog).to_be_hidden(timeout=30_000)
        new_runs: set[str] = set()
        deadline = dt.datetime.now() + dt.timedelta(seconds=60)
        while not new_runs and dt.datetime.now() < deadline:
            runs = stack.request("GET", f"/api/v2/dags/{dag_id}/dagRuns")["dag_runs"]
            new_runs = {r["dag_run_id"] for r in runs} - before
            page.wait_for_timeout(1000)
        assert len(new_runs) == 1, "submitting the form must create exactly one run"
        (run_id,) = new_runs
        run = stack.wait_for_run(dag_id, run_id)
        assert run["state"] == "success", stack.task_states(dag_id, run_id)
        assert set(stack.task_states(dag_id, run_id)) == set(TASKS)
        # The form's end date reached the job: the version this run registered was trained on that window.
        versions = MlflowClient(stack.mlflow).search_model_versions(f"name='{E2E_MODEL}'")
        (trained,) = [v for v in versions if v.tags.get("airflow.run_id") == run_id]
        assert trained.tags["retrain.window_end"] == "2025-05-02"
        page.goto(f"{stack.api}/dags/{dag_id}/runs/{run_id}")
        expect(page.get_by_text("success").first).to_be_visible(timeout=30_000)
        page.screenshot(path=ARTIFACTS / "3-run-succeeded.png", full_page=True)
