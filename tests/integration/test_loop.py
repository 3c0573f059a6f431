"""The scoring and monitoring DAGs in whole runs (dag.test()) against a real MLflow server: no champion, a
champion's predictions, a rerun that changes nothing, a quiet day and a tripped policy, and bad input (no rows,
a corrupt prediction file, labels of the wrong type or without the key), each failing clearly and changing
nothing it should not."""

from __future__ import annotations

import datetime as dt
import shutil

import pandas as pd
import pytest

from retrain.assets import request_asset
from retrain.contracts import PredictionResult
from retrain.errors import StepSkipped
from retrain.pipeline import StepContext, task_ids
from retrain.scoring import prediction_path, read_predictions
from retrain.spec import load_spec
from retrain.steps import champion as resolve_champion
from tests.support import DEMO_LABELS, TASKS, bare_run, run_dag, write_spec

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("airflow_db", "mlflow_server")]
SCORE, MONITOR = task_ids(pipeline="score"), task_ids(pipeline="monitor")
BEFORE, AFTER = dt.date(2025, 5, 29), dt.date(2025, 6, 2)  # either side of the data's 2025-06-01 change point


@pytest.fixture(scope="module")
def spec_path(tmp_path_factory):
    # Labels are judged the day they land, one day at a time, from 50 labelled rows.
    policy = {"max_drop": 0.1, "breaches": 1, "days": 1, "min_labels": 50}
    return write_spec(tmp_path_factory.mktemp("loop"), loop=True, **{"monitoring.labels.delay_days": 0, "monitoring.policy": policy})


def score(spec_path, day: dt.date) -> dict[str, str]:
    return run_dag(spec_path, day, pipeline="score", date=day.isoformat())[0]


def monitor(spec_path, day: dt.date):
    return run_dag(spec_path, day, pipeline="monitor", date=day.isoformat())


def land(spec_path, day: dt.date, frame: pd.DataFrame | None = None) -> None:
    folder = load_spec(spec_path).monitoring.labels.uri
    from pathlib import Path

    Path(folder).mkdir(parents=True, exist_ok=True)
    target = Path(folder) / f"labels_{day}.parquet"
    if frame is None:
        shutil.copy(DEMO_LABELS / target.name, target)
    else:
        frame.to_parquet(target, index=False)


def request_events(name: str) -> list[dict]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = (
            session.query(AssetEvent.extra)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .filter(AssetModel.name == request_asset(name))
        )
        return [dict(extra) for (extra,) in rows]


def test_without_a_champion_scoring_is_skipped_with_the_reason_and_writes_nothing(spec_path, registry):
    spec = load_spec(spec_path)
    assert score(spec_path, BEFORE) == dict.fromkeys(SCORE, "skipped")
    assert not prediction_path(spec.name, BEFORE).exists()
    context = StepContext(spec=spec, run=bare_run(spec, BEFORE), registry_factory=lambda: registry)
    with pytest.raises(StepSkipped, match=f"no champion yet for {spec.name}: the alias 'champion' does not exist"):
        resolve_champion.run(context)


