"""Orchestration overhead: a full retraining DAG run (dag.test(), local backend, local MLflow) on
ROWS x 20 columns against a bare script doing the same work with no Airflow: read, validate, build
features, fit, evaluate, log and register in MLflow. Target: DAG run <= 1.3x the bare script.

Both run against the same MLflow server (started here), each repetition with a fresh model name.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, python_env, save
from wide_data import spec_document, write

ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
REPEAT = int(sys.argv[2]) if len(sys.argv) > 2 else 3
sys.path.insert(0, str(REPO))

# The same job as a bare script: read, validate, features, fit, evaluate, decide, promote.
BARE = (Path(__file__).resolve().parent / "bare_job.py").read_text()

DAG = r"""
import datetime as dt, sys
from pathlib import Path
from retrain.spec import load_spec
from retrain_operators.dag_factory import build_retrain_dag
spec_path = Path(sys.argv[1])
dag = build_retrain_dag(load_spec(spec_path), spec_path)
run = dag.test(logical_date=dt.datetime(2025, 5, 1, tzinfo=dt.UTC))
states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
assert all(s in ("success", "skipped") for s in states.values()) and states["train"] == "success", states
"""


def main() -> None:
    from tests.support import MlflowServer

    work = Path(tempfile.mkdtemp(prefix="bench-orch-"))
    server = MlflowServer(work / "mlflow").start()
    airflow_home = work / "airflow"
    env = python_env(
        MLFLOW_TRACKING_URI=server.uri, AIRFLOW_HOME=str(airflow_home), RETRAIN_ARTIFACTS_ROOT=str(work / "artifacts"),
        # dag.test() runs the DAGs serialized from the dags folder: its factory must see these specs.
        RETRAIN_SPECS_DIR=str(work / "specs"),
        AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "dags"), AIRFLOW__CORE__PLUGINS_FOLDER=str(REPO / "plugins"),
        GX_ANALYTICS_ENABLED="False",
    )  # fmt: skip
    try:
        subprocess.run(
            [str(Path(sys.executable).parent / "airflow"), "db", "migrate"], env=env, check=True, capture_output=True
        )
        subprocess.run([sys.executable, str(REPO / "scripts" / "apply_airflow_settings.py"), str(REPO / "airflow_settings.yaml")],
                       env=env, check=True, capture_output=True, cwd=REPO)  # fmt: skip
        data_spec = write(ROWS, work / "data", name="benchdata")
        data_uri = json.loads(json.dumps(spec_document("x", str(work / "data" / "data"))))["data"]["uri"]
        timings = {"bare script": [], "Airflow DAG (dag.test)": []}
        for rep in range(REPEAT):
            for case, code in (("bare script", BARE), ("Airflow DAG (dag.test)", DAG)):
                name = f"bench_{'bare' if case == 'bare script' else 'dag'}_{rep}"
                spec_path = work / "specs" / f"{name}.yaml"
                spec_path.parent.mkdir(exist_ok=True)
                spec_path.write_text(data_spec.read_text().replace("name: benchdata", f"name: {name}").replace(
                    str(work / "data" / "data"), data_uri))  # fmt: skip
                started = time.perf_counter()
                out = subprocess.run([sys.executable, "-c", code, str(spec_path), str(work / "out" / name)],
                                     env=env, capture_output=True, text=True, cwd=REPO)  # fmt: skip
                elapsed = time.perf_counter() - started
                if out.returncode != 0:
                    raise RuntimeError(f"{case} failed:\n{out.stderr[-4000:]}")
                timings[case].append(elapsed)
                print(f"{case} rep {rep}: {elapsed:.1f}s", flush=True)
        bare = statistics.median(timings["bare script"])
        rows = [{"case": case, "rows": ROWS, "seconds": round(statistics.median(t), 2), "ratio": round(statistics.median(t) / bare, 3),
                 "samples": [round(s, 2) for s in t]} for case, t in timings.items()]  # fmt: skip
        rows[-1]["target"] = 1.3
        for row in rows:
            print(row)
        print(
            "wrote", save("orchestration", rows, notes=f"median of {REPEAT}; wall time of a fresh interpreter per run")
        )
    finally:
        server.stop()


if __name__ == "__main__":
    os.chdir(REPO)
    main()
