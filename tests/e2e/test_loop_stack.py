"""The loop on the real stack (scheduler, DAG processor, triggerer, API server, MLflow): a promotion starts scoring
by itself; labels land and the monitor asks for exactly one retraining, tagged `monitoring`; a quiet day asks
nothing; an event on the data Asset (REST, or an AssetWatcher's ready file) starts exactly one retraining.

Every run here comes from an asset event or a test's REST call: the e2e specs have no cron. To keep the stack's
time short, the data events go to a second model whose runs stop at validation (the loop's model retrains in
full for the monitor), and the watcher's file is written when the module starts."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from retrain.pipeline import task_ids
from retrain.registry import CHAMPION_ALIAS
from retrain.spec import load_spec
from retrain.tags import Decision, Tag
from tests.e2e.conftest import DATA_MODEL, LOOP_MODEL
from tests.support import DEMO_LABELS, TASKS

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
RETRAIN, SCORE, MONITOR = (f"{p}_{LOOP_MODEL}" for p in ("retrain", "score", "monitor"))
SCORED_DAY = "2025-04-30"  # the promotion of a model trained up to 2025-05-01 re-scores the day before
# The monitor runs for a later day (its lookback reaches back to the scored day), so its request asks for a window
# of its own, not the champion's (which the training job would only reuse).
MONITORED_DAY = "2025-05-03"


def run_ids(stack, dag_id: str) -> dict[str, dict]:
    runs = stack.request("GET", f"/api/v2/dags/{dag_id}/dagRuns?limit=100")["dag_runs"]
    return {r["dag_run_id"]: r for r in runs}


def new_run(stack, dag_id: str, before: set[str], timeout: float = 240) -> dict:
    """The one run of `dag_id` that is not in `before`, once the scheduler has created it."""
    deadline = time.monotonic() + timeout
    while True:
        created = {k: v for k, v in run_ids(stack, dag_id).items() if k not in before}
        if created:
            assert len(created) == 1, f"one event, yet several runs of {dag_id}: {sorted(created)}"
            return next(iter(created.values()))
        assert time.monotonic() < deadline, f"no new run of {dag_id} after {timeout}s"
        time.sleep(2)


def settle(stack, dag_id: str, expected: set[str], seconds: float = 10) -> None:
    """Nothing more comes: after `seconds` (several scheduler loops) the runs of `dag_id` are still `expected`."""
    time.sleep(seconds)
    assert set(run_ids(stack, dag_id)) == expected, f"unexpected runs of {dag_id}"
    assert stack.request("GET", f"/api/v2/dags/{dag_id}/assets/queuedEvents").get("queued_events", []) == []


def output(stack, dag_id: str, run_id: str, task_id: str) -> dict:
    entry = stack.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value")
    value = entry["value"]
    return json.loads(value) if isinstance(value, str) else value


def finished(stack, dag_id: str, run: dict) -> dict:
    done = stack.wait_for_run(dag_id, run["dag_run_id"])
    return {**done, "tasks": stack.task_states(dag_id, run["dag_run_id"])}


def asset_id(stack, name: str) -> int:
    (asset,) = [a for a in stack.request("GET", f"/api/v2/assets?name_pattern={name}")["assets"] if a["name"] == name]
    return asset["id"]


def spec_of(stack, name: str):
    return load_spec(Path(stack.env["RETRAIN_SPECS_DIR"]) / f"{name}.yaml")


def land_labels(stack, day: str, flipped: bool) -> None:
    """The day's labels arrive in the spec's label folder (flipped: every label wrong, the live metric collapses)."""
    folder = Path(spec_of(stack, LOOP_MODEL).monitoring.labels.uri)
    folder.mkdir(parents=True, exist_ok=True)
    labels = pd.read_parquet(DEMO_LABELS / f"labels_{day}.parquet")
    if flipped:
        labels["churned"] = 1 - labels["churned"]
    labels.to_parquet(folder / f"labels_{day}.parquet", index=False)


@pytest.fixture(scope="module")
def loop(stack):
    stack.wait_for_dags(RETRAIN, SCORE, MONITOR, f"retrain_{DATA_MODEL}")
    for dag_id in (RETRAIN, SCORE, MONITOR):  # asset events queue runs of unpaused DAGs only
        stack.request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
    # The watcher's test reads what this starts: the triggerer watches the file once the DAG is unpaused and parsed.
    watch = f"retrain_{DATA_MODEL}"
    WATCHED["before"] = set(run_ids(stack, watch))
    stack.request("PATCH", f"/api/v2/dags/{watch}", {"is_paused": False})
    marker = Path(spec_of(stack, DATA_MODEL).schedule.ready_file)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text("2025-05-01 export complete\n")
    yield stack
    for dag_id in (RETRAIN, SCORE, MONITOR, watch):  # leave the stack idle for the next module's tests
        for run_id, run in run_ids(stack, dag_id).items():
            if run["state"] not in ("success", "failed"):
                stack.wait_for_run(dag_id, run_id)


WATCHED: dict[str, set[str]] = {}


def test_a_promotion_starts_scoring_by_itself_with_the_new_version(loop):
    stack = loop
    scores_before = set(run_ids(stack, SCORE))
    run = stack.request("POST", f"/api/v2/dags/{RETRAIN}/dagRuns", {"logical_date": None, "conf": {"end_date": "2025-05-01"}})
    trained = finished(stack, RETRAIN, run)
    assert trained["state"] == "success" and trained["tasks"] == dict.fromkeys(TASKS, "success"), trained["tasks"]
    champion = MlflowClient(stack.mlflow).get_model_version_by_alias(LOOP_MODEL, CHAMPION_ALIAS)

    scoring = finished(stack, SCORE, new_run(stack, SCORE, scores_before))
    assert scoring["run_type"] == "asset_triggered" and scoring["logical_date"] is None
    assert scoring["state"] == "success" and scoring["tasks"] == dict.fromkeys(task_ids(pipeline="score"), "success")
    consumed = stack.request("GET", f"/api/v2/dags/{SCORE}/dagRuns/{scoring['dag_run_id']}/upstreamAssetEvents")
    (event,) = consumed["asset_events"]
    assert event["name"] == f"model_{LOOP_MODEL}" and event["source_dag_id"] == RETRAIN
    assert event["extra"]["version"] == champion.version
    predicted = output(stack, SCORE, scoring["dag_run_id"], "predict")
    assert (predicted["version"], predicted["day"], predicted["written"]) == (champion.version, SCORED_DAY, True)
    stored = pd.read_parquet(predicted["path"])
    assert set(stored["model_version"]) == {champion.version} and set(stored["run_id"]) == {scoring["dag_run_id"]}
    settle(stack, SCORE, scores_before | {scoring["dag_run_id"]}, seconds=5)


def test_labels_land_the_monitor_asks_and_exactly_one_retraining_runs_for_monitoring(loop):
    stack = loop
    retrains_before = set(run_ids(stack, RETRAIN))
    request_asset = asset_id(stack, f"retrain_request_{LOOP_MODEL}")
    land_labels(stack, SCORED_DAY, flipped=True)
    run = stack.request("POST", f"/api/v2/dags/{MONITOR}/dagRuns", {"logical_date": None, "conf": {"date": MONITORED_DAY}})
    monitored = finished(stack, MONITOR, run)
    assert monitored["state"] == "success" and monitored["tasks"] == dict.fromkeys(task_ids(pipeline="monitor"), "success")

    events = stack.request("GET", f"/api/v2/assets/events?asset_id={request_asset}")["asset_events"]
    (event,) = [e for e in events if e["source_run_id"] == run["dag_run_id"]]
    reason = event["extra"]["reason"]
    assert reason.startswith(f"live neg_log_loss breached on 1 of the last 1 days up to {SCORED_DAY}")
    assert event["extra"]["champion_version"] == "1" and event["extra"]["days"][0]["day"] == SCORED_DAY
    assert event["extra"]["end_date"] == "2025-05-04"

    retraining = finished(stack, RETRAIN, new_run(stack, RETRAIN, retrains_before))
    assert retraining["run_type"] == "asset_triggered" and retraining["state"] == "success", retraining["tasks"]
    (version,) = [v for v in MlflowClient(stack.mlflow).search_model_versions(f"name='{LOOP_MODEL}'")
                  if v.tags.get(Tag.RUN_ID) == retraining["dag_run_id"]]  # fmt: skip
    assert version.tags[Tag.TRIGGER] == "monitoring" and version.tags[Tag.TRIGGER_REASON] == reason
    assert version.tags[Tag.WINDOW_END] == event["extra"]["end_date"]
    # The gate stays in the loop: this model does not beat the champion by min_improvement, and the report says so.
    assert version.tags[Tag.DECISION] == Decision.DECLINED
    evaluation = output(stack, RETRAIN, retraining["dag_run_id"], "evaluate")
    assert "Retraining did not help: the monitor asked for it" in Path(evaluation["reports"]["evaluation_html"]).read_text()
    settle(stack, RETRAIN, retrains_before | {retraining["dag_run_id"]})


def test_a_quiet_day_emits_nothing_and_starts_nothing(loop):
    stack = loop
    retrains_before = set(run_ids(stack, RETRAIN))
    request_asset = asset_id(stack, f"retrain_request_{LOOP_MODEL}")
    requests_before = stack.request("GET", f"/api/v2/assets/events?asset_id={request_asset}")["total_entries"]
    land_labels(stack, SCORED_DAY, flipped=False)  # the true labels replace the wrong ones
    run = stack.request("POST", f"/api/v2/dags/{MONITOR}/dagRuns", {"logical_date": None, "conf": {"date": MONITORED_DAY}})
    monitored = finished(stack, MONITOR, run)
    assert monitored["state"] == "success"
    assert monitored["tasks"] == {**dict.fromkeys(task_ids(pipeline="monitor"), "success"), "request_retraining": "skipped"}
    verdict = output(stack, MONITOR, run["dag_run_id"], "report")["verdict"]
    assert verdict["request"] is False and verdict["reason"].startswith("quiet:")
    assert stack.request("GET", f"/api/v2/assets/events?asset_id={request_asset}")["total_entries"] == requests_before
    settle(stack, RETRAIN, retrains_before)


def test_a_ready_file_seen_by_the_asset_watcher_starts_exactly_one_retraining(loop):
    stack = loop
    dag_id = f"retrain_{DATA_MODEL}"
    marker = Path(spec_of(stack, DATA_MODEL).schedule.ready_file)
    before = WATCHED["before"]  # the module's fixture wrote the file when it unpaused the DAG
    run = finished(stack, dag_id, new_run(stack, dag_id, before, timeout=180))
    assert not marker.exists(), "the triggerer deletes the file it found"
    assert run["run_type"] == "asset_triggered"
    consumed = stack.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run['dag_run_id']}/upstreamAssetEvents")
    (event,) = consumed["asset_events"]
    assert event["name"] == f"data_{DATA_MODEL}" and event["extra"]["from_trigger"] is True
    # This model's data fail validation, so its runs stop at once: one run for one event is what is tested.
    assert run["tasks"]["validate_data"] == "failed"
    settle(stack, dag_id, before | {run["dag_run_id"]})


def test_an_event_on_the_data_asset_through_the_rest_api_starts_exactly_one_retraining(loop):
    stack = loop
    dag_id = f"retrain_{DATA_MODEL}"
    before = set(run_ids(stack, dag_id))
    extra = {"end_date": "2025-05-02", "reason": "nightly export of 2025-05-01 landed"}
    posted = stack.request("POST", "/api/v2/assets/events", {"asset_id": asset_id(stack, f"data_{DATA_MODEL}"), "extra": extra})
    assert posted["extra"]["from_rest_api"] is True and posted["extra"]["reason"] == extra["reason"]
    run = finished(stack, dag_id, new_run(stack, dag_id, before))
    assert run["run_type"] == "asset_triggered" and run["tasks"]["validate_data"] == "failed"
    consumed = stack.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run['dag_run_id']}/upstreamAssetEvents")
    assert [e["id"] for e in consumed["asset_events"]] == [posted["id"]]
    # The run took its window from the event: validate_data read the window ending on the event's end_date.
    validation = output(stack, dag_id, run["dag_run_id"], "validate_data")
    assert validation["window"]["end"].startswith("2025-05-02")
    settle(stack, dag_id, before | {run["dag_run_id"]})
