"""The demo's driver: one Python process that plays the story night by night on Airflow's metadata DB.

Scheduled and manual runs are created as the scheduler and the REST API create them (`create_dagrun` with
run type `scheduled` and the timetable's data interval, or `manual` with a conf); their tasks run one after
another with Airflow's in-process task runner, the one `dag.test()` uses. A task that emits an asset event
emits it through Airflow's execution API, which writes the event and queues every unpaused DAG scheduled on
the asset; the next run is then created by the scheduler's own code (`DagModel.dags_needing_dagruns` and
`SchedulerJobRunner._create_dag_runs_asset_triggered`): run type `asset_triggered`, no logical date, the
queued events attached as its triggering events.

What differs from the stack (scripts/stack.sh): no scheduler loop (the demo decides when each night comes,
so simulated 2025 dates stand in for the clock, and cron runs are created for those dates instead of for
today), no executor (tasks run in this process, one at a time, without retries' delays), no triggerer.

Usage: demo.py (env: AIRFLOW_HOME with a migrated DB, MLFLOW_TRACKING_URI, RETRAIN_* as scripts/demo.sh sets).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = "churn"
STARTED = time.monotonic()
# The story goes to stdout; Airflow's, MLflow's and the tasks' logs (configured when Airflow is first imported,
# below) go to stderr, which demo.sh sends to .demo/logs/demo.log.
STORY, sys.stdout = sys.stdout, sys.stderr


def say(text: str = "") -> None:
    print(text, file=STORY, flush=True)


class Scheduler:
    """The runs of the demo's DAGs, created and executed in this process (see the module's docstring)."""

    def __init__(self) -> None:
        from airflow.dag_processing.bundles.manager import DagBundlesManager
        from airflow.dag_processing.dagbag import sync_bag_to_db
        from airflow.models.dag import DagModel
        from airflow.utils.session import create_session

        manager = DagBundlesManager()
        with create_session() as session:
            manager.sync_bundles_to_db(session=session)
        self.bundle = next(b for b in manager.get_all_dag_bundles() if b.name == "dags-folder")
        self.bundle.initialize()
        self.bag = self._parse()
        if self.bag.import_errors:
            raise SystemExit(f"DAG import errors: {self.bag.import_errors}")
        sync_bag_to_db(self.bag, self.bundle.name, self.bundle.version)
        with create_session() as session:  # new DAGs start paused; asset events queue runs of unpaused DAGs only
            for model in session.query(DagModel).filter(DagModel.dag_id.in_(list(self.bag.dag_ids))):
                model.is_paused = False

    def _parse(self):
        from airflow.dag_processing.dagbag import BundleDagBag

        return BundleDagBag(dag_folder=self.bundle.path, bundle_path=self.bundle.path, bundle_name=self.bundle.name)

    def _create(self, dag_id: str, run_type, logical_date: dt.datetime | None, conf: dict | None = None) -> str:
        from airflow.models.dagrun import DagRun
        from airflow.models.serialized_dag import SerializedDagModel
        from airflow.utils.session import create_session
        from airflow.utils.state import DagRunState
        from airflow.utils.types import DagRunTriggeredByType, DagRunType

        now = dt.datetime.now(dt.UTC)
        with create_session() as session:
            dag = SerializedDagModel.get_dag(dag_id, session=session)
            scheduled = run_type == DagRunType.SCHEDULED
            interval = dag.timetable.infer_manual_data_interval(run_after=logical_date) if scheduled else None
            run_after = logical_date if scheduled else now
            run = dag.create_dagrun(
                run_id=DagRun.generate_run_id(run_type=run_type, logical_date=logical_date, run_after=run_after),
                logical_date=logical_date, data_interval=interval, run_after=run_after, conf=conf or {},
                run_type=run_type, triggered_by=DagRunTriggeredByType.TIMETABLE if scheduled else DagRunTriggeredByType.REST_API,
                state=DagRunState.QUEUED, session=session,
            )  # fmt: skip
            return run.run_id

    def scheduled(self, dag_id: str, when: dt.datetime) -> str:
        """The run the scheduler creates when the cron fires at `when` (its logical date)."""
        from airflow.utils.types import DagRunType

        return self.execute(dag_id, self._create(dag_id, DagRunType.SCHEDULED, when))

    def manual(self, dag_id: str, conf: dict) -> str:
        """A run triggered from the UI form or POST /dagRuns with `logical_date: null`."""
        from airflow.utils.types import DagRunType

        return self.execute(dag_id, self._create(dag_id, DagRunType.MANUAL, None, conf))

    def asset_triggered(self) -> list[tuple[str, str]]:
        """One scheduler pass over the queued asset events: the runs it creates, executed; [(dag_id, run_id)]."""
        from airflow.jobs.job import Job
        from airflow.jobs.scheduler_job_runner import SchedulerJobRunner
        from airflow.models.dag import DagModel
        from airflow.models.dagrun import DagRun
        from airflow.utils.session import create_session
        from airflow.utils.state import DagRunState

        with create_session() as session:
            query, triggered = DagModel.dags_needing_dagruns(session)
            ready = [d for d in query.all() if d.dag_id in triggered]
            SchedulerJobRunner(job=Job())._create_dag_runs_asset_triggered(dag_models=ready, session=session)
        with create_session() as session:
            queued = session.query(DagRun).filter(DagRun.state == DagRunState.QUEUED).order_by(DagRun.id).all()
            created = [(r.dag_id, r.run_id) for r in queued]
        return [(dag_id, self.execute(dag_id, run_id)) for dag_id, run_id in created]

    def execute(self, dag_id: str, run_id: str) -> str:
        """Runs the run's tasks in dependency order until it ends, as `dag.test()` does (without its one-second
        sleeps between rounds: nothing here waits for a triggerer or a person)."""
        from airflow.models.dagrun import DagRun
        from airflow.models.serialized_dag import SerializedDagModel
        from airflow.sdk.definitions.dag import _run_task
        from airflow.settings import Session
        from airflow.utils.state import DagRunState, TaskInstanceState

        # The DAG parsed afresh per run, as each worker process parses its own: when a task runs, Airflow sets the
        # run's conf on the DAG's Param objects (process_params), and a DAG kept in memory would carry one run's
        # conf (night 2's end_date) into the next.
        tasks = self._parse().dags[dag_id].task_dict
        session = Session()
        try:
            run = session.query(DagRun).filter_by(dag_id=dag_id, run_id=run_id).one()
            run.dag = SerializedDagModel.get_dag(dag_id, session=session)
            run.state, run.start_date = DagRunState.RUNNING, dt.datetime.now(dt.UTC)
            session.commit()
            while run.state == DagRunState.RUNNING:
                session.expire_all()
                schedulable, _ = run.update_state(session=session)
                for ti in schedulable:
                    ti.try_number += 1
                    ti.state = TaskInstanceState.SCHEDULED
                session.commit()
                waiting = run.get_task_instances(session=session, state=[TaskInstanceState.UP_FOR_RETRY])
                if waiting:  # the scheduler would retry after retry_delay (minutes): a demo stops instead
                    raise SystemExit(f"{dag_id} {run_id}: {waiting[0].task_id} failed and awaits a retry; see .demo/logs/demo.log")
                for ti in run.get_task_instances(session=session, state=[TaskInstanceState.SCHEDULED]):
                    _run_task(ti=ti, task=tasks[ti.task_id])
        finally:
            session.close()
        return run_id


# What the demo prints about a run


def run_facts(dag_id: str, run_id: str) -> dict:
    """The run's type, state, task states, its outputs (XCom) and the events it consumed and emitted."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        run = session.query(DagRun).filter_by(dag_id=dag_id, run_id=run_id).one()
        tis = {ti.task_id: str(ti.state) for ti in run.get_task_instances(session=session)}
        outputs = {
            x.task_id: XComModel.deserialize_value(x)
            for x in session.scalars(XComModel.get_many(run_id=run_id, dag_ids=dag_id, key="return_value"))
        }
        consumed = [(e.asset.name, dict(e.extra or {})) for e in run.consumed_asset_events]
        emitted = [
            (name, dict(extra or {}))
            for name, extra in session.query(AssetModel.name, AssetEvent.extra)
            .join(AssetEvent, AssetEvent.asset_id == AssetModel.id)
            .filter(AssetEvent.source_dag_id == dag_id, AssetEvent.source_run_id == run_id)
        ]
        return {"type": str(run.run_type.value if hasattr(run.run_type, "value") else run.run_type),
                "state": str(run.state), "tasks": tis, "outputs": outputs, "consumed": consumed, "emitted": emitted}  # fmt: skip


