"""The scoring and monitoring DAGs and the retraining DAG's schedule, as Airflow parses them from the specs."""

from __future__ import annotations

import copy

import pytest
import yaml
from airflow.sdk import Asset, AssetOrTimeSchedule

from retrain.pipeline import task_ids
from retrain.spec import parse_spec
from retrain_operators.dag_factory import build_retrain_dag, build_spec_dags
from tests.dags.test_dag_integrity import dagbag
from tests.support import DEMO_SPEC

DEMO = yaml.safe_load(DEMO_SPEC.read_text())


@pytest.fixture(scope="module")
def bag():
    return dagbag()


def asset_names(condition) -> set[str]:
    if isinstance(condition, Asset):
        return {condition.name}
    return {name for inner in condition.objects for name in asset_names(inner)}


def test_the_demo_spec_gives_retrain_score_and_monitor_dags(bag):
    assert bag.import_errors == {}
    assert {"retrain_churn", "score_churn", "monitor_churn"} <= set(bag.dag_ids)
    assert [t.task_id for t in bag.dags["score_churn"].topological_sort()] == task_ids(pipeline="score")
    assert [t.task_id for t in bag.dags["monitor_churn"].topological_sort()] == task_ids(pipeline="monitor")
    for dag_id in ("score_churn", "monitor_churn"):
        assert set(bag.dags[dag_id].params) == {"date"}
        assert "retrain" in bag.dags[dag_id].tags and "model:churn" in bag.dags[dag_id].tags


def test_retraining_runs_on_its_cron_and_on_data_and_request_events(bag):
    timetable = bag.dags["retrain_churn"].timetable
    assert isinstance(timetable, AssetOrTimeSchedule)
    assert timetable.timetable.expression == "0 2 * * *"  # the cron stays
    assert asset_names(timetable.asset_condition) == {"data_churn", "retrain_request_churn"}


def test_scoring_runs_on_its_cron_and_on_every_promotion_and_the_monitor_emits_requests(bag):
    score = bag.dags["score_churn"].timetable
    assert isinstance(score, AssetOrTimeSchedule) and score.timetable.expression == "0 6 * * *"
    assert asset_names(score.asset_condition) == {"model_churn"}
    promote = bag.dags["retrain_churn"].get_task("promote")
    assert [a.name for a in promote.outlets] == ["model_churn"]  # what scoring listens to
    request = bag.dags["monitor_churn"].get_task("request_retraining")
    assert [a.name for a in request.outlets] == ["retrain_request_churn"]
    assert bag.dags["monitor_churn"].timetable.expression == "0 7 * * *"
    for task in bag.dags["monitor_churn"].tasks:
        if task.task_id != "request_retraining":
            assert not task.outlets


def spec_with(drop: tuple[str, ...] = (), **schedule):
    document = copy.deepcopy(DEMO)
    document["schedule"].update(schedule)
    for key in drop:
        document["schedule"].pop(key)
    return parse_spec(document)


def test_events_are_the_spec_s_choice_and_the_default_is_the_cron_alone(tmp_path):
    default = build_retrain_dag(spec_with(drop=("events",)), DEMO_SPEC)
    assert default.timetable.__class__.__name__ == "CronTriggerTimetable"
    only_data = build_retrain_dag(spec_with(events=["data"]), DEMO_SPEC)
    assert asset_names(only_data.timetable.asset_condition) == {"data_churn"}
    no_cron = build_retrain_dag(spec_with(events=["monitoring"], cron=None), DEMO_SPEC)
    assert asset_names(no_cron.timetable.asset_condition) == {"retrain_request_churn"}
    assert not isinstance(no_cron.timetable, AssetOrTimeSchedule)


def test_a_ready_file_puts_an_asset_watcher_on_the_data_asset(tmp_path):
    marker = tmp_path / "_READY"
    dag = build_retrain_dag(spec_with(ready_file=str(marker)), DEMO_SPEC)
    (data,) = [a for a in dag.timetable.asset_condition.objects if a.name == "data_churn"]
    (watcher,) = data.watchers
    assert watcher.trigger.__class__.__name__ == "FileDeleteTrigger"
    assert watcher.trigger.serialize()[1]["filepath"] == str(marker)


def test_specs_without_the_sections_get_the_retraining_dag_only():
    document = copy.deepcopy(DEMO)
    for key in ("scoring", "monitoring"):
        document.pop(key)
    assert [d.dag_id for d in build_spec_dags(parse_spec(document), DEMO_SPEC)] == ["retrain_churn"]
