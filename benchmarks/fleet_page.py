"""Fleet page: server time of the Models page (/retrain/) and its JSON API (/retrain/api/models) with N
model specs (default 100), each with three registered versions, aliases and a last run with its step
outputs in Airflow's metadata; against ONE `search_model_versions` round trip to the same MLflow server,
measured in the same run. Also: the same page with 10 specs (does the cost grow with the fleet?), and
what one search of every model saves over one registry round trip per model.

The page runs in Airflow's own API server app (`create_app("all")`, the plugins folder loaded as the
API server loads it) called in-process, so the times are the server's, without a network hop.
Usage: python benchmarks/fleet_page.py [models, default 100] [requests per case, default 40]
"""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO, save

MODELS = int(sys.argv[1]) if len(sys.argv) > 1 else 100
REQUESTS = int(sys.argv[2]) if len(sys.argv) > 2 else 40
SMALL = 10
BIN = Path(sys.executable).parent
sys.path.insert(0, str(REPO))

work = Path(tempfile.mkdtemp(prefix="fleet-bench-"))
specs, small_specs = work / "specs", work / "specs_small"
specs.mkdir()
small_specs.mkdir()
os.environ.update(
    AIRFLOW_HOME=str(work / "airflow"),
    AIRFLOW__CORE__LOAD_EXAMPLES="False",
    AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "dags"),
    AIRFLOW__CORE__PLUGINS_FOLDER=str(REPO / "plugins"),
    AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="admin:admin",
    RETRAIN_SPECS_DIR=str(specs),
    GX_ANALYTICS_ENABLED="False",
)

from tests.support import MlflowServer, write_spec  # noqa: E402 - after the environment Airflow reads

NAMES = [f"fleet_{i:03d}" for i in range(MODELS)]


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed(fn, repeat: int = REQUESTS) -> list[float]:
    fn()  # warm: imports, caches, connections
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return samples


def populate_registry(uri: str) -> None:
    """Three versions per model, tagged as evaluate and promote tag them; champion and previous set."""
    from mlflow.tracking import MlflowClient

    from retrain.tags import Tag

    client = MlflowClient(uri)
    experiment = client.create_experiment("fleet-bench")
    evaluation = json.dumps({"metric": "roc_auc", "challenger": {"primary": 0.81, "secondary": {"ap": 0.5}},
                             "slices": {f"plan={p}": {"challenger": 0.8, "champion": 0.79} for p in "abcdefgh"},
                             "bootstrap": {"low": 0.001, "high": 0.02, "resamples": 200}})  # fmt: skip
    for name in NAMES:
        client.create_registered_model(name)
        for decision, day in (("promoted", 1), ("promoted", 2), ("declined", 3)):
            run = client.create_run(experiment, tags={Tag.MODEL_NAME: name})
            tags = {
                Tag.DECISION: decision, Tag.REASONS: "roc_auc 0.8100 vs 0.8000 | beats the baseline | slices ok",
                Tag.WINDOW_END: f"2025-05-0{day}", Tag.CHALLENGER_SCORE: "0.81", Tag.CHAMPION_SCORE: "0.80",
                Tag.METRIC: "roc_auc", Tag.EVALUATION: evaluation, Tag.RUN_ID: f"manual__{day}",
                Tag.EVALUATED_BY_RUN: f"manual__{day}",
                **{Tag.report(r): f"/artifacts/{name}/reports/{r}.html" for r in ("validation_html", "evaluation_html")},
            }  # fmt: skip
            client.create_model_version(name, f"runs:/{run.info.run_id}/model", run.info.run_id, tags=tags)
        client.set_registered_model_alias(name, "champion", "2")
        client.set_registered_model_alias(name, "previous", "1")
        client.set_registered_model_tag(name, Tag.CHAMPION_SINCE, "2@2025-05-02T02:10:00+00:00")


