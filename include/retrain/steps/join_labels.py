"""join_labels: the labels that have arrived joined to the stored predictions of every day in the lookback, and
each day's live metric, coverage and status (pending, not enough labels, ok, breach, superseded)."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd

from retrain.contracts import LiveMetricsResult
from retrain.errors import DataError, RetrainError, StepSkipped
from retrain.monitoring import champion_score, day_figures, join_day, labels_frame, live_score
from retrain.pipeline import StepContext
from retrain.report import write_atomic
from retrain.scoring import days_window, read_predictions, rows_location, rows_source, scored_days, scoring_spec
from retrain.spec import ModelSpec, MonitoringSpec
from retrain.tags import Tag


def monitoring_spec(spec: ModelSpec) -> MonitoringSpec:
    if spec.monitoring is None:
        raise RetrainError(f"model {spec.name} has no monitoring section: nothing to monitor")
    return spec.monitoring


def read_labels(spec: ModelSpec, first: dt.date, last: dt.date, log, engines=None) -> pd.DataFrame:
    """The labels of the days [first, last] that have landed, as (keys..., label, _day). No label file yet is no
    label (the feed is late by design); an unreadable or malformed one is an error naming it. From a table or a
    query: one SELECT of the key and label columns over the days (no row yet is no label); a database that
    does not answer fails the step (transient: retried), it is not taken for labels that have not landed."""
    monitoring, keys = monitoring_spec(spec), scoring_spec(spec).key_columns
    labels = monitoring.labels
    columns = [*labels.key_columns, labels.label_column]
    reader = rows_source(spec, labels, "monitoring.labels", engines)
    try:
        data = reader.read_window(days_window(first, last), columns)
    except DataError as error:
        if not error.transient or labels.uri is None:
            raise
        log.warning("no labels yet: %s", error)
        return pd.DataFrame(columns=[*keys, "label", "_day"])
    source = ", ".join(data.files) or rows_location(labels)
    frame = labels_frame(data.frame, keys, labels.key_columns, labels.label_column, spec.task, source)
    frame["_day"] = data.frame.loc[frame.index, labels.timestamp_column].dt.date
    return frame


def run(ctx: StepContext) -> LiveMetricsResult:
    """Figures for every scored day of the lookback up to the run's day; writes live_metrics.json.

    No day scored in the lookback ends the run skipped (nothing to monitor); a prediction file that cannot be
    read, or labels of the wrong type or without the key, fail it naming the file.
    """
    spec, day = ctx.spec, ctx.run.day
    monitoring, keys = monitoring_spec(spec), list(scoring_spec(spec).key_columns)
    first = day - dt.timedelta(days=monitoring.lookback_days - 1)
    days = scored_days(spec.name, first, day)
    if not days:
        raise StepSkipped(
            f"no predictions for any day from {first} to {day}: score_{spec.name} has not scored them, nothing to monitor"
        )
    champion = ctx.registry.champion(spec.name)
    version = None if champion is None else champion.version
    score = (
        None
        if champion is None
        else champion_score(champion.tags.get(Tag.EVALUATION), monitoring.metric, spec.evaluation.metric)
    )
    labels = read_labels(spec, days[0], days[-1], ctx.log, ctx.engines)
    due_until = day - dt.timedelta(days=monitoring.labels.delay_days)
    figures = []
    for scored in days:
        predictions = read_predictions(spec.name, scored)
        joined = join_day(
            predictions.frame, labels.loc[labels["_day"] == scored, [*keys, "label"]], keys, str(predictions.path)
        )
        value = live_score(joined.frame, monitoring.metric, spec.task, predictions.classes)
        figures.append(day_figures(
            scored, joined, predictions.version, value, due=scored <= due_until, current=predictions.version == version,
            policy=monitoring.policy, champion_score=score, metric=monitoring.metric,
        ))  # fmt: skip
    rows = tuple(f.to_dict() for f in figures)
    path = write_atomic(ctx.report_dir / "live_metrics.json", json.dumps({"days": rows, "champion": version}, indent=2))
    for f in figures:
        ctx.log.info("%s v%s: %d scored, %d labelled, %s %s [%s] %s", f.day, f.version, f.scored, f.labelled,
                     monitoring.metric, "-" if f.value is None else f"{f.value:.4f}", f.status, f.rule)  # fmt: skip
    return LiveMetricsResult(
        metric=monitoring.metric, champion_version=version, champion_score=score, days=rows,
        reports={"live_metrics_json": str(path)},
    )  # fmt: skip