def trigger_text(facts: dict) -> str:
    from retrain.options import AssetEvent, trigger_of

    events = [AssetEvent(name, extra) for name, extra in facts["consumed"]]
    return trigger_of(MODEL, facts["type"], events).describe()


def show(dag_id: str, run_id: str, pipeline: str) -> dict:
    """Prints the run: its type and trigger, its tasks, and what its last tasks said."""
    from retrain.pipeline import task_ids

    facts = run_facts(dag_id, run_id)
    say(f"   {dag_id} run {run_id}")
    say(f"   run type {facts['type']}, trigger: {trigger_text(facts)[:300]}")
    say(f"   {facts['state'].upper()}: " + ", ".join(f"{t}={facts['tasks'].get(t, '-')}" for t in task_ids(pipeline=pipeline)))
    for name, extra in facts["emitted"]:
        shown = {k: v for k, v in extra.items() if k in ("version", "end_date", "reason", "champion_version")}
        say(f"   -> asset event on {name}: {json.dumps(shown)[:400]}")
    return facts


def show_retraining(facts: dict, log_hint: str = "") -> None:
    from demo_report import registry, report_lines

    evaluation = facts["outputs"].get("evaluate")
    drift = facts["outputs"].get("check_drift") or {}
    if drift.get("compared"):
        say(f"   drift against champion v{drift['champion_version']}: {', '.join(drift['drifted_features']) or 'none'}"
            f" (max PSI {drift['max_psi']:.3f})")  # fmt: skip
    if evaluation:
        verdict = "PROMOTE" if evaluation["promote"] else "DECLINE"
        champion = evaluation["champion_version"]
        say(f"   decision: {verdict} v{evaluation['version']} (champion at evaluation: {f'v{champion}' if champion else 'none'})")
        for reason in evaluation["reasons"]:
            say(f"     - {reason}")
        for line in report_lines(evaluation["reports"]):
            say(line)
    validation = facts["outputs"].get("validate_data") or {}
    if validation and not validation.get("success"):
        say(f"   why it stopped: validate_data failed on {validation.get('rows')} rows:")
        for failed in validation.get("failed", [])[:4]:
            say(f"     - {failed['type']}(column={failed.get('column')!r}): {failed.get('unexpected_count')} rows,"
                f" e.g. {failed.get('unexpected_examples', [])[:3]}")  # fmt: skip
        say(f"   report: {validation.get('reports', {}).get('validation_html')}")
    registry(MODEL, out=STORY)


