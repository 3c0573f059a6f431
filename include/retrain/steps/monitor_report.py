"""report: every monitored day's figures logged to MLflow (one run in experiment monitor/<name>, step = day), the
HTML report with the trend plots, and the policy's verdict, which `request_retraining` acts on."""

from __future__ import annotations

from retrain.contracts import InputDriftResult, LiveMetricsResult, MonitoringReportResult
from retrain.errors import RetrainError
from retrain.monitoring import DayFigures, decide, render_html, request_extra
from retrain.pipeline import StepContext
from retrain.registry.monitoring import DayPoint, champion_key, experiment_name, live_key, psi_key
from retrain.report import write_atomic
from retrain.steps.join_labels import monitoring_spec
from retrain.tags import Tag


def day_points(live: LiveMetricsResult, drift: InputDriftResult | None) -> list[DayPoint]:
    """Every figure of every day as a metric point (see retrain.registry.monitoring for the keys)."""
    import datetime as dt

    points = []
    for entry in live.days:
        day = dt.date.fromisoformat(entry["day"])
        if entry.get("value") is not None:
            points.append(DayPoint(live_key(live.metric), day, entry["value"]))
        if live.champion_score is not None:
            points.append(DayPoint(champion_key(live.metric), day, live.champion_score))
        points += [DayPoint("rows_scored", day, entry["scored"]), DayPoint("labelled_rows", day, entry["labelled"]),
                   DayPoint("label_coverage", day, entry["coverage"])]  # fmt: skip
        if str(entry.get("version") or "").isdigit():
            points.append(DayPoint("model_version", day, int(entry["version"])))
    for entry in drift.days if drift else ():
        day = dt.date.fromisoformat(entry["day"])
        points += [DayPoint(psi_key(f), day, v) for f, v in (entry.get("psi") or {}).items() if v is not None]
    return points


def run(ctx: StepContext) -> MonitoringReportResult:
    """Logs the figures, writes monitoring.html and monitoring.json, and decides by the spec's policy."""
    import json

    spec, run_ = ctx.spec, ctx.run
    monitoring = monitoring_spec(spec)
    live, drift = ctx.input(LiveMetricsResult), ctx.input(InputDriftResult)
    if live is None:
        raise RetrainError("no live metrics from join_labels; rerun the monitoring DAG from its first task")
    days = [DayFigures.from_dict(d) for d in live.days]
    verdict = decide(days, monitoring.policy, monitoring.metric)
    extra = request_extra(
        verdict, model=spec.name, metric=monitoring.metric, champion_version=live.champion_version,
        champion_score=live.champion_score, end_date=run_.window.end_date, monitor_day=run_.day,
    ) if verdict.request else {}  # fmt: skip
    tags = {
        Tag.MODEL_NAME: spec.name, Tag.LIVE_METRIC: monitoring.metric, Tag.MONITOR_DAY: run_.day.isoformat(),
        Tag.MONITORED_VERSION: live.champion_version or "", Tag.MONITORED_BY_RUN: run_.run_id,
    }  # fmt: skip
    mlflow_run = ctx.registry.log_monitoring(spec.name, f"{spec.name}-{run_.day}", tags, day_points(live, drift))
    page = render_html(spec, days, drift.days if drift else (), verdict, champion_version=live.champion_version,
                       champion_score=live.champion_score, monitor_day=run_.day)  # fmt: skip
    html_path = write_atomic(ctx.report_dir / "monitoring.html", page)
    summary = {"verdict": verdict.to_dict(), "extra": extra, "days": list(live.days), "mlflow_run_id": mlflow_run}
    json_path = write_atomic(ctx.report_dir / "monitoring.json", json.dumps(summary, indent=2, default=str))
    ctx.log.info("monitoring %s on %s: %s (report %s, MLflow run %s in %s)", spec.name, run_.day, verdict.reason,
                 html_path, mlflow_run, experiment_name(spec.name))  # fmt: skip
    return MonitoringReportResult(
        mlflow_run_id=mlflow_run, experiment=experiment_name(spec.name),
        verdict={"request": verdict.request, "kind": verdict.kind, "reason": verdict.reason, "extra": extra},
        reports={"monitoring_html": str(html_path), "monitoring_json": str(json_path)},
    )  # fmt: skip
