#!/usr/bin/env bash
# The demo: the bundled churn model's whole loop, local and end to end, on an embedded default (SQLite Airflow
# metadata DB, a local MLflow server, the local training backend). One Python process (scripts/demo.py) plays it:
#   night 1  2025-05-01  (cron)   first model: becomes champion; its promotion event starts score_churn by itself
#   night 2  2025-05-02  (manual) a smaller model asked for in the trigger form: worse than the champion, declined
#   night 3  2025-05-03  (cron)   a broken upstream export (null labels, unknown region): validation stops the run
#   mornings 2025-05-31 .. 06-04  score_churn scores each day; the data change on 2025-06-01
#   2025-06-08  labels of the days before the change have landed: monitor_churn is quiet, emits nothing
#   2025-06-11  labels of the first days after it: the live metric fell three days running, the monitor emits a
#               request; retrain_churn starts by itself (trigger: monitoring), the new model is promoted, and
#               score_churn re-scores the day with the new version by itself
# Everything lives under .demo/ (recreated on each run); the MLflow server stops when the demo ends.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bash scripts/setup.sh
py=$root/.venv/bin/python

demo=$root/.demo
rm -rf "$demo"
mkdir -p "$demo/logs"
export DEMO_DIR=$demo
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

# The spec's relative data paths resolve under this root: the training data and the rows to score as they
# are, and a landing folder the label feed fills day by day (scripts/demo.py copies each day's file in).
# Copies, not symlinks: a data path never leaves RETRAIN_DATA_ROOT, through a symlink neither (3.4 MB).
export RETRAIN_DATA_ROOT=$demo/data
mkdir -p "$demo/data/include/data/demo_labels"
cp -r "$root/include/data/demo" "$root/include/data/demo_scoring" "$demo/data/include/data/"

port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export MLFLOW_TRACKING_URI=http://127.0.0.1:$port
echo "== starting MLflow at $MLFLOW_TRACKING_URI (log: .demo/logs/mlflow.log)"
mkdir -p "$demo/mlflow"
"$root/.venv/bin/mlflow" server --host 127.0.0.1 --port "$port" --workers 1 \
  --backend-store-uri "sqlite:///$demo/mlflow/mlflow.db" --artifacts-destination "$demo/mlflow/artifacts" \
  >"$demo/logs/mlflow.log" 2>&1 &
mlflow_pid=$!
trap 'kill $mlflow_pid 2>/dev/null; wait $mlflow_pid 2>/dev/null || true' EXIT

echo "== Airflow metadata DB and airflow_settings.yaml (AIRFLOW_HOME=.demo/airflow)"
"$root/.venv/bin/airflow" db migrate >"$demo/logs/airflow-db.log" 2>&1
"$py" scripts/apply_airflow_settings.py airflow_settings.yaml
for _ in $(seq 1 60); do curl -sf "$MLFLOW_TRACKING_URI/health" >/dev/null && break; sleep 0.5; done

# Night 3's broken export: labels missing, a region nobody knows, next to the good files.
bad=$demo/bad-data/include/data/demo
mkdir -p "$bad"
cp "$root"/include/data/demo/*.parquet "$bad/"
"$py" - "$bad/late_export_2025-05-02.csv" <<'PY'
import sys
import pandas as pd
rows = pd.read_parquet("include/data/demo/events_2025-05.parquet").head(400).copy()
rows["event_time"] = pd.Timestamp("2025-05-02 12:00", tz="UTC")
rows.loc[rows.index[:120], "churned"] = None
rows.loc[rows.index[:50], "region"] = "n0rth"
rows.to_csv(sys.argv[1], index=False)
PY

echo "== the story (Airflow's own logs: .demo/logs/demo.log)"
"$py" scripts/demo.py 2>"$demo/logs/demo.log"
echo
echo "== champion history (python -m retrain.history churn; model cards: model_card/card.html of each version's run)"
"$py" -m retrain.history churn | sed 's/^/   /'
echo "   Airflow and MLflow UIs on this demo's runs and registry: STACK_DIR=.demo bash scripts/stack.sh start"
