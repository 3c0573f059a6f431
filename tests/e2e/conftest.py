"""The real local stack for end-to-end tests: `scripts/stack.sh` starts PostgreSQL (Airflow's metadata
database and MLflow's backend store), the Airflow API server, scheduler (LocalExecutor), DAG
processor, triggerer and an MLflow server on free loopback ports; always stopped."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from tests.support import REPO, free_port, write_spec

E2E_MODEL = "e2e_churn"
BROKEN_MODEL = "e2e_broken"
BACKFILL_MODEL = "e2e_backfill"
POOL_MODELS = ("e2e_pool_a", "e2e_pool_b")
NIGHTS_MODEL = "e2e_nights"
INVALID_SPEC = "e2e_invalid_spec"  # a spec that does not parse: the fleet page shows it as a row with its error
# Users besides the admin, for the fleet page's access checks: a viewer (reads every DAG, triggers none)
# and a user with no role, whom the simple auth manager lets sign in and allows nothing.
EXTRA_USERS = {"viewer": "viewer", "outsider": ""}
LOOP_MODEL = "e2e_loop"  # retrain, score and monitor on asset events
DATA_MODEL = "e2e_data"  # retrains on data events: REST, and an AssetWatcher's ready file
# Governance (tests/e2e/test_approvals.py): a person approves every promotion (one model answered through
# the REST API, one in the browser, side by side); a short approval timeout; an approver the auth manager does
# not know. The description is hostile Markdown: it must show as text.
GOV_MODEL = "e2e_gov"
GOV_BROWSER_MODEL = "e2e_gov_browser"
GOV_TIMEOUT_MODEL = "e2e_gov_timeout"
GOV_UNKNOWN_APPROVER_MODEL = "e2e_gov_unknown_approver"
GOV_DESCRIPTION = "Churn [click](https://evil.example) <img src=x onerror=alert(1)> **bold** | https://evil.example"
ARTIFACTS = REPO / "test-artifacts" / "e2e"
TERMINAL = {"success", "failed"}
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


@contextmanager
def signed_in_page(
    stack: Stack,
    path: str,
    *,
    then: str,
    viewport: tuple[int, int] = (1400, 1000),
    user: str | None = None,
    password: str | None = None,
    on_login_page: Callable | None = None,
) -> Iterator:
    """A Chromium page (Debian's) that opened `path` on the stack's API server, met Airflow's login there,
    signed in (as the stack's admin unless `user` is given) and came back to a URL matching `then`.
    `on_login_page(page)` runs while the login form shows. The browser closes on the way out."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=shutil.which("chromium") or "/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
            page.goto(f"{stack.api}{path}")
            if on_login_page is not None:
                on_login_page(page)
            page.get_by_label("Username").fill(user or stack.user)
            page.get_by_label("Password").fill(stack.password if password is None else password)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(then, timeout=60_000)
            yield page
        finally:
            browser.close()


@dataclass
class Stack:
    api: str
    mlflow: str
    user: str
    password: str
    token: str
    home: Path
    root: Path  # STACK_DIR
    env: dict[str, str]  # what stack.sh was started with

    def request(self, method: str, path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.api}{path}",
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self.token}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            raise AssertionError(f"{method} {path}: HTTP {error.code}: {error.read()[:500]!r}") from None

    def wait_for_dags(self, *dag_ids: str, timeout: float = 180) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            dags = {d["dag_id"]: d for d in self.request("GET", "/api/v2/dags?limit=100")["dags"]}
            if set(dag_ids) <= set(dags):
                return dags
            if time.monotonic() > deadline:
                raise AssertionError(f"DAGs {dag_ids} not parsed after {timeout}s; have {sorted(dags)}")
            time.sleep(2)

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 600) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            run = self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
            if run["state"] in TERMINAL:
                return run
            if time.monotonic() > deadline:
                raise AssertionError(f"{dag_id}/{run_id} still {run['state']} after {timeout}s")
            time.sleep(3)

    def sql(self, database: str, query: str, *args) -> list[tuple]:
        """Rows of a query on the stack's PostgreSQL, as the stack's role, with the stack's password file."""
        import psycopg

        postgres = self.root / "postgres"
        port = (postgres / "data" / "postmaster.pid").read_text().splitlines()[3]
        conninfo = {"host": "127.0.0.1", "port": port, "user": "retrain", "dbname": database}
        with psycopg.connect(**conninfo, passfile=str(postgres / "pgpass")) as connection:
            return connection.execute(query, args).fetchall()

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        items = self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
        return {ti["task_id"]: ti["state"] for ti in items}


