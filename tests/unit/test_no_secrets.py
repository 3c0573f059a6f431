"""No credential in the repository: specs, settings, manifests, images and code carry none."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from tests.support import REPO

PATTERNS = {
    "AWS access key": re.compile(r"AKIA[0-9A-Z]{16}"),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "GitHub token": re.compile(r"gh[pousr]_[A-Za-z0-9]{36}"),
    "Slack token": re.compile(r"xox[baprs]-[A-Za-z0-9-]{10,}"),
    # A variable reference ($VAR, ${VAR}, <placeholder>) or a mask (***) in place of the password is not a credential.
    "credential in URL": re.compile(r"[a-z]+://[^/\s:@'\"$]+:[^/\s:@'\"${}<>*]{3,}@"),
    "assigned secret": re.compile(
        r"(?i)\b(password|passwd|secret|api_key|token)\b\s*[:=]\s*['\"][^'\"\s{}$<>]{6,}['\"]"
    ),
}
# Test files contain the patterns on purpose (this one) or throwaway local values.
SKIP = {"tests/unit/test_no_secrets.py"}


def tracked_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                         capture_output=True, text=True, check=True)  # fmt: skip
    return [REPO / line for line in out.stdout.splitlines() if line and line not in SKIP]


def test_patterns_catch_what_they_should():
    assert PATTERNS["AWS access key"].search("key = AKIAABCDEFGHIJKLMNOP")
    assert PATTERNS["credential in URL"].search("postgresql://airflow:hunter22@db/airflow")
    assert not PATTERNS["credential in URL"].search("http://$MLFLOW_USER:$MLFLOW_PASSWORD@mlflow:5000")
    assert not PATTERNS["credential in URL"].search("https://bob:***@mlflow:5000")  # masked
    assert PATTERNS["assigned secret"].search('password = "correct-horse"')
    assert not PATTERNS["assigned secret"].search("password: {{ .Values.password }}")


def test_repository_has_no_credentials():
    found = []
    for path in tracked_files():
        if not path.is_file() or path.suffix in {".parquet", ".png", ".whl"}:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for name, pattern in PATTERNS.items():
            for match in pattern.finditer(text):
                found.append(f"{path.relative_to(REPO)}: {name}: {match.group(0)[:40]}")
    assert found == []


def test_airflow_settings_carry_no_passwords():
    settings = yaml.safe_load((REPO / "airflow_settings.yaml").read_text())["airflow"]
    for conn in settings["connections"]:
        assert not conn.get("conn_password"), conn["conn_id"]
        assert not conn.get("conn_login"), conn["conn_id"]
