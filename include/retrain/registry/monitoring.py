"""Where the monitor's daily figures live in MLflow, and how they are read back as plain values.

Experiment `monitor/<model>`; one MLflow run per run of `monitor_<model>` (run name `<model>-<monitoring
day>`), tagged with the live metric's name, the monitoring day, the champion watched and the Airflow run.
Each figure of each day is a metric point whose step is the day (days since 1970-01-01) and whose
timestamp is that day's midnight UTC, so MLflow's charts show the trend by step or by "wall time" = day.
Keys: `live_<metric>`, `champion_<metric>` (the champion's evaluation score: the chart's reference line),
`rows_scored`, `labelled_rows`, `label_coverage`, `model_version` (the version that scored the day) and
`psi_<feature>` (feature names reduced to MLflow's allowed characters).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from retrain.tags import Tag

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

EPOCH = dt.date(1970, 1, 1)


def experiment_name(model: str) -> str:
    """The MLflow experiment holding a model's monitoring runs."""
    return f"monitor/{model}"


def live_key(metric: str) -> str:
    """The metric key of the live metric (e.g. `live_roc_auc`)."""
    return f"live_{metric}"


def champion_key(metric: str) -> str:
    """The metric key of the champion's evaluation score, logged each day as the chart's reference line."""
    return f"champion_{metric}"


def psi_key(feature: str) -> str:
    """The metric key of a feature's PSI: MLflow keys allow letters, digits, `_ - . / ` and space only."""
    return "psi_" + re.sub(r"[^A-Za-z0-9_./ -]", "_", feature)[:200]


def day_step(day: dt.date) -> int:
    """A day as a metric step: days since 1970-01-01 (2025-06-01 is 20240)."""
    return (day - EPOCH).days


def step_day(step: int) -> dt.date:
    return EPOCH + dt.timedelta(days=int(step))


@dataclass(frozen=True)
class DayPoint:
    """One figure of one day."""

    key: str
    day: dt.date
    value: float


@dataclass(frozen=True)
class LivePoint:
    """One day of a model's live metric."""

    day: dt.date
    value: float


@dataclass(frozen=True)
class LiveSeries:
    """A model's live metric per day, from its latest monitoring run (plain values: a sparkline's input)."""

    model: str
    metric: str
    points: tuple[LivePoint, ...]
    monitor_day: str
    champion_version: str
    champion_score: float | None
    mlflow_run_id: str


def log_day_points(client: MlflowClient, model: str, run_name: str, tags: Mapping[str, str],
                   points: Iterable[DayPoint]) -> str:  # fmt: skip
    """One finished MLflow run in the model's monitoring experiment holding every point; returns its id."""
    from mlflow.entities import Metric, RunStatus

    name = experiment_name(model)
    experiment = client.get_experiment_by_name(name)
    experiment_id = experiment.experiment_id if experiment is not None else client.create_experiment(name)
    run = client.create_run(experiment_id, run_name=run_name, tags={str(k): str(v) for k, v in tags.items()})
    metrics = [
        Metric(
            p.key,
            float(p.value),
            int(dt.datetime.combine(p.day, dt.time(), dt.UTC).timestamp() * 1000),
            day_step(p.day),
        )
        for p in points
    ]
    try:
        for start in range(0, len(metrics), 1000):  # MLflow's log_batch takes at most 1000 metrics
            client.log_batch(run.info.run_id, metrics=metrics[start : start + 1000])
    except Exception:
        client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.FAILED))
        raise
    client.set_terminated(run.info.run_id)
    return run.info.run_id


# Days of the live metric kept on the registered model for the fleet page's trend (a tag holds 5000 characters).
LIVE_SERIES_DAYS = 30


def live_series_tag(metric: str, points: Iterable[DayPoint]) -> str:
    """The registered model's Tag.LIVE_SERIES value: the live metric's last LIVE_SERIES_DAYS days, as JSON."""
    key = live_key(metric)
    days = sorted((p.day, p.value) for p in points if p.key == key and math.isfinite(p.value))[-LIVE_SERIES_DAYS:]
    return json.dumps({"metric": metric, "days": [[day.isoformat(), round(value, 6)] for day, value in days]})


def parse_live_series(value: str | None) -> tuple[float, ...]:
    """The values of a Tag.LIVE_SERIES tag, oldest day first; () when absent or not of that form (anyone with
    write access to the registry can set a tag: it is read as data, bounded, never trusted)."""
    try:
        days = json.loads(value or "")["days"][-LIVE_SERIES_DAYS:]
        values = tuple(float(v) for _, v in days)
    except (ValueError, TypeError, KeyError, IndexError, RecursionError):
        return ()
    return values if all(math.isfinite(v) for v in values) else ()


def latest_live_series(client: MlflowClient, model: str) -> LiveSeries | None:
    """The live metric of the model's latest finished monitoring run, day by day; None before any run."""
    experiment = client.get_experiment_by_name(experiment_name(model))
    if experiment is None:
        return None
    runs = client.search_runs(
        [experiment.experiment_id], filter_string="attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"], max_results=1,
    )  # fmt: skip
    if not runs:
        return None
    run = runs[0]
    tags = run.data.tags
    metric = tags.get(Tag.LIVE_METRIC, "")
    history = client.get_metric_history(run.info.run_id, live_key(metric)) if metric else []
    by_day = {step_day(m.step): m.value for m in sorted(history, key=lambda m: m.timestamp)}
    reference = run.data.metrics.get(champion_key(metric))
    return LiveSeries(
        model=model,
        metric=metric,
        points=tuple(LivePoint(day, value) for day, value in sorted(by_day.items())),
        monitor_day=tags.get(Tag.MONITOR_DAY, ""),
        champion_version=tags.get(Tag.MONITORED_VERSION, ""),
        champion_score=reference,
        mlflow_run_id=run.info.run_id,
    )
