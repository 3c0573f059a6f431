"""Shared helpers for the benchmark scripts: repetitions, medians, a results table."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"


def median_of(fn, repeat: int = 3) -> tuple[float, list[float]]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples), samples


def python_env(**extra: str) -> dict[str, str]:
    paths = [str(REPO / "include"), str(REPO / "plugins")]
    # The benchmarks' specs name their data by absolute path in a temporary folder: allow it (README "Environment").
    allowed = {"RETRAIN_ALLOWED_DATA_URIS": tempfile.gettempdir()}
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "AIRFLOW__CORE__LOAD_EXAMPLES": "False", **allowed, **extra}


def run_python(code: str, *args: str, env: dict | None = None) -> str:
    out = subprocess.run([sys.executable, "-c", code, *args], env=env or python_env(), capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return out.stdout


def machine() -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def save(name: str, rows: list[dict], notes: str = "") -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {"benchmark": name, "machine": machine(), "date": time.strftime("%Y-%m-%d"), "rows": rows, "notes": notes}
    path.write_text(json.dumps(payload, indent=2))
    return path