def populate_airflow() -> None:
    """The DAGs parsed from the specs, and a finished run of each with its drift and evaluation outputs."""
    subprocess.run([str(BIN / "airflow"), "db", "migrate"], check=True, capture_output=True)
    subprocess.run([str(BIN / "airflow"), "dags", "reserialize"], check=True, capture_output=True)
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState
    from airflow.utils.types import DagRunTriggeredByType

    from retrain.contracts import DriftResult, EvaluationResult
    from retrain.pipeline import producer

    with create_session() as session:
        for name in NAMES:
            dag = SerializedDagModel.get_dag(f"retrain_{name}", session=session)
            run = dag.create_dagrun(
                run_id="manual__3", run_after=dt.datetime(2025, 5, 3, 2, tzinfo=dt.UTC), run_type="manual",
                triggered_by=DagRunTriggeredByType.REST_API, triggering_user_name="admin",
                state=DagRunState.SUCCESS, session=session,
            )  # fmt: skip
            for ti in run.get_task_instances(session=session):
                ti.state = TaskInstanceState.SUCCESS
            session.flush()
            outputs = {
                DriftResult: DriftResult(True, "2", True, ("monthly_spend",), False, 0.31),
                EvaluationResult: EvaluationResult(name, "3", "r3", "2", False, False, False, ("worse",), False,
                                                   "2025-05-03", "roc_auc"),
            }  # fmt: skip
            for kind, value in outputs.items():
                XComModel.set("return_value", value.to_xcom(), dag_id=run.dag_id, task_id=producer(kind).task_id,
                              run_id=run.run_id, session=session)  # fmt: skip


def main() -> None:
    for index, name in enumerate(NAMES):
        spec = write_spec(specs, name, **{"schedule.cron": "0 2 * * *", "schedule.tags": [f"team-{index % 5}"]})
        if index < SMALL:
            (small_specs / spec.name).write_text(spec.read_text())
    server = MlflowServer(work / "mlflow").start()
    try:
        os.environ["MLFLOW_TRACKING_URI"] = server.uri
        started = time.perf_counter()
        populate_registry(server.uri)
        populate_airflow()
        setup = time.perf_counter() - started

        from airflow.api_fastapi.app import create_app, get_auth_manager
        from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
        from fastapi.testclient import TestClient
        from mlflow.tracking import MlflowClient

        from retrain import fleet
        from retrain.registry import Registry
        from retrain_ui.facts import read_airflow_facts

        client = TestClient(create_app("all"))
        token = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="admin", role="admin"))
        headers = {"Authorization": f"Bearer {token}"}

        def get(path: str) -> None:
            response = client.get(path, headers=headers)
            assert response.status_code == 200, response.text[:300]

        mlflow = MlflowClient(server.uri)
        registry = Registry(server.uri)
        dag_ids = [f"retrain_{name}" for name in NAMES]
        assert len(client.get("/retrain/api/models", headers=headers).json()["models"]) == MODELS
        page = client.get("/retrain/", headers=headers).text
        assert page.count('<tr><td><a href="/retrain/models/fleet_') == MODELS and "unreachable" not in page

        cases = {
            "baseline: one search_model_versions round trip (1 model)": lambda: mlflow.search_model_versions(
                f"name='{NAMES[0]}'"
            ),
            f"Models page /retrain/ ({MODELS} specs)": lambda: get("/retrain/"),
            f"JSON API /retrain/api/models ({MODELS} specs)": lambda: get("/retrain/api/models"),
            f"Model page /retrain/models/{NAMES[0]}": lambda: get(f"/retrain/models/{NAMES[0]}"),
            f"part: one registry search of {MODELS} models (Registry.summaries)": lambda: registry.summaries(NAMES),
            f"part: Airflow facts of {MODELS} DAGs": lambda: read_airflow_facts(dag_ids, fleet.output_task_ids()),
        }
        samples = {label: timed(fn) for label, fn in cases.items()}
        every_version = ", ".join(f"'{name}'" for name in NAMES)
        samples[f"instead: one search_model_versions of all {3 * MODELS} versions"] = timed(
            lambda: mlflow.search_model_versions(f"name IN ({every_version})", max_results=10_000),
            repeat=max(REQUESTS // 4, 3),
        )
        per_model = timed(lambda: [mlflow.get_registered_model(name) for name in NAMES], repeat=max(REQUESTS // 8, 3))
        samples[f"instead: {MODELS} get_registered_model round trips"] = per_model
        os.environ["RETRAIN_SPECS_DIR"] = str(small_specs)
        samples[f"Models page /retrain/ ({SMALL} specs)"] = timed(lambda: get("/retrain/"))
    finally:
        server.stop()

    base = statistics.median(next(iter(samples.values())))
    rows = [
        {
            "case": label,
            "median_ms": round(statistics.median(values) * 1000, 1),
            "p95_ms": round(percentile(values, 0.95) * 1000, 1),
            "ratio_to_one_search": round(statistics.median(values) / base, 2),
            "requests": len(values),
        }
        for label, values in samples.items()
    ]
    for row in rows:
        print(row)
    notes = (
        f"{MODELS} specs, 3 versions each; in-process requests to Airflow's API server app; median and p95 of "
        f"{REQUESTS} requests after one warm-up; set-up (registry + Airflow metadata) took {setup:.0f} s"
    )
    print(save("fleet_page", rows, notes))


if __name__ == "__main__":
    main()
