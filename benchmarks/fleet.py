"""Fleet night: MODELS retraining DAGs (ROWS x 20 columns each, every model its own data) due at the same
cron, one scheduled night driven through the real scheduler on the PostgreSQL stack (scripts/stack.sh:
LocalExecutor, training pool of 2), against the same MODELS jobs run one after another as bare scripts
(bare_job.py: read, validate, features, fit, evaluate, promote) measured in the same run.

Per executor parallelism (AIRFLOW__CORE__PARALLELISM; "default" = what stack.sh picks), from the REST
API's task instances (queued_when, start_date, end_date): the wall time from the first task queued to the
last task done, each task's scheduling latency (queued -> running), and where the slots' time went.
Targets on 2 cores: wall <= 1.3 x (sum of bare jobs / 2); latency p95 <= 5 s.

Usage: python fleet.py [MODELS=20] [ROWS=200000] [PARALLELISMS=1,2,default]
(FLEET_PROFILE=<folder> also records a py-spy profile of each night; see `profiled`.)
The full run writes results/fleet.json; a smaller one results/fleet_<MODELS>x<ROWS>.json (not rendered).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path

import yaml
from common import REPO, python_env, save
from wide_data import frame, spec_document

MODELS = int(sys.argv[1]) if len(sys.argv) > 1 else 20
ROWS = int(sys.argv[2]) if len(sys.argv) > 2 else 200_000
PARALLELISMS = (sys.argv[3] if len(sys.argv) > 3 else "1,2,default").split(",")
FULL_SCALE = (MODELS, ROWS) == (20, 200_000)
CORES = 2  # the targets are stated for this machine: 2 cores, training pool of 2
RUN_TIMEOUT_S = 3 * 3600
sys.path.insert(0, str(REPO))


def night_of(now: dt.datetime) -> tuple[dt.date, str]:
    """The night driven and its cron: today (UTC), due at 00:00 and at no other time this year.

    The DAGs are unpaused after 00:00 with catchup=False, so the scheduler creates exactly this run
    (the latest cron point, which is also the start date); its window ends at midnight of that date."""
    night = now.astimezone(dt.UTC).date()
    return night, f"0 0 {night.day} {night.month} *"


def write_data(directory: Path, night: dt.date) -> list[Path]:
    """One Parquet file per model, each from its own seed, covering the 56 days before the night."""
    folders = []
    for index in range(MODELS):
        folder = directory / f"m{index:02d}"
        folder.mkdir(parents=True)
        frame(ROWS, seed=index, end=night).to_parquet(folder / "events.parquet", index=False, row_group_size=250_000)
        folders.append(folder)
    return folders


def write_specs(directory: Path, prefix: str, data: list[Path], night: dt.date, cron: str) -> list[str]:
    """The fleet's specs (model <prefix>_mNN on data NN), all on the same cron; returns the model names."""
    directory.mkdir(parents=True)
    names = []
    for index, folder in enumerate(data):
        name = f"{prefix}_m{index:02d}"
        document = spec_document(name, str(folder))
        # No retries: a failing task must end the night now, not in 5 minutes.
        document["schedule"] = {"cron": cron, "start_date": night.isoformat(), "retries": 0, "tags": [prefix]}
        (directory / f"{name}.yaml").write_text(yaml.safe_dump(document))
        names.append(name)
    return names


def run_bare_jobs(work: Path, data: list[Path], night: dt.date) -> list[float]:
    """Each model's job as a bare script in a fresh interpreter, one after another; their wall times."""
    from tests.support import MlflowServer

    server = MlflowServer(work / "bare-mlflow").start()
    env = python_env(MLFLOW_TRACKING_URI=server.uri, GX_ANALYTICS_ENABLED="False")
    specs = work / "bare-specs"
    try:
        seconds = []
        for name, folder in zip(write_specs(specs, "bare", data, night, "0 0 * * *"), data, strict=True):
            started = time.perf_counter()
            out = subprocess.run(
                [sys.executable, str(REPO / "benchmarks" / "bare_job.py"), str(specs / f"{name}.yaml"),
                 str(work / "bare-out" / name), night.isoformat()],
                env=env, capture_output=True, text=True, cwd=REPO,
            )  # fmt: skip
            seconds.append(time.perf_counter() - started)
            if out.returncode != 0:
                raise RuntimeError(f"bare job {name} on {folder} failed:\n{out.stderr[-4000:]}")
            print(f"bare job {name}: {seconds[-1]:.1f}s", flush=True)
        return seconds
    finally:
        server.stop()


