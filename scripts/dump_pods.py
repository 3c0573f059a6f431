"""Writes the training pod of every spec's DAG, as Kubernetes would receive it, for the infrastructure scan.

For each spec in RETRAIN_SPECS_DIR (default include/models/), the DAG factory builds the DAG with the
kubernetes backend and its `train` task builds its pod (`build_pod_request_obj(dry_run=True)`, no cluster
needed) for a run on the spec's start date; the pod is written as `<out>/pod-<model>.yaml` (apiVersion and
kind added). The Kubernetes connection's extras (the XCom sidecar's image and resources) come from
airflow_settings.yaml unless AIRFLOW_CONN_KUBERNETES_DEFAULT is set. Exit 1 when a spec has no valid DAG.

    .venv/bin/python scripts/dump_pods.py OUT_DIR
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import yaml

REPO = Path(__file__).resolve().parents[1]


def kubernetes_connection() -> str:
    """The kubernetes_default connection of airflow_settings.yaml, as an AIRFLOW_CONN_* JSON value."""
    settings = yaml.safe_load((REPO / "airflow_settings.yaml").read_text())
    conn = next(c for c in settings["airflow"]["connections"] if c["conn_id"] == "kubernetes_default")
    return json.dumps({"conn_type": conn["conn_type"], "extra": conn.get("conn_extra") or {}})


def main(out: Path) -> int:
    os.environ.setdefault("AIRFLOW_CONN_KUBERNETES_DEFAULT", kubernetes_connection())
    from kubernetes.client import ApiClient

    from retrain.spec import spec_files
    from retrain_operators.dag_factory import build_model_dags

    out.mkdir(parents=True, exist_ok=True)
    failed = 0
    for dag_id, dag in build_model_dags(spec_files(), backend="kubernetes").items():
        if "invalid-spec" in dag.tags:
            print(f"dump_pods: {dag_id} has no valid DAG with the kubernetes backend:\n{dag.get_task('spec_error').message}")
            failed += 1
            continue
        if "train" not in dag.task_dict:  # score_<name> and monitor_<name> run no pod
            continue
        task = dag.get_task("train")
        start = dt.datetime.combine(task.spec.schedule.start_date, dt.time(), tzinfo=dt.UTC)
        task.prepare({"params": {}, "run_id": f"scheduled__{start.isoformat()}", "data_interval_end": start,
                      "dag_run": SimpleNamespace(conf={}, run_after=start, run_type="scheduled")})  # fmt: skip
        pod = task.build_pod_request_obj(context=None, dry_run=True)
        manifest = {"apiVersion": "v1", "kind": "Pod", **ApiClient().sanitize_for_serialization(pod)}
        path = out / f"pod-{task.spec.name}.yaml"
        path.write_text(yaml.safe_dump(manifest, sort_keys=False))
        print(f"dump_pods: wrote {path.relative_to(out.parent) if out.parent in path.parents else path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
