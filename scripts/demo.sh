#!/usr/bin/env bash
# The demo: a local, end-to-end retraining of the bundled churn model over four nights, on an
# embedded default (SQLite Airflow metadata DB, a local MLflow server, the local training backend).
#   night 1  2025-05-01  first model: becomes champion
#   night 2  2025-05-02  a smaller model asked for in the trigger form: worse than the champion, declined
#   night 3  2025-05-03  a broken upstream export (null labels, unknown region): validation stops the run
#   night 4  2025-07-01  after the 2025-06-01 change point: drift reported, the retrained model is evaluated
# Everything lives under .demo/ (recreated on each run); the MLflow server stops when the demo ends.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bash scripts/setup.sh
py=$root/.venv/bin/python

demo=$root/.demo
rm -rf "$demo"
mkdir -p "$demo/logs"
export AIRFLOW_HOME=$demo/airflow
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__DAGS_FOLDER=$root/dags
export AIRFLOW__CORE__PLUGINS_FOLDER=$root/plugins
export RETRAIN_SPECS_DIR=$root/include/models
export RETRAIN_ARTIFACTS_ROOT=$demo/artifacts
export RETRAIN_TRAINING_BACKEND=local
export GX_ANALYTICS_ENABLED=False
# MLflow's job runner (GenAI jobs, trace roll-ups; unused here) would fork a dozen worker processes.
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false

port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export MLFLOW_TRACKING_URI=http://127.0.0.1:$port
echo "== starting MLflow at $MLFLOW_TRACKING_URI (log: .demo/logs/mlflow.log)"
"$root/.venv/bin/mlflow" server --host 127.0.0.1 --port "$port" --workers 1 \
  --backend-store-uri "sqlite:///$demo/mlflow/mlflow.db" --artifacts-destination "$demo/mlflow/artifacts" \
  >"$demo/logs/mlflow.log" 2>&1 &
mlflow_pid=$!
mkdir -p "$demo/mlflow"
trap 'kill $mlflow_pid 2>/dev/null; wait $mlflow_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 60); do curl -sf "$MLFLOW_TRACKING_URI/health" >/dev/null && break; sleep 0.5; done

echo "== Airflow metadata DB and airflow_settings.yaml (AIRFLOW_HOME=.demo/airflow)"
"$root/.venv/bin/airflow" db migrate >"$demo/logs/airflow-db.log" 2>&1
"$py" scripts/apply_airflow_settings.py airflow_settings.yaml

night() {
  local n=$1 date=$2 label=$3 conf=${4:-"{}"}
  echo
  echo "== night $n: $date ($label)"
  local started=$SECONDS status=0
  "$root/.venv/bin/airflow" dags test retrain_churn "$date" -c "$conf" >"$demo/logs/night-$n-$date.log" 2>&1 || status=$?
  echo "   airflow dags test exited $status in $((SECONDS - started))s (log: .demo/logs/night-$n-$date.log)"
  "$py" scripts/demo_report.py churn "$date" "$demo/logs/night-$n-$date.log"
}

night 1 2025-05-01 "first model"
# Someone tries a much smaller model from the trigger form: it must not replace the champion.
night 2 2025-05-02 "a weaker challenger, from the trigger form" '{"estimator_params": {"max_iter": 3, "max_leaf_nodes": 2}}'

# A broken export lands next to the good files: labels missing, a region nobody knows.
bad=$demo/bad-data/include/data/demo
mkdir -p "$bad"
ln -s "$root"/include/data/demo/*.parquet "$bad/"
"$py" - "$bad/late_export_2025-05-02.csv" <<'PY'
import sys
import pandas as pd
rows = pd.read_parquet("include/data/demo/events_2025-05.parquet").head(400).copy()
rows["event_time"] = pd.Timestamp("2025-05-02 12:00", tz="UTC")
rows.loc[rows.index[:120], "churned"] = None
rows.loc[rows.index[:50], "region"] = "n0rth"
rows.to_csv(sys.argv[1], index=False)
PY
RETRAIN_DATA_ROOT=$demo/bad-data night 3 2025-05-03 "broken upstream export"

night 4 2025-07-01 "after the change point"

echo
echo "== done. Registry, reports and runs:"
"$py" scripts/demo_report.py churn --registry
echo "   champion history (python -m retrain.history churn; model cards: model_card/card.html of each version's run):"
"$py" -m retrain.history churn | sed 's/^/     /'
echo "   Airflow and MLflow UIs on this demo's runs and registry: STACK_DIR=.demo bash scripts/stack.sh start"