def show_scoring(facts: dict) -> None:
    out = facts["outputs"]
    champion, prediction = out.get("resolve_champion"), out.get("predict")
    if prediction:
        action = "wrote" if prediction["written"] else "kept (same version, same rows)"
        replaced = f", replacing v{prediction['replaced_version']}'s" if prediction.get("replaced_version") else ""
        say(f"   scored {prediction['day']} with v{champion['version']}: {action} {prediction['rows']} predictions{replaced}")
        say(f"   predictions: {prediction['path']}")


def show_monitoring(facts: dict) -> None:
    out = facts["outputs"]
    live, report = out.get("join_labels") or {}, out.get("report") or {}
    for day in live.get("days", []):
        value = "      -" if day["value"] is None else f"{day['value']:+.4f}"
        say(f"     {day['day']} v{day['version']}: {day['labelled']:>3}/{day['scored']} labelled, {live['metric']} {value}"
            f"  {day['status']}")  # fmt: skip
    drifted = {d["day"]: d["drifted"] for d in (out.get("input_drift") or {}).get("days", []) if d["drifted"]}
    if drifted:
        say("     input drift (PSI and test) against the scoring version's reference: "
            + "; ".join(f"{day}: {', '.join(f)}" for day, f in drifted.items()))  # fmt: skip
    verdict = report.get("verdict") or {}
    say(f"   verdict: {verdict.get('reason')}")
    if report:
        say(f"   report: {report['reports']['monitoring_html']}; MLflow run {report['mlflow_run_id']} in {report['experiment']}")


# The story


def land_labels(first: dt.date, last: dt.date, landing: Path) -> str:
    """Copies the label files of [first, last] into the landing folder, as the label feed would deliver them."""
    from retrain.demo_data import label_file

    landing.mkdir(parents=True, exist_ok=True)
    day = first
    while day <= last:
        shutil.copy(ROOT / "include" / "data" / "demo_labels" / label_file(day), landing / label_file(day))
        day += dt.timedelta(days=1)
    return f"{first} .. {last}"


