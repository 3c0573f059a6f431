"""Helpers every test layer shares: the repository root, free ports, a real MLflow server, model specs
written for a test, and whole DAG runs with dag.test(). Importing this module imports no Airflow."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml

from retrain.pipeline import task_ids

REPO = Path(__file__).resolve().parents[2]

DEMO_DATA = REPO / "include" / "data" / "demo"
DEMO_SCORING = REPO / "include" / "data" / "demo_scoring"
DEMO_LABELS = REPO / "include" / "data" / "demo_labels"
DEMO_SPEC = REPO / "include" / "models" / "churn.yaml"
BIN = Path(sys.executable).parent


# The retraining chain in order (from the pipeline definition): what DAG-level tests assert task states on.
TASKS = task_ids()


def migrate_airflow_db() -> None:
    """Airflow's metadata DB at this session's AIRFLOW_HOME, migrated, with airflow_settings.yaml applied."""
    subprocess.run([str(BIN / "airflow"), "db", "migrate"], check=True, capture_output=True)
    subprocess.run([sys.executable, str(REPO / "scripts" / "apply_airflow_settings.py"), str(REPO / "airflow_settings.yaml")],
                   check=True, capture_output=True)  # fmt: skip


def free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


def server_env() -> dict[str, str]:
    # MLflow's job runner (GenAI evaluation jobs, trace roll-ups: unused here) forks a dozen huey workers.
    return {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


class MlflowServer:
    """A real MLflow tracking server and registry on a free loopback port, its store under `root`."""

    def __init__(self, root: Path, port: int | None = None) -> None:
        self.root = root
        self.port = port or free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> MlflowServer:
        self.root.mkdir(parents=True, exist_ok=True)
        log = open(self.root / "server.log", "ab")
        self.process = subprocess.Popen(
            [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(self.port),
             "--backend-store-uri", f"sqlite:///{self.root}/mlflow.db",
             "--artifacts-destination", str(self.root / "artifacts"), "--workers", "1"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=server_env(),
        )  # fmt: skip
        wait_http(f"{self.uri}/health")
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait()


@contextlib.contextmanager
def tracking(server: MlflowServer):
    """Point MLflow clients (this process and the jobs it starts) at the server, then stop it."""
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = server.uri
    # Fail fast when a test stops the server on purpose, instead of MLflow's long default backoff.
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "2"
    os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] = "1"
    try:
        yield server
    finally:
        server.stop()
        if previous is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous


def artifacts(name: str) -> Path:
    """The model's feature partitions and reports under this session's RETRAIN_ARTIFACTS_ROOT."""
    return Path(os.environ["RETRAIN_ARTIFACTS_ROOT"]) / name


_counter = iter(range(1, 10_000))


def write_spec(directory: Path, name: str | None = None, *, loop: bool = False, **overrides) -> Path:
    """The demo spec under a fresh name (so each test has its own registered model), with overrides.

    Overrides are dotted paths: write_spec(d, **{"drift.retrain": "on_drift"}). Without `loop`, the spec keeps
    the retraining DAG alone, on its cron (no scoring, no monitoring, no asset events), as before those existed;
    with it, scoring reads the demo's rows to score and monitoring reads labels from `<directory>/labels/<name>`.
    """
    document = yaml.safe_load(DEMO_SPEC.read_text())
    document["name"] = name or f"churn_it{os.getpid()}_{next(_counter)}"
    document["data"]["uri"] = str(DEMO_DATA)
    if loop:
        document["scoring"]["input"]["uri"] = str(DEMO_SCORING)
        document["monitoring"]["labels"]["uri"] = str(directory / "labels" / document["name"])
    else:
        for section in ("scoring", "monitoring"):
            document.pop(section)
        document["schedule"].pop("events")
    # dag.test() waits out retry delays: a failing task must fail the run at once.
    document["schedule"]["retries"] = 0
    document["evaluation"]["bootstrap"]["resamples"] = 50
    for dotted, value in overrides.items():
        node = document
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    path = directory / f"{document['name']}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def ensure_demo_data() -> None:
    if not (DEMO_DATA / "events_2025-08.parquet").exists() or not (DEMO_LABELS / "labels_2025-08-31.parquet").exists():
        subprocess.run(
            [sys.executable, "-m", "retrain.demo_data", str(DEMO_DATA), "--scoring", str(DEMO_SCORING),
             "--labels", str(DEMO_LABELS)],
            check=True,
        )  # fmt: skip


def copy_demo_data(target: Path) -> Path:
    shutil.copytree(DEMO_DATA, target)
    return target


@contextlib.contextmanager
def specs_dir(directory: Path):
    """dag.test() serializes the DAGs it finds in the dags folder: point that folder's factory at `directory`."""
    previous = os.environ["RETRAIN_SPECS_DIR"]
    os.environ["RETRAIN_SPECS_DIR"] = str(directory)
    try:
        yield
    finally:
        os.environ["RETRAIN_SPECS_DIR"] = previous


def run_dag(spec_path: Path, end_date: dt.date, before_task: dict | None = None, pipeline: str = "retrain", **conf):
    """Run one of the spec's DAGs (default: retraining) with dag.test() and return {task_id: state} and the DagRun.

    before_task maps a task id to a callable run right before that task executes (fault injection). The
    scoring and monitoring DAGs take their day from conf `date`; `end_date` is then only the run's logical date.
    """
    from retrain.pipeline import dag_id_of
    from retrain.spec import load_spec
    from retrain_operators.dag_factory import build_spec_dags

    spec = load_spec(spec_path)
    (dag,) = [d for d in build_spec_dags(spec, spec_path) if d.dag_id == dag_id_of(spec.name, pipeline)]
    for task_id, hook in (before_task or {}).items():
        dag.get_task(task_id)._pre_execute_hook = hook
    logical = dt.datetime.combine(end_date, dt.time(), tzinfo=dt.UTC)
    with specs_dir(spec_path.parent):
        dag_run = dag.test(logical_date=logical, run_conf=conf or None)
    states = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
    return states, dag_run


def bare_run(spec, end_date: dt.date, run_id: str = "manual__test", **options):
    """A `Run` for calling steps and the training job without Airflow."""
    from retrain.options import Run, RunOptions
    from retrain.window import Window

    return Run(spec.dag_id, run_id, RunOptions.parse(options), Window.ending(end_date, spec.data))


def run_rollback(spec_dir: Path, **conf) -> dict[str, str]:
    """Run retrain_rollback as parsed with this test's specs folder; returns {task_id: state}."""
    import runpy

    with specs_dir(spec_dir):
        dag = runpy.run_path(str(REPO / "dags" / "retrain_rollback.py"))["dag"]
        dag_run = dag.test(run_conf=conf)
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}


def registry_snapshot(registry, name: str) -> dict:
    """What a run must not change when it is refused: the aliases and every version's decision."""
    from retrain.tags import Tag

    return {
        "aliases": registry.aliases(name),
        "versions": {v.version: v.tags.get(Tag.DECISION) for v in registry.versions(name)},
    }


def files_under(root: Path) -> set[str]:
    """Every file below root (relative paths), to show a refused run wrote nothing new."""
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} if root.exists() else set()
