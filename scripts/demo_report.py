"""Print what one demo night did (task states, decision, reports) or the registry state.

Usage: demo_report.py MODEL DATE LOGFILE   |   demo_report.py MODEL --registry
Reads the Airflow metadata DB of AIRFLOW_HOME, the MLflow registry of MLFLOW_TRACKING_URI and the
reports under RETRAIN_ARTIFACTS_ROOT; it prints, it never changes anything.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import sys
from pathlib import Path


def _v(version) -> str:
    return "none" if version is None else f"v{version}"


def task_states(dag_id: str, date: str) -> tuple[str, dict[str, str]]:
    from airflow.models import DagRun, TaskInstance
    from airflow.utils.session import create_session

    logical = dt.datetime.fromisoformat(date).replace(tzinfo=dt.UTC)
    with create_session() as session:
        run = (
            session.query(DagRun)
            .filter(DagRun.dag_id == dag_id, DagRun.logical_date == logical)
            .order_by(DagRun.id.desc())
            .first()
        )
        if run is None:
            return "no run", {}
        tis = session.query(TaskInstance).filter(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run.run_id)
        return str(run.state), {ti.task_id: str(ti.state) for ti in tis}


def registry(model: str) -> None:
    from retrain.registry import CHAMPION_ALIAS, PREVIOUS_ALIAS, Registry
    from retrain.tags import Tag

    reg = Registry()
    state = reg.aliases(model)
    print(f"   registry {model}: champion = {_v(state[CHAMPION_ALIAS])}, previous = {_v(state[PREVIOUS_ALIAS])}")
    for mv in reg.versions(model):
        tags = mv.tags
        score = tags.get(Tag.CHALLENGER_SCORE)
        line = f"     v{mv.version}:"
        if score:
            line += f" window end {tags.get(Tag.WINDOW_END, '?')}, {tags.get(Tag.METRIC, 'metric')} {float(score):.4f}"
        print(line, f"decision={tags.get(Tag.DECISION, '-')}")
        if tags.get(Tag.REASONS):
            print(f"          reasons: {tags[Tag.REASONS]}")


def night(model: str, date: str, logfile: str) -> None:
    from retrain.pipeline import task_ids

    state, tasks = task_states(f"retrain_{model}", date)
    print(f"   DAG run: {state}; tasks: " + ", ".join(f"{t}={tasks.get(t, '-')}" for t in task_ids()))
    reports = Path(os.environ["RETRAIN_ARTIFACTS_ROOT"]) / model / "reports" / f"end_date={date}"
    latest = max(reports.glob("*/"), key=lambda p: p.stat().st_mtime, default=None) if reports.exists() else None
    if latest is not None:
        for report in sorted(latest.glob("*.html"), key=lambda p: p.stat().st_mtime):  # in the order written
            print(f"   report: {report}")
        drift = latest / "drift.json"
        if drift.exists():
            data = json.loads(drift.read_text())
            drifted = data.get("drifted_features") or []
            print(f"   drift: {', '.join(drifted) if drifted else 'none'}")
        evaluation = latest / "evaluation.json"
        if evaluation.exists():
            data = json.loads(evaluation.read_text())
            verdict = "PROMOTE" if data["promote"] else "DECLINE"
            print(
                f"   decision: {verdict} v{data['challenger_version']} (champion at evaluation: {_v(data['champion_version'])})"
            )
            for reason in data["reasons"]:
                print(f"     - {reason}")
    if state != "success":
        text = Path(logfile).read_text(errors="replace")
        errors = re.findall(
            r"(?:DataValidationError|DataError|TrainingError|RegistryError)[^\n]*(?:\n  - [^\n]*)*", text
        )
        if errors:
            print("   why it stopped: " + errors[-1].replace("\\n", "\n     ")[:1500])
    registry(model)


if __name__ == "__main__":
    if sys.argv[2] == "--registry":
        registry(sys.argv[1])
    else:
        night(*sys.argv[1:4])
