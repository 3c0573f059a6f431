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

echo "== pytest (two processes: the e2e layer on its stack in one, the rest in the other; tests/conftest.py)"
mkdir -p test-artifacts
set +e
.venv/bin/python -m pytest -n "${PYTEST_WORKERS:-2}" --dist loadgroup --durations=15 "$@"
status=$?
set -e
if [[ $status == 5 ]]; then
  echo "test.sh: pytest collected no tests: that is a failure, not a pass" >&2
  exit 1
fi
exit $status
