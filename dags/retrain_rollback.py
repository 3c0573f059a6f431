"""Manual rollback: move a model's `champion` alias back to `previous` (or a chosen vetted version)."""

import datetime as dt

from airflow.sdk import DAG, Param

from retrain.spec import spec_files
from retrain_operators.rollback import RollbackOperator

with DAG(
    dag_id="retrain_rollback",
    description="Roll a model's champion back to its previous (or a given) vetted version",
    schedule=None,
    start_date=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    tags=["retrain", "rollback"],
    # Alias writes are idempotent, so a retry after a registry hiccup is safe.
    default_args={"owner": "ml-platform", "retries": 1},
    doc_md="""
### Roll back a model

Moves the MLflow alias `champion` to `previous` (or to *Target version*) and `previous` to the replaced
champion. Refuses a version that does not exist, and one the policy did not pass in a real, unforced run
(a dry run, a forced promotion, a declined version) unless *Force* is set. Who, why and whether it was
forced are recorded as version tags.
""",
    params={
        "model_name": Param(
            type="string",
            **({"enum": _models} if (_models := sorted({path.stem for path in spec_files()})) else {}),
            title="Model",
            description="Registered model name (the spec's name).",
        ),
        "target_version": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            title="Target version",
            description="Version to make champion. Empty: the version behind the 'previous' alias.",
        ),
        "reason": Param(
            type="string",
            minLength=3,
            title="Reason",
            description="Why you roll back; recorded on the model version with your user name.",
        ),
        "force": Param(
            False,
            type="boolean",
            title="Force",
            description="Roll back to a version the policy did not pass in a real run (a dry run, a forced"
            " promotion, a declined version). Recorded on the version as retrain.rollback_forced.",
        ),
    },
) as dag:
    RollbackOperator(task_id="rollback", pool="retrain_promotion")