class Api:
    """The stack's REST API with a bearer token for its admin user."""

    def __init__(self, base: str, airflow_home: Path) -> None:
        self.base = base
        password = json.loads((airflow_home / "simple_auth_manager_passwords.json.generated").read_text())["admin"]
        self.token = self.call("POST", "/auth/token", {"username": "admin", "password": password})["access_token"]

    def call(self, method: str, path: str, body: Mapping | None = None) -> dict:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if getattr(self, "token", None):
            headers["Authorization"] = f"Bearer {self.token}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read() or b"{}")


def stack_env(work: Path, specs: Path, parallelism: str) -> dict[str, str]:
    from tests.support import free_port

    env = {
        **os.environ, "STACK_DIR": str(work / "stack"), "AIRFLOW_PORT": str(free_port()),
        "MLFLOW_PORT": str(free_port()), "RETRAIN_SPECS_DIR": str(specs),
        "RETRAIN_ARTIFACTS_ROOT": str(work / "artifacts"),
        # The specs name their data by absolute path: the deployment allows that folder (README "Environment").
        "RETRAIN_ALLOWED_DATA_URIS": str(work / "data"),
    }  # fmt: skip
    for inherited in ("AIRFLOW_HOME", "MLFLOW_TRACKING_URI", "AIRFLOW__CORE__PARALLELISM"):
        env.pop(inherited, None)
    if parallelism != "default":
        env["AIRFLOW__CORE__PARALLELISM"] = parallelism
    return env


def scheduler_parallelism(stack_dir: Path) -> int:
    """The parallelism the running scheduler was started with (stack.sh computes the default)."""
    pid = (stack_dir / "pids" / "scheduler.pid").read_text().split()[0]
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    value = next(v for v in environ if v.startswith(b"AIRFLOW__CORE__PARALLELISM="))
    return int(value.split(b"=", 1)[1])


def drive_night(api: Api, names: list[str], tag: str, night: dt.date) -> tuple[dt.datetime, list[dict], list[dict]]:
    """Waits for the DAGs to be parsed with this night as their next run, unpauses them all in one request,
    waits for every run to end; returns the unpause time, the runs and their task instances."""
    dag_ids = [f"retrain_{name}" for name in names]
    midnight = dt.datetime.combine(night, dt.time(), tzinfo=dt.UTC)
    deadline = time.monotonic() + 600
    while True:
        dags = {d["dag_id"]: d for d in api.call("GET", f"/api/v2/dags?tags={tag}&limit=1000")["dags"]}
        ready = [i for i in dag_ids if i in dags and parse_time(dags[i]["next_dagrun_logical_date"]) == midnight]
        if len(ready) == len(dag_ids):
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(ready)} of {len(dag_ids)} DAGs parsed with {midnight} due: {sorted(dags)}")
        time.sleep(2)
    unpaused_at = dt.datetime.now(dt.UTC)
    patched = api.call("PATCH", f"/api/v2/dags?dag_id_pattern=~&tags={tag}&update_mask=is_paused&limit=1000",
                       {"is_paused": False})["dags"]  # fmt: skip
    assert sorted(d["dag_id"] for d in patched) == sorted(dag_ids), patched
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while True:
        runs = api.call("POST", "/api/v2/dags/~/dagRuns/list", {"dag_ids": dag_ids, "page_limit": 1000})["dag_runs"]
        done = [r for r in runs if r["state"] in ("success", "failed")]
        if len(done) == len(dag_ids):
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(done)} of {len(dag_ids)} runs ended after {RUN_TIMEOUT_S}s")
        time.sleep(5)
    tis = api.call("POST", "/api/v2/dags/~/dagRuns/~/taskInstances/list", {"dag_ids": dag_ids, "page_limit": 10_000})
    return unpaused_at, runs, tis["task_instances"]


def check_night(api: Api, runs: list[dict], tis: list[dict], night: dt.date) -> None:
    """Every run is this night's scheduled run and succeeded, every model was trained, and the window the
    features were built on ends at the night (so the data written for it is what the tasks read)."""
    failed = {(t["dag_id"], t["task_id"]): t["state"] for t in tis if t["state"] not in ("success", "skipped")}
    assert not failed, f"tasks not successful: {failed}"
    for run in runs:
        assert run["state"] == "success" and run["run_type"] == "scheduled", run
        assert parse_time(run["logical_date"]) == dt.datetime.combine(night, dt.time(), tzinfo=dt.UTC), run
    trained = {t["dag_id"] for t in tis if t["task_id"] == "train" and t["state"] == "success"}
    assert trained == {r["dag_id"] for r in runs}, f"not trained: {({r['dag_id'] for r in runs}) - trained}"
    run = runs[0]
    xcom = api.call("GET", f"/api/v2/dags/{run['dag_id']}/dagRuns/{run['dag_run_id']}/taskInstances/build_features"
                           "/xcomEntries/return_value?deserialize=true")["value"]  # fmt: skip
    value = xcom if isinstance(xcom, dict) else json.loads(xcom)
    assert value["window"]["end"].startswith(night.isoformat()), value["window"]


