"""Where things live, from the environment, read when asked (never at import)."""

from __future__ import annotations

import os
from pathlib import Path

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
