#!/usr/bin/env bash
# The local stack for interactive use and the end-to-end tests, all on loopback: a PostgreSQL server
# (Debian's `postgresql`, a cluster of its own under STACK_DIR) holding Airflow's metadata database
# and MLflow's backend store; Airflow's API server (UI + REST), scheduler with the LocalExecutor, DAG
# processor and triggerer; an MLflow tracking server and registry; the project's DAGs, plugins and
# airflow_settings.yaml applied. (The demo, scripts/demo.sh, keeps its embedded SQLite default.)
#
#   bash scripts/stack.sh start     # prints the URLs and the admin password
#   bash scripts/stack.sh status
#   bash scripts/stack.sh stop
#
# State lives under STACK_DIR (default .stack/): postgres/ (the cluster, its socket and the password
# file), airflow/ (AIRFLOW_HOME), mlflow/, artifacts/, logs/. A folder that already holds SQLite
# databases and no cluster, like the demo's, is opened on SQLite (it says so):
# `STACK_DIR=.demo bash scripts/stack.sh start` shows the demo's runs and registry.
# Ports: AIRFLOW_PORT (8080), MLFLOW_PORT (5000), POSTGRES_PORT (default: a free one).
# Specs: RETRAIN_SPECS_DIR (include/models).
set -euo pipefail
umask 077  # what the stack writes (password files, logs, databases) is its user's only
cd "$(dirname "$0")/.."
root=$PWD
state=$(realpath -m "${STACK_DIR:-$root/.stack}")
airflow_port=${AIRFLOW_PORT:-8080}
mlflow_port=${MLFLOW_PORT:-5000}
bin=$root/.venv/bin
pids=$state/pids
services=(mlflow api-server scheduler dag-processor triggerer)

# PostgreSQL: the newest Debian server installed (15 on Debian 12) unless PG_BIN names one.
pg_bin=${PG_BIN:-$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin 2>/dev/null | sort -V | tail -n 1)}
pg_dir=$state/postgres    # owned by the user the server runs as, 0700
pg_data=$pg_dir/data
pg_socket=$pg_dir/socket  # the server's only Unix socket: never /var/run
pg_role=retrain           # owns the `airflow` and `mlflow` databases; not a superuser
# "host:port:database:user:password", 0600: libpq (psycopg, psycopg2) and asyncpg find the password
# here through PGPASSFILE, so it is in no URL, command line, environment variable or log.
export PGPASSFILE=$pg_dir/pgpass
database=postgres
[[ -f $state/airflow/airflow.db && ! -d $pg_dir ]] && database=sqlite

export AIRFLOW_HOME=$state/airflow
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__DAGS_FOLDER=$root/dags
export AIRFLOW__CORE__PLUGINS_FOLDER=$root/plugins
export AIRFLOW__CORE__EXECUTOR=LocalExecutor
# The LocalExecutor runs each task in a worker process of its own; parallelism is how many at once.
# A task here spends a good share of its time not computing (importing Airflow and pandas, MLflow
# round trips, waiting for its training child process), so two per core keep every core busy while
# one waits, and no more: each running data step holds its window in memory. Training is bounded on
# its own by the retrain_training pool (airflow_settings.yaml). Set the variable to override.
cores=$(nproc)
export AIRFLOW__CORE__PARALLELISM=${AIRFLOW__CORE__PARALLELISM:-$((2 * cores > 2 ? 2 * cores : 2))}
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://127.0.0.1:$airflow_port/execution/
# Each task's supervisor calls the API server (one process, sharing these cores with the running tasks)
# to start, heartbeat and finish the task. Airflow's 5 s timeout turns a slow answer into a retry after a
# random back-off of up to 90 s: on 2 busy cores the first tasks of a fleet night waited about a minute
# that way (benchmarks/README.md, fleet night). Waiting longer for the answer costs less than retrying.
export AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT=${AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT:-30}
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
remember() { echo "$2 $(start_time "$2")" >"$pids/$1.pid"; }  # name, pid

