#!/usr/bin/env bash
# The local stack for interactive use, all on loopback: Airflow API server (UI + REST), scheduler,
# DAG processor and triggerer on the SQLite metadata DB with the LocalExecutor, plus an MLflow
# tracking server and registry; the project's DAGs, plugins and airflow_settings.yaml applied.
#
#   bash scripts/stack.sh start     # prints the URLs and the admin password
#   bash scripts/stack.sh status
#   bash scripts/stack.sh stop
#
# State lives under STACK_DIR (default .stack/): airflow/ (AIRFLOW_HOME), mlflow/, artifacts/, logs/.
# The demo uses the same layout, so `STACK_DIR=.demo bash scripts/stack.sh start` opens its runs.
# Ports: AIRFLOW_PORT (8080), MLFLOW_PORT (5000). Specs: RETRAIN_SPECS_DIR (include/models).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
state=$(realpath -m "${STACK_DIR:-$root/.stack}")
airflow_port=${AIRFLOW_PORT:-8080}
mlflow_port=${MLFLOW_PORT:-5000}
bin=$root/.venv/bin
pids=$state/pids
services=(mlflow api-server scheduler dag-processor triggerer)

export AIRFLOW_HOME=$state/airflow
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__DAGS_FOLDER=$root/dags
export AIRFLOW__CORE__PLUGINS_FOLDER=$root/plugins
export AIRFLOW__CORE__EXECUTOR=LocalExecutor
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://127.0.0.1:$airflow_port/execution/
export AIRFLOW__API__BASE_URL=http://127.0.0.1:$airflow_port
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=${STACK_USER:-admin}:admin
export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL=${AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL:-10}
export MLFLOW_TRACKING_URI=http://127.0.0.1:$mlflow_port
export RETRAIN_SPECS_DIR=${RETRAIN_SPECS_DIR:-$root/include/models}
export RETRAIN_ARTIFACTS_ROOT=${RETRAIN_ARTIFACTS_ROOT:-$state/artifacts}
export RETRAIN_TRAINING_BACKEND=${RETRAIN_TRAINING_BACKEND:-local}
export GX_ANALYTICS_ENABLED=False
# MLflow's job runner (GenAI jobs, trace roll-ups; unused here) would fork a dozen worker processes.
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false

# A pid file holds "pid start-time": it names our process only while that pid has that start time
# (pids get reused; the command line is no proof, the API server rewrites its own process title).
start_time() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f20; }
pid_of() { cut -d' ' -f1 "$pids/$1.pid"; }
alive() {
  [[ -f $pids/$1.pid ]] || return 1
  local pid started
  read -r pid started <"$pids/$1.pid"
  [[ -n $started && "$(start_time "$pid")" == "$started" ]]
}

launch() {  # name, command...: in its own session, so stop can end its whole process group
  local name=$1; shift
  alive "$name" && { echo "stack: $name already running (pid $(pid_of "$name"))"; return; }
  setsid "$@" >"$state/logs/$name.log" 2>&1 </dev/null &
  echo "$! $(start_time $!)" >"$pids/$name.pid"
}

wait_for() {  # what, seconds, command...
  local what=$1 seconds=$2; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      echo "stack: $what not ready after ${seconds}s; logs in $state/logs/" >&2
      return 1
    fi
    sleep 1
  done
}

healthy() {  # the API server answers and reports the scheduler and the DAG processor healthy
  curl -sf "http://127.0.0.1:$airflow_port/api/v2/monitor/health" | "$bin/python" -c '
import json, sys
health = json.load(sys.stdin)
sys.exit(0 if all(health.get(k, {}).get("status") == "healthy" for k in ("metadatabase", "scheduler", "dag_processor")) else 1)'
}

start() {
  bash scripts/setup.sh >/dev/null
  mkdir -p "$state/logs" "$pids" "$state/mlflow" "$RETRAIN_ARTIFACTS_ROOT"
  "$bin/airflow" db migrate >"$state/logs/db-migrate.log" 2>&1
  "$bin/python" scripts/apply_airflow_settings.py airflow_settings.yaml
  launch mlflow "$bin/mlflow" server --host 127.0.0.1 --port "$mlflow_port" --workers 1 \
    --backend-store-uri "sqlite:///$state/mlflow/mlflow.db" --artifacts-destination "$state/mlflow/artifacts"
  launch api-server "$bin/airflow" api-server --host 127.0.0.1 --port "$airflow_port"
  launch scheduler "$bin/airflow" scheduler
  launch dag-processor "$bin/airflow" dag-processor
  launch triggerer "$bin/airflow" triggerer
  wait_for "MLflow" 90 curl -sf "$MLFLOW_TRACKING_URI/health" || { stop; exit 1; }
  wait_for "Airflow" 180 healthy || { stop; exit 1; }
  local password
  password=$("$bin/python" -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' \
    "$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated" "${STACK_USER:-admin}")
  echo "stack: Airflow UI http://127.0.0.1:$airflow_port (user ${STACK_USER:-admin}, password $password)"
  echo "stack: MLflow UI  $MLFLOW_TRACKING_URI"
  echo "stack: logs in $state/logs/; stop with: STACK_DIR=$state bash scripts/stack.sh stop"
}

stop() {
  local name pid groups=()
  for name in "${services[@]}"; do
    if alive "$name"; then
      pid=$(pid_of "$name")
      kill -TERM -- "-$pid" 2>/dev/null || true
      groups+=("$pid")
    fi
    rm -f "$pids/$name.pid"  # stale or stopped: either way no longer ours to signal
  done
  for pid in "${groups[@]}"; do  # each service started its own session: wait for the whole group
    for _ in $(seq 1 40); do kill -0 -- "-$pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  done
  echo "stack: stopped"
}

status() {
  local name code=0
  for name in "${services[@]}"; do
    if alive "$name"; then echo "$name: running (pid $(pid_of "$name"))"; else echo "$name: stopped"; code=3; fi
  done
  return $code
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
