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


def allowed_data_uris() -> tuple[str, ...]:
    """RETRAIN_ALLOWED_DATA_URIS: comma-separated absolute folders and URI prefixes a spec's data.uri may
    name besides RETRAIN_DATA_ROOT (e.g. `s3://bucket/events/,/mnt/shared/data`). Empty: none."""
    raw = os.environ.get("RETRAIN_ALLOWED_DATA_URIS", "")
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def resolve_data_uri(uri: str) -> str:
    """Where a spec's data.uri points, if the deployment lets specs read there; DataError otherwise.

    A relative path joins data_root() and must stay inside it (no `..`, no symlink out). An absolute path
    or a URI with a scheme (s3://, gs://, http(s)://, file://) must lie under one of allowed_data_uris().
    A spec is configuration that anyone with write access to the specs folder edits: without this, it
    could read any file the worker can, or make the worker fetch any URL (a cloud metadata endpoint).
    """
    from retrain.errors import DataError

    rule = "rule: data.uri must lie inside RETRAIN_DATA_ROOT or under a prefix of RETRAIN_ALLOWED_DATA_URIS"
    scheme, _, rest = uri.partition("://") if "://" in uri else ("", "", uri)
    if scheme.lower() == "file":
        scheme, uri = "", rest
    if not scheme and not os.path.isabs(uri):
        root = os.path.realpath(data_root())
        path = os.path.realpath(os.path.join(root, uri))
        if not _inside(path, root):
            raise DataError(f"data.uri {uri!r} resolves to {path}, outside RETRAIN_DATA_ROOT ({root}) ({rule})")
        return path
    if not scheme:
        path = os.path.realpath(uri)
        if any(_inside(path, os.path.realpath(p)) for p in allowed_data_uris() if os.path.isabs(p)):
            return path
    elif _plain_remote(uri) and any(_remote_under(uri, p) for p in allowed_data_uris() if "://" in p):
        return uri
    raise DataError(
        f"data.uri {uri!r} is not allowed: absolute paths and remote URIs must be under one of"
        f" RETRAIN_ALLOWED_DATA_URIS {list(allowed_data_uris())} ({rule})"
    )


def data_path_allowed(path: str, root_uri: str) -> bool:
    """Whether a file found under a resolved data URI is still a place that URI allows (a symlink inside a
    data folder may point anywhere)."""
    if "://" in path:
        return _remote_under(path, root_uri)
    return _inside(os.path.realpath(path), os.path.realpath(root_uri))


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _plain_remote(uri: str) -> bool:
    """No `..` segment, no credentials, query or fragment, no encoded dot or slash: nothing a server or a
    client library could normalise into another place than the prefix check saw."""
    parts = urlsplit(uri)
    return not (
        ".." in parts.path.split("/") or "@" in parts.netloc or parts.query or parts.fragment
        or "%" in uri or "\\" in uri
    )  # fmt: skip


def _remote_under(uri: str, prefix: str) -> bool:
    target, allowed = urlsplit(uri), urlsplit(prefix)
    if (target.scheme.lower(), target.netloc.lower()) != (allowed.scheme.lower(), allowed.netloc.lower()):
        return False
    base = allowed.path.rstrip("/")
    return target.path == base or target.path.startswith(base + "/")


def model_artifacts_dir(model_name: str) -> Path:
    return artifacts_root() / model_name


def features_dir(model_name: str, window: Window) -> Path:
    """A window's feature partition: <artifacts>/<model>/features/end_date=<end>/."""
    return model_artifacts_dir(model_name) / "features" / window.partition


def predictions_dir(model_name: str) -> Path:
    """Every day's predictions of a model: <artifacts>/<model>/predictions/."""
    return model_artifacts_dir(model_name) / "predictions"


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
