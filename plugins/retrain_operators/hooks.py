"""The MLflow connection: one place turns `mlflow_default` (or MLFLOW_TRACKING_URI) into a registry."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

if TYPE_CHECKING:
    from retrain.registry import Registry

MLFLOW_CONN_ID = "mlflow_default"


class MlflowHook(BaseHook):
    """MLFLOW_TRACKING_URI wins; otherwise the Airflow connection `mlflow_default` (host URL, schema, port).

    Credentials stay in the connection (login/password): they reach MLflow's client and the training
    process through MLFLOW_TRACKING_USERNAME/PASSWORD, never a spec, a tag or a log line.
    """

    conn_name_attr = "mlflow_conn_id"
    default_conn_name = MLFLOW_CONN_ID
    conn_type = "http"
    hook_name = "MLflow"

    def __init__(self, mlflow_conn_id: str = MLFLOW_CONN_ID) -> None:
        super().__init__()
        self.mlflow_conn_id = mlflow_conn_id
        self._environment: dict[str, str] | None = None

    def environment(self) -> dict[str, str]:
        """MLFLOW_TRACKING_URI and, when the connection has them, the credentials: for a child process.

        Every credential found (the connection's password, a password or token inside the URI, MLflow
        credential variables of this process) is registered with Airflow's secrets masker first, so task
        logs show *** wherever a library or the training job prints it.
        """
        if self._environment is None:
            self._environment = self._resolve()
            mask_credentials({**os.environ, **self._environment})
        return dict(self._environment)

    def _resolve(self) -> dict[str, str]:
        if os.environ.get("MLFLOW_TRACKING_URI"):
            return {"MLFLOW_TRACKING_URI": os.environ["MLFLOW_TRACKING_URI"]}
        try:
            conn = self.get_connection(self.mlflow_conn_id)
        except Exception:  # noqa: BLE001 - no connection configured: MLflow's own default applies
            return {}
        uri = conn.host or ""
        if "://" not in uri:
            uri = f"{conn.schema or 'http'}://{uri}" + (f":{conn.port}" if conn.port else "")
        env = {"MLFLOW_TRACKING_URI": uri}
        if conn.login:
            env["MLFLOW_TRACKING_USERNAME"] = conn.login
        if conn.password:
            env["MLFLOW_TRACKING_PASSWORD"] = conn.password
        return env

    def get_conn(self) -> Registry:
        """The registry behind the connection. MLflow's client reads credentials only from the environment,
        so they are set there for this process (a deployment's own values win)."""
        from retrain.registry import Registry

        env = self.environment()
        for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
            if key in env:
                os.environ.setdefault(key, env[key])
        return Registry(env.get("MLFLOW_TRACKING_URI"))


def mask_credentials(environ: dict[str, str]) -> list[str]:
    """Registers every credential of an environment (retrain.credentials.environment_secrets) with Airflow's
    secrets masker, in this process and in the task's supervisor, which masks the task log. Returns them."""
    from retrain.credentials import environment_secrets

    secrets = environment_secrets(environ)
    for secret in secrets:
        _mask(secret)
    return secrets


def sql_engine(conn_id: str) -> Any:
    """A SQLAlchemy engine for the Airflow connection `conn_id`, built by the connection type's own SQL hook
    (PostgresHook for `postgres`; any provider hook with a SQLAlchemy dialect the same way).

    The credentials stay in the connection and the engine: they reach no spec, log line, tag or report.
    An unknown id or a connection type without a SQL hook is a clear, non-retryable error naming the id (a
    spec's `data.conn_id`, `scoring.input.conn_id`, `scoring.output.conn_id` or `monitoring.labels.conn_id`).
    """
    from retrain.errors import SpecError

    try:
        connection = BaseHook.get_connection(conn_id)
    except Exception as error:  # noqa: BLE001 - the SDK raises its own "not found" types
        raise SpecError(f"conn_id {conn_id!r} in the spec: no Airflow connection {conn_id!r} ({type(error).__name__})") from None
    for secret in (connection.password, connection.extra):
        if secret:
            _mask(secret)
    hook = connection.get_hook()
    if not hasattr(hook, "get_sqlalchemy_engine"):
        raise SpecError(
            f"conn_id {conn_id!r} in the spec: connection {conn_id!r} is of type {connection.conn_type!r}, whose hook"
            f" ({type(hook).__name__}) gives no SQLAlchemy engine; use a database connection (e.g. postgres)"
        )
    return hook.get_sqlalchemy_engine()


def _mask(value: str) -> None:
    """Registers a value with Airflow's log masker (a task's log never shows it), in this process and in the
    task's supervisor. No name: a name that does not look sensitive would stop the registration."""
    from airflow.sdk.log import mask_secret

    mask_secret(value)