@contextmanager
def data_root(path: Path) -> Iterator[None]:
    previous = os.environ["RETRAIN_DATA_ROOT"]
    os.environ["RETRAIN_DATA_ROOT"] = str(path)
    try:
        yield
    finally:
        os.environ["RETRAIN_DATA_ROOT"] = previous


def at(day: dt.date, hour: int) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.UTC)


def elapsed() -> str:
    return f"[{time.monotonic() - STARTED:5.1f}s]"


def follow_events(airflow: Scheduler) -> None:
    """What the scheduler does next: runs for the queued asset events, and for the events those runs emit."""
    while created := airflow.asset_triggered():
        for dag_id, run_id in created:
            pipeline = dag_id.split("_", 1)[0]
            say(f"\n== {elapsed()} the scheduler starts {dag_id} for the queued asset event(s)")
            facts = show(dag_id, run_id, pipeline)
            {"retrain": show_retraining, "score": show_scoring, "monitor": show_monitoring}[pipeline](facts)


def main() -> None:
    demo = Path(os.environ["DEMO_DIR"])
    labels = demo / "data" / "include" / "data" / "demo_labels"
    airflow = Scheduler()
    say(f"== {elapsed()} DAGs: {', '.join(sorted(d for d in airflow.bag.dag_ids if MODEL in d))} (unpaused)")

    say(f"\n== {elapsed()} night 1: the 02:00 cron of 2025-05-01, no champion yet")
    facts = show("retrain_churn", airflow.scheduled("retrain_churn", at(dt.date(2025, 5, 1), 2)), "retrain")
    show_retraining(facts)
    follow_events(airflow)  # the promotion's event: scoring starts by itself

    say(f"\n== {elapsed()} night 2: someone asks for a much smaller model in the trigger form")
    conf = {"end_date": "2025-05-02", "estimator_params": {"max_iter": 3, "max_leaf_nodes": 2}}
    show_retraining(show("retrain_churn", airflow.manual("retrain_churn", conf), "retrain"))

    say(f"\n== {elapsed()} night 3: a broken upstream export lands next to the good files (2025-05-03)")
    with data_root(demo / "bad-data"):
        facts = show("retrain_churn", airflow.scheduled("retrain_churn", at(dt.date(2025, 5, 3), 2)), "retrain")
    show_retraining(facts)

    say(f"\n== {elapsed()} mornings of 2025-05-31 .. 2025-06-04: the 06:00 cron scores the day before with the champion")
    for day in (dt.date(2025, 5, 30) + dt.timedelta(days=n) for n in range(5)):
        facts = run_facts("score_churn", airflow.scheduled("score_churn", at(day + dt.timedelta(days=1), 6)))
        prediction = facts["outputs"].get("predict") or {}
        say(f"   {day}: score_churn {facts['type']} {facts['state']}: {prediction.get('rows')} rows scored with"
            f" v{prediction.get('version')}")  # fmt: skip
    say("   (the change point is 2025-06-01: prices up, more premium plans, support tickets weigh more on churn)")

    say(f"\n== {elapsed()} 2025-06-08: labels come 7 days late; those of {land_labels(dt.date(2025, 5, 25), dt.date(2025, 5, 31), labels)} have landed")
    facts = show("monitor_churn", airflow.scheduled("monitor_churn", at(dt.date(2025, 6, 8), 7)), "monitor")
    show_monitoring(facts)

    say(f"\n== {elapsed()} 2025-06-11: the 06:00 cron scores 2025-06-10; labels of {land_labels(dt.date(2025, 6, 1), dt.date(2025, 6, 3), labels)} have landed")
    facts = run_facts("score_churn", airflow.scheduled("score_churn", at(dt.date(2025, 6, 11), 6)))
    show_scoring(facts)
    facts = show("monitor_churn", airflow.scheduled("monitor_churn", at(dt.date(2025, 6, 11), 7)), "monitor")
    show_monitoring(facts)
    follow_events(airflow)  # the request: retraining starts by itself; a promotion: scoring re-runs by itself

    say(f"\n== {elapsed()} done. The live metric as the fleet page reads it (Registry.live_metric_series):")
    from retrain.registry import Registry

    series = Registry().live_metric_series(MODEL)
    if series is not None:
        reference = "none" if series.champion_score is None else f"{series.champion_score:+.3f}"
        say(f"   {series.metric} by day (MLflow run {series.mlflow_run_id}; champion then v{series.champion_version},"
            f" evaluation score {reference}):")  # fmt: skip
        say("   " + ", ".join(f"{p.day:%m-%d} {p.value:+.3f}" for p in series.points))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