def test_a_champion_scores_days_a_rerun_changes_nothing_and_the_monitor_asks_only_when_the_policy_trips(
    spec_path, registry
):
    spec = load_spec(spec_path)
    assert run_dag(spec_path, dt.date(2025, 5, 1))[0] == dict.fromkeys(TASKS, "success")
    assert registry.champion(spec.name).version == "1"

    for day in (BEFORE, AFTER):
        assert score(spec_path, day) == dict.fromkeys(SCORE, "success")
        stored = read_predictions(spec.name, day)
        assert stored.version == "1" and len(stored.frame) == 300 and set(stored.frame["model_version"]) == {"1"}
    before = prediction_path(spec.name, BEFORE).read_bytes()
    states, dag_run = run_dag(spec_path, BEFORE, pipeline="score", date=BEFORE.isoformat())
    assert states == dict.fromkeys(SCORE, "success")
    rerun = PredictionResult.from_xcom(next(ti for ti in dag_run.get_task_instances() if ti.task_id == "predict").xcom_pull())
    assert rerun.written is False and prediction_path(spec.name, BEFORE).read_bytes() == before

    # The day before the change: labels land, the live metric is fine, nothing is emitted.
    land(spec_path, BEFORE)
    states, _ = monitor(spec_path, BEFORE)
    assert states == {**dict.fromkeys(MONITOR, "success"), "request_retraining": "skipped"}
    assert request_events(spec.name) == []

    # After it: the old champion's probabilities no longer fit, the policy trips, one event with its reason.
    land(spec_path, AFTER)
    states, _ = monitor(spec_path, AFTER)
    assert states == dict.fromkeys(MONITOR, "success")
    (event,) = request_events(spec.name)
    assert event["reason"].startswith("live neg_log_loss breached on 1 of the last 1 days up to 2025-06-02")
    assert event["champion_version"] == "1" and event["metric"] == "neg_log_loss" and event["end_date"] == "2025-06-03"
    assert [d["day"] for d in event["days"]] == ["2025-06-02"]

    # Where the fleet page reads the trend: the latest monitoring run's live metric, one point per day.
    series = registry.live_metric_series(spec.name)
    assert series.metric == "neg_log_loss" and series.champion_version == "1" and series.monitor_day == "2025-06-02"
    (before_value, after_value) = [p.value for p in series.points]
    assert [p.day for p in series.points] == [BEFORE, AFTER] and after_value < before_value - 0.1


def test_bad_input_fails_clearly_writes_nothing_and_leaves_the_champion(spec_path, registry, capfd):
    spec = load_spec(spec_path)
    if registry.champion(spec.name) is None:  # run alone: the champion the other test trains
        run_dag(spec_path, dt.date(2025, 5, 1))
        score(spec_path, BEFORE)
        land(spec_path, BEFORE)
    champion = registry.champion(spec.name).version
    events = len(request_events(spec.name))
    capfd.readouterr()

    # A day without rows to score.
    empty = dt.date(2030, 1, 1)
    states = score(spec_path, empty)
    assert states == {"resolve_champion": "success", "validate_rows": "failed", "predict": "upstream_failed"}
    assert "no rows to score for 2030-01-01" in capfd.readouterr().out
    assert not prediction_path(spec.name, empty).exists()

    # Monitoring a stretch of days that has no predictions: nothing to monitor, said, nothing emitted.
    states, _ = monitor(spec_path, dt.date(2025, 2, 1))
    assert states == dict.fromkeys(MONITOR, "skipped")
    assert "no predictions for any day from 2025-01-19 to 2025-02-01" in capfd.readouterr().out

    # Labels of the wrong type, then without the key: the monitor fails naming the file and the column.
    good = pd.read_parquet(DEMO_LABELS / f"labels_{BEFORE}.parquet")
    for frame, message in (
        (good.astype({"churned": str}).assign(churned="yes"), "label column 'churned' holds values that are not a whole number"),
        (good.drop(columns=["customer_id"]), "missing column(s) ['customer_id']"),
    ):
        land(spec_path, BEFORE, frame)
        states, _ = monitor(spec_path, BEFORE)
        assert states == {"join_labels": "failed", **dict.fromkeys(MONITOR[1:], "upstream_failed")}
        out = capfd.readouterr().out
        assert message in out and f"labels_{BEFORE}.parquet" in out
    land(spec_path, BEFORE)

    # A corrupt prediction file: named by the monitor; a rescore replaces it whole.
    path = prediction_path(spec.name, BEFORE)
    path.write_bytes(b"PAR1 torn")
    states, _ = monitor(spec_path, BEFORE)
    assert states["join_labels"] == "failed"
    assert f"{path}: not a readable prediction file" in capfd.readouterr().out
    assert score(spec_path, BEFORE) == dict.fromkeys(SCORE, "success")
    assert read_predictions(spec.name, BEFORE).version == champion

    assert registry.champion(spec.name).version == champion
    assert len(request_events(spec.name)) == events  # a failed or skipped monitor emits nothing