launch() {  # name, command...: in its own session, so stop can end its whole process group
  local name=$1; shift
  alive "$name" && { echo "stack: $name already running (pid $(pid_of "$name"))"; return; }
  setsid "$@" >"$state/logs/$name.log" 2>&1 </dev/null &
  remember "$name" $!
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

cluster() { bash "$root/scripts/postgres.sh" "$@"; }  # the one place that creates, starts and stops a cluster
pg_running() { cluster status "$pg_dir"; }
pg_pid() { sed -n 1p "$pg_data/postmaster.pid"; }   # postmaster.pid: pid, data dir, start time, port, ...
pg_port() { cluster port "$pg_dir"; }

pg_init() {  # a new cluster: the superuser by peer on the socket only, the app role by password (in pgpass)
  [[ -f $pg_data/PG_VERSION ]] && return
  if ((EUID == 0)); then
    chmod 711 "$state"  # the postgres user may pass through to postgres/, and see nothing else here
  fi
  POSTGRES_ROLE=$pg_role PG_BIN=$pg_bin cluster init "$pg_dir" airflow mlflow || exit 1
}

pg_start() {  # one server per cluster: a running one is reused (its port is in postmaster.pid)
  ln -sfn "$pg_dir/server.log" "$state/logs/postgres.log"
  # shellcheck disable=SC2086 # no POSTGRES_PORT: the script picks a free port
  PG_BIN=$pg_bin cluster start "$pg_dir" ${POSTGRES_PORT:-} >/dev/null || exit 1
  remember postgres "$(pg_pid)"  # pg_ctl starts the server in a session of its own
}

pg_stop() {  # pg_ctl removes postmaster.pid, the socket and its lock file; a kill only if it hangs
  PG_BIN=$pg_bin cluster stop "$pg_dir"
  if alive postgres; then
    kill -KILL -- "-$(pid_of postgres)" 2>/dev/null || true
    for _ in $(seq 1 20); do kill -0 -- "-$(pid_of postgres)" 2>/dev/null || break; sleep 0.5; done
    PG_BIN=$pg_bin cluster stop "$pg_dir"  # tidies what the killed server left
  fi
  rm -f "$pids/postgres.pid"
}

all_running() {
  local name
  [[ $database == sqlite ]] || alive postgres || return 1
  for name in "${services[@]}"; do alive "$name" || return 1; done
}

urls() {
  local password
  password=$("$bin/python" -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' \
    "$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated" "${STACK_USER:-admin}")
  echo "stack: Airflow UI http://127.0.0.1:$airflow_port (user ${STACK_USER:-admin}, password $password)"
  echo "stack: MLflow UI  $MLFLOW_TRACKING_URI"
  echo "stack: logs in $state/logs/; stop with: STACK_DIR=$state bash scripts/stack.sh stop"
}

start() {
  if all_running; then  # a second `start` starts nothing: it says what runs
    echo "stack: already running in $state"
    status
    urls
    return
  fi
  bash scripts/setup.sh --stack >/dev/null
  mkdir -p "$state/logs" "$pids" "$state/mlflow" "$RETRAIN_ARTIFACTS_ROOT"
  local mlflow_store
  if [[ $database == sqlite ]]; then
    echo "stack: $state holds SQLite databases and no PostgreSQL cluster (the demo's): opening them on SQLite"
    unset AIRFLOW__DATABASE__SQL_ALCHEMY_CONN  # Airflow's default: $AIRFLOW_HOME/airflow.db
    mlflow_store="sqlite:///$state/mlflow/mlflow.db"
  else
    if ((${#pg_socket} + 18 > 107)); then  # sun_path holds 107 bytes: <dir>/.s.PGSQL.<port>
      echo "stack: STACK_DIR=$state: the socket path $pg_socket/.s.PGSQL.<port> is longer than a Unix socket allows (107 bytes); use a shorter STACK_DIR" >&2
      exit 1
    fi
    pg_init
    pg_start
    local db="$pg_role@127.0.0.1:$(pg_port)"
    # psycopg 3: Airflow 3.3 picks its PostgreSQL engine options for psycopg 3 whenever it is
    # installed (apache-airflow-providers-postgres installs it); its async engine uses asyncpg.
    export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="postgresql+psycopg://$db/airflow"
    mlflow_store="postgresql://$db/mlflow"  # SQLAlchemy's default PostgreSQL driver: psycopg2
  fi
  if ! "$bin/airflow" db migrate >"$state/logs/db-migrate.log" 2>&1; then
    echo "stack: airflow db migrate failed; see $state/logs/db-migrate.log" >&2
    stop
    exit 1
  fi
  "$bin/python" scripts/apply_airflow_settings.py airflow_settings.yaml
  launch mlflow "$bin/mlflow" server --host 127.0.0.1 --port "$mlflow_port" --workers 1 \
    --backend-store-uri "$mlflow_store" --artifacts-destination "$state/mlflow/artifacts"
  launch api-server "$bin/airflow" api-server --host 127.0.0.1 --port "$airflow_port"
  launch scheduler "$bin/airflow" scheduler
  launch dag-processor "$bin/airflow" dag-processor
  launch triggerer "$bin/airflow" triggerer
  wait_for "MLflow" 90 curl -sf "$MLFLOW_TRACKING_URI/health" || { stop; exit 1; }
  wait_for "Airflow" 180 healthy || { stop; exit 1; }
  urls
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
  pg_stop  # last: the services above held connections to it
  echo "stack: stopped"
}

status() {
  local name code=0
  if [[ $database == sqlite ]]; then
    echo "postgres: not used (SQLite databases in $state)"
  elif alive postgres; then
    echo "postgres: running (pid $(pid_of postgres), 127.0.0.1:$(pg_port), data $pg_data)"
  else
    echo "postgres: stopped"
    code=3
  fi
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
