"""DAG parse cost: the project's DAG file with 1, 20 and 100 specs vs a trivial two-task TaskFlow DAG.

Each measurement is a fresh interpreter that times `runpy.run_path(<dag file>)` (Airflow's SDK import
included, as the DAG processor pays it per file); median of REPEAT runs. Target: <= 1.2x the trivial
DAG with 1 spec, <= 1.5x with 100 specs.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from common import REPO, python_env, run_python, save

REPEAT = int(sys.argv[1]) if len(sys.argv) > 1 else 9
COUNTS = (1, 20, 100)
TRIVIAL = """
import datetime as dt
from airflow.sdk import dag, task

@dag(schedule="@daily", start_date=dt.datetime(2025, 1, 1), catchup=False, tags=["bench"])
def trivial():
    @task
    def extract():
        return 1

    @task
    def load(value):
        print(value)

    load(extract())

trivial()
"""
TIMER = (
    "import time, runpy, sys, json; t = time.perf_counter(); runpy.run_path(sys.argv[1]);"
    "print(json.dumps({'seconds': time.perf_counter() - t, 'heavy': sorted(m for m in "
    "('sklearn', 'pandas', 'mlflow', 'great_expectations', 'scipy') if m in sys.modules)}))"
)


def measure_once(dag_file: Path, specs_dir: Path | None) -> dict:
    import json

    env = python_env(**({"RETRAIN_SPECS_DIR": str(specs_dir)} if specs_dir else {}))
    return json.loads(run_python(TIMER, str(dag_file), env=env).strip().splitlines()[-1])


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-parse-"))
    trivial = work / "trivial_dag.py"
    trivial.write_text(TRIVIAL)
    template = (REPO / "include" / "models" / "churn.yaml").read_text()
    cases: dict[str, tuple[Path, Path | None]] = {"trivial 2-task TaskFlow DAG": (trivial, None)}
    for count in COUNTS:
        specs = work / f"specs-{count}"
        specs.mkdir()
        for i in range(count):
            name = f"churn{i:03d}"
            (specs / f"{name}.yaml").write_text(template.replace("name: churn", f"name: {name}", 1))
        cases[f"retrain_models.py with {count} spec(s)"] = (REPO / "dags" / "retrain_models.py", specs)
    # Round robin: a slow patch of the machine (disk cache, another process) hits every case alike.
    samples: dict[str, list[dict]] = {case: [] for case in cases}
    for _ in range(REPEAT):
        for case, (dag_file, specs_dir) in cases.items():
            samples[case].append(measure_once(dag_file, specs_dir))
    baseline = statistics.median(s["seconds"] for s in samples["trivial 2-task TaskFlow DAG"])
    rows = []
    for (case, runs), count in zip(samples.items(), [None, *COUNTS], strict=True):
        seconds = statistics.median(r["seconds"] for r in runs)
        row = {"case": case, "seconds": round(seconds, 4), "ratio": round(seconds / baseline, 3)}
        if count is not None:
            row |= {
                "target": 1.2 if count == 1 else 1.5,
                "heavy_imports": sorted({m for r in runs for m in r["heavy"]}),
            }
        rows.append(row)
    shutil.rmtree(work, ignore_errors=True)
    path = save("parse_cost", rows, notes=f"median of {REPEAT} fresh interpreters per case, cases interleaved")
    for row in rows:
        print(row)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
