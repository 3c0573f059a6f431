#!/usr/bin/env bash
# Idempotent set-up: a Python 3.11 virtualenv in .venv with requirements.txt (and requirements-dev.txt
# with --dev), the project installed editable, Debian's chromium for browser tests (--dev), and the
# bundled demo data. A stamp of the requirement files makes a second call take a second.
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0
[[ "${1:-}" == "--dev" ]] && dev=1

python_bin="${PYTHON:-}"
if [[ -z "$python_bin" ]]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      python_bin="$candidate"; break
    fi
  done
fi
[[ -n "$python_bin" ]] || { echo "setup: Python 3.11 is required (set PYTHON=/path/to/python3.11)" >&2; exit 1; }

[[ -x .venv/bin/python ]] || "$python_bin" -m venv .venv

requirements=requirements.txt
[[ $dev == 1 ]] && requirements=requirements-dev.txt
stamp=".venv/.installed-$(cat requirements.txt "$requirements" pyproject.toml | sha256sum | cut -c1-16)"
if [[ ! -f "$stamp" ]]; then
  echo "setup: installing $requirements into .venv (a few minutes the first time)"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -r "$requirements"
  .venv/bin/python -m pip install --quiet --no-deps --no-build-isolation -e . 2>/dev/null \
    || .venv/bin/python -m pip install --quiet --no-deps -e .
  touch "$stamp"
fi

if [[ $dev == 1 ]] && ! command -v chromium >/dev/null; then
  echo "setup: installing Debian's chromium for the browser tests"
  if [[ $(id -u) == 0 ]]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null
  elif command -v sudo >/dev/null; then
    (sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null
  else
    echo "setup: cannot install chromium (not root, no sudo); browser tests will fail" >&2
  fi
fi

if [[ ! -f include/data/demo/events_2025-08.parquet ]]; then
  .venv/bin/python -m retrain.demo_data include/data/demo
fi
