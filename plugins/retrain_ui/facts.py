"""What Airflow knows about the models' DAGs, read from its metadata database in the API server process.

A fixed number of queries whatever the number of DAGs (DAGs and tags, last runs, their failed tasks,
their step outputs, pending approvals), each returned as the plain values of `retrain.fleet`. Reading
the metadata here, in the process that serves the page, rather than calling Airflow's own REST API:
no second HTTP hop per page, no token to forward, and one query per kind of fact instead of one
request per DAG and run; the price is depending on Airflow's ORM models, which this one module holds.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection

from airflow.models.dag import DagModel, DagTag
from airflow.models.dagbundle import DagBundleModel
from airflow.models.dagrun import DagRun
from airflow.models.hitl import HITLDetail
from airflow.models.taskinstance import TaskInstance
from airflow.models.team import dag_bundle_team_association_table
from airflow.models.xcom import XComModel
from airflow.utils.session import create_session
from airflow.utils.state import TaskInstanceState
from sqlalchemy import and_, func, or_, select, tuple_

from retrain.fleet import AirflowFacts, DagFacts, PendingApproval, RunFacts

# A HITL request is pending while its task is parked (3.3: awaiting_input; earlier: deferred), as the UI shows it.
WAITING_FOR_A_HUMAN = (TaskInstanceState.AWAITING_INPUT, TaskInstanceState.DEFERRED)
RETURN_VALUE = "return_value"


def read_airflow_facts(dag_ids: Collection[str], output_tasks: Collection[str]) -> AirflowFacts:
    """The DAGs among `dag_ids` that Airflow knows, each one's newest run with its failed tasks and the XCom
    return values of `output_tasks`, and the approvals waiting in those DAGs."""
    ids = sorted(set(dag_ids))
    if not ids:
        return AirflowFacts()
    with create_session() as session:
        teams = dict(
            session.execute(
                select(DagModel.dag_id, dag_bundle_team_association_table.c.team_name)
                .join(DagBundleModel, DagModel.bundle_name == DagBundleModel.name)
                .outerjoin(
                    dag_bundle_team_association_table,
                    DagBundleModel.name == dag_bundle_team_association_table.c.dag_bundle_name,
                )
                .where(DagModel.dag_id.in_(ids))
            ).all()
        )
        tags: dict[str, list[str]] = defaultdict(list)
        for dag_id, name in session.execute(select(DagTag.dag_id, DagTag.name).where(DagTag.dag_id.in_(ids))):
            tags[dag_id].append(name)
        dags = {
            dag_id: DagFacts(dag_id, bool(paused), tuple(sorted(tags[dag_id])), next_run, teams.get(dag_id))
            for dag_id, paused, next_run in session.execute(
                select(DagModel.dag_id, DagModel.is_paused, DagModel.next_dagrun_create_after).where(
                    DagModel.dag_id.in_(ids), DagModel.is_stale.is_(False)
                )
            )
        }
        newest = (
            select(DagRun.dag_id, func.max(DagRun.run_after).label("run_after"))
            .where(DagRun.dag_id.in_(ids))
            .group_by(DagRun.dag_id)
            .subquery()
        )
        runs = session.execute(
            select(
                DagRun.id, DagRun.dag_id, DagRun.run_id, DagRun.state, DagRun.run_after, DagRun.run_type,
                DagRun.triggered_by, DagRun.triggering_user_name,
            ).join(newest, and_(DagRun.dag_id == newest.c.dag_id, DagRun.run_after == newest.c.run_after))
        ).all()  # fmt: skip
        failed: dict[tuple[str, str], list[str]] = defaultdict(list)
        outputs: dict[int, dict[str, object]] = defaultdict(dict)
        if runs:
            keys = [(run.dag_id, run.run_id) for run in runs]
            for dag_id, run_id, task_id in session.execute(
                select(TaskInstance.dag_id, TaskInstance.run_id, TaskInstance.task_id)
                .where(tuple_(TaskInstance.dag_id, TaskInstance.run_id).in_(keys))
                .where(TaskInstance.state == TaskInstanceState.FAILED)
                .order_by(TaskInstance.start_date)
            ):
                failed[(dag_id, run_id)].append(task_id)
            for row in session.execute(
                select(XComModel.dag_run_id, XComModel.task_id, XComModel.value).where(
                    XComModel.dag_run_id.in_([run.id for run in runs]),
                    XComModel.task_id.in_(list(output_tasks)),
                    XComModel.key == RETURN_VALUE,
                    XComModel.map_index == -1,
                )
            ):
                outputs[row.dag_run_id][row.task_id] = XComModel.deserialize_value(row)
        last_runs = {
            run.dag_id: RunFacts(
                dag_id=run.dag_id,
                run_id=run.run_id,
                state=str(run.state),
                run_after=run.run_after,
                run_type=str(run.run_type),
                triggered_by=None if run.triggered_by is None else str(run.triggered_by),
                user=run.triggering_user_name,
                failed_tasks=tuple(failed[(run.dag_id, run.run_id)]),
                outputs=outputs[run.id],
            )
            for run in runs
        }
        approvals: dict[str, list[PendingApproval]] = defaultdict(list)
        for row in session.execute(
            select(
                TaskInstance.dag_id, TaskInstance.run_id, TaskInstance.task_id, TaskInstance.map_index,
                HITLDetail.subject, HITLDetail.created_at,
            )
            .join(HITLDetail, HITLDetail.ti_id == TaskInstance.id)
            .where(TaskInstance.dag_id.in_(ids), HITLDetail.responded_at.is_(None))
            .where(or_(*(TaskInstance.state == state for state in WAITING_FOR_A_HUMAN)))
        ):  # fmt: skip
            approvals[row.dag_id].append(
                PendingApproval(row.dag_id, row.run_id, row.task_id, row.subject, row.created_at, row.map_index)
            )
    return AirflowFacts(dags=dags, last_runs=last_runs, approvals={k: tuple(v) for k, v in approvals.items()})
