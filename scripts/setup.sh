#!/usr/bin/env bash
# Idempotent set-up: a Python 3.11 virtualenv in .venv with requirements.txt (and requirements-dev.txt
# with --dev), the project installed editable, Debian's chromium for browser tests (--dev), Debian's
# postgresql server for the local stack (--stack, and --dev since the e2e tests run the stack), and
# the bundled demo data. A stamp of the requirement files makes a second call take a second.
set -euo pipefail
cd "$(dirname "$0")/.."

dev=0 stack=0
for arg in "$@"; do
  case $arg in
    --dev) dev=1 stack=1 ;;
    --stack) stack=1 ;;
    *) echo "setup: unknown option $arg (use --dev or --stack)" >&2; exit 2 ;;
  esac
done

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
stamp_of() { echo ".venv/.installed-$(cat requirements.txt "$1" pyproject.toml | sha256sum | cut -c1-16)"; }
stamp=$(stamp_of "$requirements")
# The dev list includes the runtime list: a venv set up with --dev needs nothing more without it.
if [[ ! -f "$stamp" && ! -f "$(stamp_of requirements-dev.txt)" ]]; then
  echo "setup: installing $requirements into .venv (a few minutes the first time)"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -r "$requirements"
  .venv/bin/python -m pip install --quiet --no-deps --no-build-isolation -e . 2>/dev/null \
    || .venv/bin/python -m pip install --quiet --no-deps -e .
  touch "$stamp"
fi

# The infrastructure scanners (checkov, hadolint) in a venv of their own (checkov's pins clash with
# Airflow's), from requirements-scan.txt; the stamp makes a second call free.
if [[ $dev == 1 ]]; then
  scan_stamp=".venv-scan/.installed-$(sha256sum requirements-scan.txt | cut -c1-16)"
  if [[ ! -f "$scan_stamp" ]]; then
    echo "setup: installing the infrastructure scanners into .venv-scan"
    [[ -x .venv-scan/bin/python ]] || "$python_bin" -m venv .venv-scan
    .venv-scan/bin/python -m pip install --quiet -r requirements-scan.txt
    touch "$scan_stamp"
  fi
fi

apt_install() {  # package, what fails without it
  echo "setup: installing Debian's $1"
  if [[ $(id -u) == 0 ]]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1") >/dev/null
  elif command -v sudo >/dev/null; then
    (sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1") >/dev/null
  else
    echo "setup: cannot install $1 (not root, no sudo); $2" >&2
  fi
}

if [[ $dev == 1 ]] && ! command -v chromium >/dev/null; then
  apt_install chromium "browser tests will fail"
fi
# The stack's metadata database (scripts/stack.sh): binaries in /usr/lib/postgresql/<version>/bin.
if [[ $stack == 1 ]] && ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  apt_install postgresql "scripts/stack.sh cannot start"
fi

if [[ ! -f include/data/demo/events_2025-08.parquet || ! -f include/data/demo_labels/labels_2025-08-31.parquet ]]; then
  .venv/bin/python -m retrain.demo_data include/data/demo --scoring include/data/demo_scoring --labels include/data/demo_labels
fi
