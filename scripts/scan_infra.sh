#!/usr/bin/env bash
# The infrastructure scan of the test command: checkov over the training pods the DAGs build (dumped by
# scripts/dump_pods.py), the Kubernetes manifests in deploy/ and the Dockerfile; hadolint over the
# Dockerfile. Offline (--skip-download). A check that does not apply is skipped next to its resource with
# its reason (checkov.io/skipN annotations on the pod, `# checkov:skip=` lines in the Dockerfile).
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -x .venv-scan/bin/checkov ]] || { echo "scan_infra: .venv-scan missing: run bash scripts/setup.sh --dev" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
PYTHONPATH=include:plugins .venv/bin/python scripts/dump_pods.py "$work/pods" | grep '^dump_pods'
cp -r deploy "$work/deploy"
cp Dockerfile "$work/Dockerfile"
.venv-scan/bin/checkov -d "$work" --framework kubernetes dockerfile --compact --quiet --skip-download
.venv-scan/bin/hadolint Dockerfile
echo "scan_infra: checkov and hadolint found nothing"
