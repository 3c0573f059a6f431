"""Where things live, from the environment, read when asked (never at import)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from retrain.window import Window

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def data_root() -> Path:
    """Relative data URIs in specs resolve against this folder (default: the project root)."""
    return Path(os.environ.get("RETRAIN_DATA_ROOT") or PROJECT_ROOT)


def artifacts_root() -> Path:
    """Feature partitions and reports. In a cluster: a volume shared by workers and training pods."""
    return Path(os.environ.get("RETRAIN_ARTIFACTS_ROOT") or PROJECT_ROOT / ".retrain" / "artifacts")


def expectations_dir() -> Path:
    return Path(os.environ.get("RETRAIN_EXPECTATIONS_DIR") or PROJECT_ROOT / "include" / "expectations")


def training_backend() -> str:
    backend = os.environ.get("RETRAIN_TRAINING_BACKEND", "local").strip().lower()
    if backend not in {"local", "kubernetes"}:
        raise ValueError(f"RETRAIN_TRAINING_BACKEND must be 'local' or 'kubernetes', got {backend!r}")
    return backend


def resolve_data_uri(uri: str) -> str:
    """A URI with a scheme or an absolute path stays as it is; a relative path joins data_root()."""
    if "://" in uri or os.path.isabs(uri):
        return uri
    return str(data_root() / uri)


def model_artifacts_dir(model_name: str) -> Path:
    return artifacts_root() / model_name


def features_dir(model_name: str, window: Window) -> Path:
    """A window's feature partition: <artifacts>/<model>/features/end_date=<end>/."""
    return model_artifacts_dir(model_name) / "features" / window.partition


def report_dir(model_name: str, window: Window, run_id: str) -> Path:
    """One run's reports: <artifacts>/<model>/reports/end_date=<end>/<run id, as a safe folder name>/."""
    return model_artifacts_dir(model_name) / "reports" / window.partition / run_slug(run_id)


def run_slug(run_id: str) -> str:
    """A run id as one folder name: only [A-Za-z0-9_.-], no leading dot (so never `..`), at most 200 characters."""
    return re.sub(r"^\.|[^A-Za-z0-9_.-]+", "_", run_id)[:200] or "_"


def redact_uri(uri: str) -> str:
    """A URI as it may be shown or recorded: without credentials (user:password@), query or fragment (which
    can carry tokens)."""
    parts = urlsplit(uri)
    if not parts.scheme or not parts.netloc:
        return uri.split("?", 1)[0].split("#", 1)[0]
    host = parts.netloc.rpartition("@")[2]  # host[:port] as written, credentials dropped
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def mlflow_ui_url(tracking_uri: str | None = None) -> str | None:
    """Where a person opens MLflow: RETRAIN_MLFLOW_UI_URL, else the tracking URI when it is a web address
    (workers and browsers may see MLflow at different addresses); None when there is no such address."""
    uri = os.environ.get("RETRAIN_MLFLOW_UI_URL") or tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or ""
    if urlsplit(uri).scheme not in ("http", "https"):
        return None
    return redact_uri(uri).rstrip("/")
