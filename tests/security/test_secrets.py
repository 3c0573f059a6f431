"""A password inside the tracking URI (the connection's host or MLFLOW_TRACKING_URI) or in the connection
never reaches a log: the hook registers every credential with Airflow's secrets masker (which masks the
task log in the supervisor), the local backend redacts what it relays, and the training job redacts its
own output (a pod has no Airflow masker)."""

from __future__ import annotations

import datetime as dt
import json
import secrets as token_source
from types import SimpleNamespace

import pandas as pd
import pytest

from retrain.credentials import environment_secrets, load_secret_files, redact, redact_uri, uri_secrets
from retrain.errors import TrainingError
from retrain.features import build_partition
from retrain.settings import features_dir
from retrain.spec import load_spec
from retrain.window import Window
from tests.support import DEMO_DATA, DEMO_SPEC, free_port

pytestmark = pytest.mark.security

SPEC = load_spec(DEMO_SPEC)
END = dt.date(2025, 5, 1)


@pytest.fixture
def password() -> str:
    return "pw-" + token_source.token_hex(8)


def with_credentials(uri: str, user: str, password: str) -> str:
    scheme, rest = uri.split("://", 1)
    return f"{scheme}://{user}:{password}@{rest}"


def test_credentials_are_found_in_uris_and_the_environment_and_redacted(password):
    uri = with_credentials("https://mlflow.internal:5000/path", "bob", password)
    assert password in uri_secrets(uri)
    assert redact_uri(uri) == "https://bob:***@mlflow.internal:5000/path"
    assert redact_uri(f"s3://b/k?X-Amz-Signature={password}&x=1") == "s3://b/k?X-Amz-Signature=***&x=1"
    env = {"MLFLOW_TRACKING_URI": uri, "MLFLOW_TRACKING_TOKEN": password[::-1], "HOME": "/home/x"}
    assert set(environment_secrets(env)) >= {password, password[::-1]}
    # A URI password nobody told us about is still redacted by its shape.
    assert redact(f"failed: {with_credentials('http://h:1/a', 'u', 'unknown-pass')}") == "failed: http://u:***@h:1/a"


@pytest.mark.parametrize("where", ["environment", "connection host", "connection password"])
def test_the_hook_registers_every_credential_with_airflows_masker(password, monkeypatch, where):
    from airflow.sdk.execution_time import task_runner
    from airflow.sdk.log import redact as airflow_redact

    from retrain_operators.hooks import MlflowHook

    sent = []  # what the task process tells its supervisor (which masks the task log)
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", SimpleNamespace(send=sent.append), raising=False)
    uri = with_credentials("https://mlflow.internal", "bob", password)
    if where == "environment":
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        conn_id = "mlflow_default"
    else:
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
        conn_id = f"mlflow_{where.split()[1]}_{token_source.token_hex(3)}"
        host, secret = (uri, None) if where == "connection host" else ("https://mlflow.internal", password)
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(
            {"conn_type": "http", "host": host, "login": "bob", "password": secret}))  # fmt: skip
    MlflowHook(conn_id).environment()
    assert password not in airflow_redact(f"GET {uri} failed; password {password}")
    assert password in {getattr(message, "value", None) for message in sent}


def partition(tmp_path, monkeypatch) -> Window:
    monkeypatch.setenv("RETRAIN_ARTIFACTS_ROOT", str(tmp_path / "artifacts"))
    window = Window.ending(END, SPEC.data)
    frame = pd.concat([pd.read_parquet(p) for p in sorted(DEMO_DATA.glob("*.parquet"))], ignore_index=True)
    frame["event_time"] = pd.to_datetime(frame["event_time"], utc=True)
    build_partition(frame, SPEC, window, features_dir(SPEC.name, window))
    return window


def test_the_local_backend_never_relays_the_password_the_training_job_met(password, tmp_path, monkeypatch):
    """The real job as a child process against an MLflow URI with credentials that answers nothing: MLflow's
    error quotes the URI; neither the relayed log nor the task's error carries the password."""
    from retrain.contracts import TrainingResult
    from retrain.pipeline import producer
    from retrain_operators.local_train import LocalTrainOperator

    partition(tmp_path, monkeypatch)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", with_credentials(f"http://127.0.0.1:{free_port()}", "bob", password))
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    relayed = []
    operator = LocalTrainOperator(spec=SPEC, step=producer(TrainingResult))
    monkeypatch.setattr(operator.log, "info", lambda message, *args: relayed.append(message % args))
    context = {"params": {"end_date": END.isoformat()}, "run_id": "manual__secrets",
               "dag_run": SimpleNamespace(conf={}, run_after=dt.datetime(2025, 5, 1, tzinfo=dt.UTC))}  # fmt: skip
    with pytest.raises(TrainingError) as failed:
        operator.execute(context)
    text = "\n".join([*relayed, str(failed.value)])
    assert "training failed" in text and "127.0.0.1" in text, "the job did reach MLflow and say so"
    assert "bob:***@127.0.0.1" in text
    assert password not in text


def test_the_training_job_reads_mounted_secret_files_and_nothing_else(password, tmp_path):
    folder = tmp_path / "secret"
    (folder / "..data").mkdir(parents=True)
    (folder / "..data" / "MLFLOW_TRACKING_PASSWORD").write_text(password + "\n")
    (folder / "MLFLOW_TRACKING_PASSWORD").symlink_to("..data/MLFLOW_TRACKING_PASSWORD")
    (folder / "MLFLOW_TRACKING_USERNAME").write_text("bob")
    (folder / "LD_PRELOAD").write_text("/tmp/evil.so")
    env = {"RETRAIN_MLFLOW_SECRET_DIR": str(folder), "MLFLOW_TRACKING_USERNAME": "from-env"}
    assert load_secret_files(env) == ["MLFLOW_TRACKING_PASSWORD"]
    assert env["MLFLOW_TRACKING_PASSWORD"] == password and env["MLFLOW_TRACKING_USERNAME"] == "from-env"
    assert "LD_PRELOAD" not in env