def token_for(api: str, user: str, password: str) -> str:
    request = urllib.request.Request(
        f"{api}/auth/token",
        data=json.dumps({"username": user, "password": password}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["access_token"]


def broken_data(folder: Path) -> Path:
    """One month of the demo data with labels missing and an unknown region: validation must fail."""
    folder.mkdir(parents=True)
    rows = pd.read_parquet(REPO / "include" / "data" / "demo" / "events_2025-04.parquet")
    rows.loc[rows.index[-500:], "churned"] = None
    rows.loc[rows.index[-50:], "region"] = "n0rth"
    rows.to_parquet(folder / "events_2025-04.parquet", index=False)
    return folder


def postgres_processes(data_dir: Path) -> list[int]:
    """Pids of the server processes of the cluster in data_dir (the postmaster names it with -D)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if proc.name.isdigit() and b"-D" in args and str(data_dir).encode() in args:
            found.append(int(proc.name))
    return found


@pytest.fixture(scope="session")
def stack():
    # Not under pytest's basetemp: that is 0700, and the PostgreSQL server runs as the postgres user,
    # which must pass through every folder above its cluster. stack.sh opens STACK_DIR to it (0711).
    root = Path(tempfile.mkdtemp(prefix="retrain-e2e-"))
    specs = root / "specs"
    specs.mkdir()
    # Manual-only DAGs (no cron): unpausing them must not start a scheduled run for today.
    write_spec(specs, E2E_MODEL, **{"schedule.cron": None})
    write_spec(
        specs,
        BROKEN_MODEL,
        **{"schedule.cron": None, "data.uri": str(broken_data(root / "broken")), "data.lookback_days": 28},
    )
    for name in POOL_MODELS:  # two models trained at the same time, for the pool test
        write_spec(specs, name, **{"schedule.cron": None})
    write_spec(specs, NIGHTS_MODEL, **{"schedule.cron": None})  # two nights of one model triggered together
    invalid = write_spec(specs, INVALID_SPEC, **{"schedule.cron": None})
    invalid.write_text(invalid.read_text() + "colour: red\n")
    small = {  # three weeks of data, a small model, few resamples: the approvals are what these runs are for
        "schedule.cron": None, "data.lookback_days": 21, "model.params": {"max_iter": 30, "max_leaf_nodes": 15},
        "evaluation.bootstrap.resamples": 20, "intended_use": "Retention campaign only.",
    }
    for name in (GOV_MODEL, GOV_BROWSER_MODEL):
        write_spec(specs, name, **small, **{
            "promotion.approval": "always", "promotion.approvers": ["admin"], "description": GOV_DESCRIPTION,
        })  # fmt: skip
    write_spec(specs, GOV_TIMEOUT_MODEL, **small, **{
        "promotion.approval": "first_version", "promotion.approval_timeout_minutes": 0.2,
    })  # fmt: skip
    write_spec(specs, GOV_UNKNOWN_APPROVER_MODEL, **{
        "schedule.cron": None, "promotion.approval": "always", "promotion.approvers": ["admin", "mallory"],
    })  # fmt: skip
    # Nightly, for the backfill test; stays paused until that test unpauses it.
    write_spec(specs, BACKFILL_MODEL, **{"schedule.cron": "0 2 * * *", "schedule.start_date": "2025-04-01"})
    # The loop (tests/e2e/test_loop_stack.py): no cron anywhere, so every run comes from an asset event or a test. Small
    # and quick: two weeks of data, no bootstrap; only the first model is promoted (later ones show "did not help");
    # labels are judged the day they land, one day at a time.
    write_spec(specs, LOOP_MODEL, loop=True, **{
        "schedule.cron": None, "scoring.cron": None, "monitoring.cron": None,
        "data.lookback_days": 14, "data.holdout_days": 3, "validation.min_rows": 100,
        "evaluation.bootstrap.resamples": 0, "promotion.min_improvement": 1.0,
        "monitoring.labels.delay_days": 0, "monitoring.lookback_days": 5,
        "monitoring.policy": {"max_drop": 0.3, "breaches": 1, "days": 1, "min_labels": 50},
    })  # fmt: skip
    # Retrains on data events (REST, or a ready file's AssetWatcher); its data fail validation at once: that each
    # event starts exactly one retraining run is what is tested, cheaply (the loop's model retrains in full).
    write_spec(specs, DATA_MODEL, **{
        "schedule.cron": None, "schedule.events": ["data"], "schedule.ready_file": str(root / "watch" / "_READY"),
        "data.uri": str(root / "broken"), "data.lookback_days": 28,
    })  # fmt: skip
    env = {
        **os.environ,
        "STACK_DIR": str(root),
        "AIRFLOW_PORT": str(free_port()),
        "MLFLOW_PORT": str(free_port()),
        "RETRAIN_SPECS_DIR": str(specs),
        "RETRAIN_ARTIFACTS_ROOT": str(root / "artifacts"),
        "STACK_EXTRA_USERS": ",".join(f"{user}:{role}" for user, role in EXTRA_USERS.items()),
    }
    env.pop("AIRFLOW_HOME", None)
    env.pop("MLFLOW_TRACKING_URI", None)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    stack_sh = ["bash", str(REPO / "scripts" / "stack.sh")]
    started = subprocess.run([*stack_sh, "start"], env=env, capture_output=True, text=True, timeout=400)
    try:
        assert started.returncode == 0, f"stack.sh start failed:\n{started.stdout}\n{started.stderr}"
        api = f"http://127.0.0.1:{env['AIRFLOW_PORT']}"
        home = root / "airflow"
        pg_port = (root / "postgres" / "data" / "postmaster.pid").read_text().splitlines()[3]
        password = json.loads((home / "simple_auth_manager_passwords.json.generated").read_text())["admin"]
        yield Stack(
            api,
            f"http://127.0.0.1:{env['MLFLOW_PORT']}",
            "admin",
            password,
            token_for(api, "admin", password),
            home,
            root,
            env,
        )
    finally:
        stopped = subprocess.run([*stack_sh, "stop"], env=env, capture_output=True, text=True, timeout=180)
        for log in (root / "logs").glob("*.log"):
            if log.exists():  # postgres.log links to the cluster's server log
                (ARTIFACTS / log.name).write_bytes(log.read_bytes()[-200_000:])
    assert stopped.returncode == 0, f"stack.sh stop failed:\n{stopped.stdout}\n{stopped.stderr}"
    # `stop` must leave nothing behind (the API server renames its own process, an easy one to lose;
    # PostgreSQL leaves postmaster.pid and a socket lock file when it is killed instead of stopped).
    for port in (env["AIRFLOW_PORT"], env["MLFLOW_PORT"], pg_port):
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", int(port)), timeout=3).close()
    data = root / "postgres" / "data"
    assert not postgres_processes(data), f"PostgreSQL processes left on {data}"
    assert not (data / "postmaster.pid").exists(), "postmaster.pid left behind"
    assert not list((root / "postgres" / "socket").iterdir()), "socket or socket lock left behind"
    assert not list((root / "pids").iterdir()), "pid files left behind"
    # The database password lives in the 0600 password file and nowhere else the stack wrote: not in a
    # log, a config file, the MLflow or Airflow databases, nor the cluster's files (it keeps a SCRAM hash).
    pgpass = root / "postgres" / "pgpass"
    assert pgpass.stat().st_mode & 0o777 == 0o600
    secret = pgpass.read_text().strip().rsplit(":", 1)[1].encode()
    written = [p for p in root.rglob("*") if p.is_file() and not p.is_symlink() and p != pgpass]
    leaks = [str(p) for p in written if secret in p.read_bytes()]
    assert not leaks, f"the PostgreSQL password is in {leaks}"
    assert secret not in stopped.stdout.encode() + stopped.stderr.encode() + started.stdout.encode()
    shutil.rmtree(root, ignore_errors=True)