def check_against_database(stack_dir: Path, tis: list[dict]) -> None:
    """The REST API's times are the metadata database's: read task_instance directly and compare."""
    import psycopg

    postgres = stack_dir / "postgres"
    port = (postgres / "data" / "postmaster.pid").read_text().splitlines()[3]
    query = "SELECT dag_id, task_id, queued_dttm, start_date, end_date FROM task_instance WHERE dag_id = ANY(%s)"
    with psycopg.connect(host="127.0.0.1", port=port, user="retrain", dbname="airflow",
                         passfile=str(postgres / "pgpass")) as connection:  # fmt: skip
        rows = connection.execute(query, (sorted({t["dag_id"] for t in tis}),)).fetchall()
    in_database = {(dag, task): times for dag, task, *times in rows}
    assert len(in_database) == len(tis), (len(in_database), len(tis))
    for t in tis:
        rest = [parse_time(t[field]) for field in ("queued_when", "start_date", "end_date")]
        assert rest == in_database[(t["dag_id"], t["task_id"])], (t, in_database[(t["dag_id"], t["task_id"])])


def parse_time(value: str | None) -> dt.datetime | None:
    return None if value is None else dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def p95(values: Iterable[float]) -> float:
    """The 95th percentile, nearest rank: the smallest value at or above 95% of them."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def figures(tis: list[dict], runs: list[dict], unpaused_at: dt.datetime, order: list[str]) -> dict:
    """The night's figures from its task instances: wall time, scheduling latency, hand-offs, slot use."""
    by_key = {(t["dag_id"], t["task_id"]): t for t in tis}
    ran = [t for t in tis if t["start_date"] and t["end_date"]]
    queued = [parse_time(t["queued_when"]) for t in ran]
    start = {id(t): parse_time(t["start_date"]) for t in ran}
    end = {id(t): parse_time(t["end_date"]) for t in ran}
    first_queued, last_done = min(queued), max(end.values())
    wall = (last_done - first_queued).total_seconds()
    latency = [(start[id(t)] - parse_time(t["queued_when"])).total_seconds() for t in ran]
    # Hand-off: an upstream task done -> this task queued (the scheduler noticing, and waiting for a slot).
    handoff = []
    for t in ran:
        position = order.index(t["task_id"])
        upstream = by_key.get((t["dag_id"], order[position - 1])) if position else None
        if upstream and upstream["end_date"]:
            handoff.append((parse_time(t["queued_when"]) - parse_time(upstream["end_date"])).total_seconds())
    running = sum((end[id(t)] - start[id(t)]).total_seconds() for t in ran)
    held = sum((end[id(t)] - parse_time(t["queued_when"])).total_seconds() for t in ran)
    per_step = {
        task_id: round(sum((end[id(t)] - start[id(t)]).total_seconds() for t in ran if t["task_id"] == task_id), 1)
        for task_id in order
    }
    created = [parse_time(r["queued_at"]) for r in runs]
    timeline = [
        [t["dag_id"].removeprefix("retrain_"), t["task_id"],
         *(round((moment - first_queued).total_seconds(), 1) for moment in (parse_time(t["queued_when"]), start[id(t)], end[id(t)]))]
        for t in sorted(ran, key=lambda t: t["queued_when"])
    ]  # fmt: skip
    return {
        "wall_s": round(wall, 1),
        "latency_median_s": round(statistics.median(latency), 2),
        "latency_p95_s": round(p95(latency), 2),
        "latency_max_s": round(max(latency), 2),
        "handoff_median_s": round(statistics.median(handoff), 2),
        "handoff_p95_s": round(p95(handoff), 2),
        "task_seconds": round(running, 1),
        "mean_tasks_running": round(running / wall, 2),
        "mean_slots_held": round(held / wall, 2),
        "unpause_to_first_queued_s": round((first_queued - unpaused_at).total_seconds(), 1),
        "runs_created_within_s": round((max(created) - min(created)).total_seconds(), 1),
        "task_seconds_per_step": per_step,
        "tasks": len(ran),
        "timeline": timeline,  # model, task, queued, running, done: seconds after the first task was queued
    }


