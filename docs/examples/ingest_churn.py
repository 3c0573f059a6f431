"""An upstream ingestion DAG that tells `retrain_churn` new data has landed: its task's outlet is the model's data
Asset, so every successful run emits one event on `data_churn`, which starts one retraining.

Copy this file into your DAGs folder and put your export step where the comment says. The event's `extra` may
carry `end_date` (where the retraining window ends, as the trigger form's end_date) and `reason` (recorded on
the version it trains as `retrain.trigger_reason`). A run that lands nothing should end skipped (raise
AirflowSkipException): a skipped task emits no event. The retraining DAG listens only if its spec says
`schedule.events: [data]`.
"""

import pendulum
from airflow.sdk import Asset, dag, task

DATA_CHURN = Asset(name="data_churn", group="ml-data")  # retrain.assets.data_asset("churn"), as the DAG factory builds it


@dag(schedule="30 1 * * *", start_date=pendulum.datetime(2025, 1, 1, tz="UTC"), catchup=False, tags=["ingest"])
def ingest_churn():
    @task(outlets=[DATA_CHURN])
    def land_daily_export(outlet_events=None, data_interval_end=None):
        day = (data_interval_end or pendulum.now("UTC")).date()
        # ... copy the day's export into the spec's data.uri folder here (write to a temporary name, then rename) ...
        outlet_events[DATA_CHURN].extra = {"end_date": day.isoformat(), "reason": f"daily export for {day} landed"}

    land_daily_export()


ingest_churn()
