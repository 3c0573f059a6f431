"""Orchestration overhead: a full retraining DAG run (dag.test(), local backend, local MLflow) on
ROWS x 20 columns against two baselines measured in the same run:

- the bare job: a script doing the same work with no Airflow (read, validate, build features, fit,
  evaluate, log and register in MLflow). Target: DAG run <= 1.3x;
- the physical limit: a script that only reads the window, fits the same estimator and scores the
  holdout, plus Airflow's fixed cost (`airflow dags test` of a trivial two-task DAG). Target: <= 2.0x
  (issue 21). Per task: `train` <= 1.5x the bare read+fit+score, `evaluate` <= 1.5x the bare scoring of
  two models on the holdout plus the bootstrap, `validate_data` <= 2x the bare GX run of the same suite.

Each DAG repetition runs two nights of a fresh model (the first promotes, the second compares against
that champion), and once more with REGISTRY_VERSIONS versions already registered (no step's cost may
depend on them). Every case is a fresh interpreter; all run against the same MLflow server.
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

from retrain.tags import Tag

ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
REPEAT = int(sys.argv[2]) if len(sys.argv) > 2 else 3
REGISTRY_VERSIONS = 200
sys.path.insert(0, str(REPO))

# The same job as a bare script: read, validate, features, fit, evaluate, decide, promote.
BARE = (Path(__file__).resolve().parent / "bare_job.py").read_text()

# One night (argv[3]: the logical date); prints each task's seconds as JSON on the last line.
DAG = r"""
import datetime as dt, json, sys
from pathlib import Path
from retrain.spec import load_spec
from retrain_operators.dag_factory import build_retrain_dag
spec_path = Path(sys.argv[1])
day = dt.date.fromisoformat(sys.argv[3]) if len(sys.argv) > 3 else dt.date(2025, 5, 1)
dag = build_retrain_dag(load_spec(spec_path), spec_path)
run = dag.test(logical_date=dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC))
tis = run.get_task_instances()
states = {ti.task_id: str(ti.state) for ti in tis}
assert all(s in ("success", "skipped") for s in states.values()) and states["train"] == "success", states
print(json.dumps({ti.task_id: (ti.end_date - ti.start_date).total_seconds() for ti in tis if ti.start_date and ti.end_date}))
"""

# The physical limit: read the window's needed columns, fit the spec's estimator, score the holdout. With argv[2]
# "parts", then also the bare versions of what validate_data and evaluate do (timed inside, not part of the
# limit). Prints each part's seconds as JSON on the last line.
PHYSICAL = r"""
import datetime as dt, json, sys, time
import numpy as np
started = time.perf_counter()
from retrain.data import read_window
from retrain.features import build_pipeline
from retrain.spec import load_spec
from retrain.validation import validate_frame
from retrain.window import Window
from sklearn.metrics import roc_auc_score
spec = load_spec(sys.argv[1])
window = Window.ending(dt.date(2025, 5, 1), spec.data)
frame = read_window(spec, window, columns=[spec.data.timestamp_column, *spec.features.columns, spec.target]).frame
stamps = frame[spec.data.timestamp_column]
train, holdout = frame[stamps < window.holdout_start], frame[stamps >= window.holdout_start]
columns = list(spec.features.columns)
model = build_pipeline(spec).fit(train[columns], train[spec.target])
score = roc_auc_score(holdout[spec.target], model.predict_proba(holdout[columns])[:, 1])
fit_score = time.perf_counter() - started
if sys.argv[2:] != ["parts"]:
    print(json.dumps({"read_fit_score": fit_score, "score": score}))
    sys.exit(0)
started = time.perf_counter()
assert validate_frame(frame, spec, window).success
validate = time.perf_counter() - started
started = time.perf_counter()
y = holdout[spec.target].to_numpy()
a, b = (model.predict_proba(holdout[columns])[:, 1] for _ in range(2))  # two models' scores
score_two = time.perf_counter() - started
rng = np.random.default_rng(0)
for _ in range(spec.evaluation.bootstrap.resamples):
    index = rng.integers(0, len(y), len(y))
    roc_auc_score(y[index], a[index]) - roc_auc_score(y[index], b[index])