@contextlib.contextmanager
def profiled(stack_dir: Path, folder: str | None, prefix: str):
    """With FLEET_PROFILE=<folder>: py-spy samples the scheduler and every process it starts (executor
    workers, task supervisors, task processes, training jobs) for the night, idle time included, as
    collapsed stacks <folder>/<prefix>.txt (one line per stack: "process ...;frame;frame count")."""
    if not folder:
        yield
        return
    pid = (stack_dir / "pids" / "scheduler.pid").read_text().split()[0]
    out = Path(folder) / f"{prefix}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    # 20 samples a second: on 2 busy cores py-spy falls behind at 50 across a dozen processes.
    command = [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", pid, "--subprocesses", "--idle",
               "--nonblocking", "--rate", "20", "--format", "raw", "--output", str(out)]  # fmt: skip
    with open(out.with_suffix(".log"), "w") as log:
        spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
        try:
            yield
        finally:
            spy.send_signal(signal.SIGINT)  # py-spy writes its output when interrupted
            spy.wait(timeout=120)
    print(f"profile of the night: {out}", flush=True)


def run_case(work: Path, data: list[Path], night: dt.date, cron: str, parallelism: str) -> dict:
    """One night of the fleet on a freshly started stack with this executor parallelism."""
    from retrain.pipeline import task_ids

    prefix = f"fleet_p{parallelism[0] if parallelism == 'default' else parallelism}"
    names = write_specs(work / "specs" / prefix, prefix, data, night, cron)
    env = stack_env(work, work / "specs" / prefix, parallelism)
    stack_sh = ["bash", str(REPO / "scripts" / "stack.sh")]
    started = subprocess.run([*stack_sh, "start"], env=env, capture_output=True, text=True, timeout=900)
    try:
        if started.returncode != 0:
            raise RuntimeError(f"stack.sh start failed:\n{started.stdout}\n{started.stderr}")
        slots = scheduler_parallelism(work / "stack")
        api = Api(f"http://127.0.0.1:{env['AIRFLOW_PORT']}", work / "stack" / "airflow")
        with profiled(work / "stack", os.environ.get("FLEET_PROFILE"), prefix):
            unpaused_at, runs, tis = drive_night(api, names, prefix, night)
        check_night(api, runs, tis, night)
        check_against_database(work / "stack", tis)
        # A task supervisor's call to the execution API that timed out or failed is retried after a random
        # back-off; tenacity logs each retry, and the LocalExecutor's supervisors log to the scheduler's log.
        retries = (work / "stack" / "logs" / "scheduler.log").read_text(errors="replace").count("time calling it")
        (work / f"{prefix}-task-instances.json").write_text(json.dumps({"runs": runs, "task_instances": tis}))
    finally:
        stopped = subprocess.run([*stack_sh, "stop"], env=env, capture_output=True, text=True, timeout=300)
        if stopped.returncode != 0:
            print(f"stack.sh stop failed:\n{stopped.stdout}\n{stopped.stderr}", file=sys.stderr)
    return {"parallelism": slots, **figures(tis, runs, unpaused_at, task_ids()), "execution_api_retries": retries}


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    work.chmod(0o711)  # the PostgreSQL server runs as `postgres` and must pass through to its cluster
    night, cron = night_of(dt.datetime.now(dt.UTC))
    print(f"fleet: {MODELS} models x {ROWS} rows, night {night} (cron {cron!r}), work in {work}", flush=True)
    try:
        data = write_data(work / "data", night)
        bare = run_bare_jobs(work, data, night)
        bare_sum = sum(bare)
        rows: list[dict] = [{"case": "bare scripts, one after another", "models": MODELS, "rows": ROWS,
                             "wall_s": round(bare_sum, 1), "samples": [round(s, 1) for s in bare]}]  # fmt: skip
        print(f"bare jobs: sum {bare_sum:.1f}s", flush=True)
        for parallelism in PARALLELISMS:
            started = time.perf_counter()
            found = run_case(work, data, night, cron, parallelism)
            steps = found.pop("task_seconds_per_step")
            row = {"case": f"fleet, parallelism {parallelism}", "models": MODELS, "rows": ROWS, **found,
                   "ratio": round(found["wall_s"] / (bare_sum / CORES), 3), "target": 1.3, "latency_target_s": 5,
                   "task_seconds_per_step": steps}  # fmt: skip
            rows.append(row)
            print(json.dumps(row), f"(case took {time.perf_counter() - started:.0f}s)", flush=True)
        name = "fleet" if FULL_SCALE else f"fleet_{MODELS}x{ROWS}"
        notes = (
            f"one night of {MODELS} models x {ROWS} rows on the PostgreSQL stack (LocalExecutor, training pool 2);"
            f" ratio = wall / (sum of bare jobs / {CORES}); latency = queued -> running, p95 nearest rank"
        )
        print("wrote", save(name, rows, notes=notes))
    except BaseException:
        print(f"fleet: failed; its data, specs, stack logs and task instances are kept in {work}", file=sys.stderr)
        raise
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    os.chdir(REPO)
    main()
