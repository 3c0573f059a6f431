"""Credentials never printed: found in URIs and the environment, replaced by *** in what the package logs.

The Airflow side registers the same values with Airflow's secrets masker (plugins/retrain_operators/hooks.py);
this module is the part the training job uses on its own (a pod has no Airflow masker): it redacts its
stdout, stderr and termination message, and reads MLflow credentials mounted as files from a Kubernetes
Secret volume into its environment.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

MASK = "***"
# Environment variables whose value is a credential (MLflow's own, and the usual cloud ones).
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEY|ACCESS_KEY|PRIVATE_KEY|CREDENTIAL", re.IGNORECASE)
# Query parameters of a URI that carry a credential (tokens, presigned signatures).
SECRET_QUERY = re.compile(r"password|secret|token|key|sig|signature|credential", re.IGNORECASE)
# user:password@ in any URI, whether or not the value is known.
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^/\s:@]*):(?P<password>[^/\s@]+)@")
# Shorter values are not masked (Airflow's default min_length_masked_secret): they would mask ordinary text.
MIN_SECRET_LENGTH = 5
# A Kubernetes Secret mounted as a volume: one file per key. Only MLflow's variables are read from it.
SECRET_DIR_ENV = "RETRAIN_MLFLOW_SECRET_DIR"  # noqa: S105 - the name of a variable, not a secret
SECRET_FILE_NAME = re.compile(r"MLFLOW_[A-Z0-9_]+")


def uri_secrets(uri: str) -> list[str]:
    """The credentials inside a URI: its password and the values of secret query parameters."""
    try:
        parts = urlsplit(uri)
        password = parts.password
    except ValueError:
        return []
    found = []
    if password:
        found.append(password)
    found += [value for key, value in parse_qsl(parts.query) if SECRET_QUERY.search(key)]
    return [value for value in found if len(value) >= MIN_SECRET_LENGTH]


def environment_secrets(environ: Mapping[str, str]) -> list[str]:
    """Every credential in an environment: values of secret-named variables, and those inside URI values."""
    found: list[str] = []
    for name, value in environ.items():
        if SECRET_NAME.search(name) and len(value) >= MIN_SECRET_LENGTH:
            found.append(value)
        if "://" in value:
            found += uri_secrets(value)
    return sorted(set(found), key=len, reverse=True)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with each known secret, and any password in a URI, replaced by ***."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        if len(secret) >= MIN_SECRET_LENGTH:
            text = text.replace(secret, MASK)
    return _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)


def redact_uri(uri: str) -> str:
    """A URI safe to log: its password and secret query values replaced by ***."""
    return redact(uri, uri_secrets(uri))


class RedactingStream(io.TextIOBase):
    """A text stream that writes through to another with the secrets redacted (the job's stdout/stderr:
    MLflow's client quotes its tracking URI in errors and in "View run at ..." lines)."""

    def __init__(self, stream, secrets: Iterable[str]) -> None:
        super().__init__()
        self._stream = stream
        self._secrets = list(secrets)

    def write(self, text: str) -> int:
        self._stream.write(redact(text, self._secrets))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._stream, "encoding", "utf-8")


def load_secret_files(environ: dict[str, str] | None = None) -> list[str]:
    """Reads MLflow credentials mounted as files (the folder named by RETRAIN_MLFLOW_SECRET_DIR, one file per
    key as Kubernetes mounts a Secret) into the environment; a variable already set wins. Only MLFLOW_*
    names are read (a Secret's other keys never become environment variables). Returns the names set."""
    environ = os.environ if environ is None else environ
    folder = environ.get(SECRET_DIR_ENV)
    if not folder or not Path(folder).is_dir():
        return []
    loaded = []
    for path in sorted(Path(folder).iterdir()):
        # Kubernetes keeps the real files in ..data/ and links each key to it; dot entries are its plumbing.
        if path.name.startswith(".") or not SECRET_FILE_NAME.fullmatch(path.name) or not path.is_file():
            continue
        if path.name not in environ:
            environ[path.name] = path.read_text(encoding="utf-8").strip()
            loaded.append(path.name)
    return loaded