evaluate = time.perf_counter() - started
print(json.dumps({"read_fit_score": fit_score, "validate": validate, "evaluate": evaluate, "score_two": score_two,
                  "score": score}))
"""

TRIVIAL_DAG = """
import datetime as dt
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator
with DAG("trivial", schedule=None, start_date=dt.datetime(2025, 1, 1, tzinfo=dt.UTC), catchup=False):
    EmptyOperator(task_id="a") >> EmptyOperator(task_id="b")
"""


def bench_spec(data_spec: Path, work: Path, name: str) -> Path:
    """A spec named `name` in work/specs on the data `wide_data.write` wrote under work/data, in issue 21's
    configuration: HistGradientBoostingClassifier(max_iter=100) and the default 200 bootstrap resamples."""
    spec_path = work / "specs" / f"{name}.yaml"
    spec_path.parent.mkdir(exist_ok=True)
    text = data_spec.read_text().replace("name: benchdata", f"name: {name}")
    text = text.replace("max_iter: 50", "max_iter: 100").replace("resamples: 50", "resamples: 200")
    data_uri = spec_document("x", str(work / "data" / "data"))["data"]["uri"]
    spec_path.write_text(text.replace(str(work / "data" / "data"), data_uri))
    return spec_path


def trivial_task_seconds(database: Path) -> dict[str, float]:
    """The trivial DAG's last run: each task's seconds. The first task of a `dags test` also carries Airflow's
    start-up of the in-process execution API (about 3 s here): in the retraining DAG, `validate_data` does."""
    import sqlite3

    with sqlite3.connect(database) as db:
        rows = db.execute(
            "SELECT task_id, (julianday(end_date) - julianday(start_date)) * 86400 FROM task_instance"
            " WHERE dag_id = 'trivial' ORDER BY end_date DESC LIMIT 2"
        ).fetchall()
    return dict(rows)


def last_json(stdout: str) -> dict:
    """The last line of `stdout` that is a JSON object (a wrapper such as py-spy may print lines after it)."""
    return json.loads(next(line for line in reversed(stdout.splitlines()) if line.startswith("{")))


def register_versions(uri: str, name: str, count: int) -> None:
    """`count` versions of `name` in the registry (tagged like the job's, no champion), before its first night."""
    import logging

    from mlflow.tracking import MlflowClient

    logging.getLogger("mlflow.store.model_registry.abstract_store").setLevel(logging.WARNING)  # one line per version
    client = MlflowClient(tracking_uri=uri)
    client.create_registered_model(name)
    # The server accepts a local source only inside the artifact folder of the run it names.
    run = client.create_run(client.create_experiment(f"{name}-filler")).info
    for number in range(count):
        client.create_model_version(
            name, source=f"{run.artifact_uri}/model-{number}", run_id=run.run_id, tags={Tag.DECISION: "declined"}
        )


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
        dags = work / "trivial_dags"
        dags.mkdir()
        (dags / "trivial.py").write_text(TRIVIAL_DAG)
        trivial_env = {**env, "AIRFLOW__CORE__DAGS_FOLDER": str(dags)}
        airflow = str(Path(sys.executable).parent / "airflow")
        timings: dict[str, list[float]] = {}
        parts: dict[str, list[dict]] = {}

        def timed(case: str, command: list[str], environ: dict) -> str:
            started = time.perf_counter()
            out = subprocess.run(command, env=environ, capture_output=True, text=True, cwd=REPO)
            elapsed = time.perf_counter() - started
            if out.returncode != 0:
                raise RuntimeError(f"{case} failed:\n{out.stderr[-4000:]}")
            timings.setdefault(case, []).append(elapsed)
            print(f"{case} rep {rep}: {elapsed:.1f}s", flush=True)
            return out.stdout

        def spec_named(name: str) -> Path:
            return bench_spec(data_spec, work, name)

        for rep in range(REPEAT):
            bare = spec_named(f"bench_bare_{rep}")
            timed("bare script", [sys.executable, "-c", BARE, str(bare), str(work / "out" / bare.stem)], env)
            timed("physical: read + fit + score", [sys.executable, "-c", PHYSICAL, str(bare)], env)
            physical = timed("bare parts: read + fit + score, GX suite, two-model scoring + bootstrap",
                             [sys.executable, "-c", PHYSICAL, str(bare), "parts"], env)  # fmt: skip
            parts.setdefault("physical", []).append(last_json(physical))
            timed("Airflow fixed cost: trivial 2-task dags test", [airflow, "dags", "test", "trivial", "2025-05-01"],
                  trivial_env)  # fmt: skip
            parts.setdefault("trivial", []).append(trivial_task_seconds(airflow_home / "airflow.db"))
            dag = spec_named(f"bench_dag_{rep}")
            for case, day in (("Airflow DAG (dag.test)", "2025-05-01"), ("Airflow DAG, second night", "2025-05-02")):
                out = timed(case, [sys.executable, "-c", DAG, str(dag), str(work / "out" / dag.stem), day], env)
                parts.setdefault(case, []).append(last_json(out))
            crowded = spec_named(f"bench_crowded_{rep}")
            register_versions(server.uri, crowded.stem, REGISTRY_VERSIONS)
            case = f"Airflow DAG, {REGISTRY_VERSIONS} versions registered"
            out = timed(case, [sys.executable, "-c", DAG, str(crowded), str(work / "out" / crowded.stem)], env)
            parts.setdefault(case, []).append(last_json(out))

        def med(values: list[float]) -> float:
            return round(statistics.median(values), 2)

        bare_s = statistics.median(timings["bare script"])
        limit_s = statistics.median(timings["physical: read + fit + score"]) + statistics.median(
            timings["Airflow fixed cost: trivial 2-task dags test"]
        )
        rows = [{"case": case, "rows": ROWS, "seconds": med(t), "ratio": round(statistics.median(t) / bare_s, 3),
                 "samples": [round(s, 2) for s in t]} for case, t in timings.items()]  # fmt: skip
        for row in rows:
            if row["case"].startswith("Airflow DAG"):
                row["ratio_to_physical_limit"] = round(row["seconds"] / limit_s, 3)
                row["tasks"] = {task: med([p[task] for p in parts[row["case"]]]) for task in parts[row["case"]][0]}
        physical_parts = {
            key: med([p[key] for p in parts["physical"]])
            for key in ("read_fit_score", "validate", "evaluate", "score_two")
        }
        rows.append({"case": "bare parts (timed inside their script)", "rows": ROWS, **physical_parts})
        first = next(r for r in rows if r["case"] == "Airflow DAG (dag.test)")
        first["target"] = 1.3
        first["target_to_physical_limit"] = 2.0
        second = next(r for r in rows if r["case"] == "Airflow DAG, second night")["tasks"]
        startup = med([t["a"] - t["b"] for t in parts["trivial"]])
        rows.append({
            "case": "task ratios (issue 21)", "rows": ROWS,
            "train / bare read+fit+score": round(first["tasks"]["train"] / physical_parts["read_fit_score"], 3),
            "evaluate (second night) / bare two-model scoring + bootstrap": round(
                second["evaluate"] / physical_parts["evaluate"], 3),
            "validate_data / bare GX run of the suite": round(first["tasks"]["validate_data"] / physical_parts["validate"], 3),
            "Airflow's first-task start-up (trivial a - b)": startup,
            "validate_data net of that / bare GX run": round(
                (first["tasks"]["validate_data"] - startup) / physical_parts["validate"], 3),
        })  # fmt: skip
        for row in rows:
            print(row)
        notes = (
            f"median of {REPEAT}; wall time of a fresh interpreter per case; physical limit = the wall time of"
            f" read + fit + score in its own interpreter ({med(timings['physical: read + fit + score'])} s) + the"
            " trivial DAG's dags test; the bare parts are timed inside their one script (read + fit + score"
            f" {physical_parts['read_fit_score']} s there)"
        )
        print("wrote", save("orchestration", rows, notes=notes))
    finally:
        server.stop()


if __name__ == "__main__":
    os.chdir(REPO)
    main()
