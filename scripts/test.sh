#!/usr/bin/env bash
# The test command: set-up (idempotent), lint, the infrastructure scan, then every test layer (unit, dags,
# security, integration, e2e).
# Extra arguments go to pytest, e.g. `scripts/test.sh -m "not e2e"`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev

echo "== ruff (including Airflow's AIR rules)"
.venv/bin/ruff check .

echo "== infrastructure scan: checkov (pods, manifests, Dockerfile) and hadolint"
scan_started=$SECONDS
bash scripts/scan_infra.sh
echo "   scan took $((SECONDS - scan_started)) s"

mkdir -p test-artifacts
set +e
if [[ $# -gt 0 ]]; then
  echo "== pytest $*"
  .venv/bin/python -m pytest --durations=15 "$@"
  status=$?
else
  # Two pytest processes at once: the e2e layer (one stack, mostly waiting on its scheduler) and every other
  # layer; the e2e output follows the other's. Either failing, or collecting nothing, fails the command.
  echo "== pytest: tests/e2e (output in test-artifacts/pytest-e2e.log, shown below) and the other layers, at once"
  .venv/bin/python -m pytest --durations=10 tests/e2e >test-artifacts/pytest-e2e.log 2>&1 &
  e2e_pid=$!
  .venv/bin/python -m pytest --durations=15 --ignore=tests/e2e
  status=$?
  wait "$e2e_pid"
  e2e_status=$?
  echo "== pytest tests/e2e"
  cat test-artifacts/pytest-e2e.log
  if [[ $status == 0 || ( $status == 5 && $e2e_status != 0 ) ]]; then status=$e2e_status; fi
  if [[ $e2e_status == 5 ]]; then status=5; fi
fi
set -e
if [[ $status == 5 ]]; then
  echo "test.sh: pytest collected no tests: that is a failure, not a pass" >&2
  exit 1
fi
exit $status
