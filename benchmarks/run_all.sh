#!/usr/bin/env bash
# Runs every benchmark (not part of the tests), then renders benchmarks/README.md's results table
# from benchmarks/results/*.json. Usage: bash benchmarks/run_all.sh [repetitions, default 3]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev >/dev/null
repeat=${1:-3}
export PYTHONPATH=$PWD:$PWD/include:$PWD/plugins GX_ANALYTICS_ENABLED=False AIRFLOW__CORE__LOAD_EXAMPLES=False
cd benchmarks
# Parse times are short and noisy: three times the repetitions, interleaved (see parse_cost.py).
../.venv/bin/python parse_cost.py "$((repeat * 3))"
../.venv/bin/python scaling.py 100000,1000000,5000000 "$repeat"
../.venv/bin/python orchestration.py 1000000 "$repeat"
# Where a night's time goes: py-spy over two nights at 1M rows (about 4 minutes; py-spy is in requirements-dev.txt).
../.venv/bin/python profile_night.py 1000000
# One night of 20 models through the scheduler on the PostgreSQL stack, at parallelism 1, 2 and the
# stack's default (about 25 minutes on an idle 2-core machine; not repeated).
../.venv/bin/python fleet.py 20 200000 1,2,default
# A PostgreSQL table of 1M, 5M, 10M rows: once (each case takes minutes; generating 10M rows too).
../.venv/bin/python sql_scaling.py 1000000,5000000,10000000 1
# The fleet page with 100 models in Airflow's API server app (about 5 minutes, most of it the set-up).
../.venv/bin/python fleet_page.py 100 40
../.venv/bin/python render.py
