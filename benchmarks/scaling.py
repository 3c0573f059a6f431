"""Scaling of validation, drift and feature building on 100k, 1M and 5M rows x 20 columns.

Each step runs in a fresh interpreter on a Parquet file written beforehand; time is the median of
REPEAT runs, peak memory is the process's peak RSS from reading the window to the end of the step,
less its RSS after the imports, compared with the in-memory size of the window (so the window itself
counts: a ratio of 1 means the step needed nothing beyond the data). Targets: time exponent from 1M to 5M <= 1.1, peak memory < 3x window.
"""

from __future__ import annotations

import json
import math
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from common import python_env, run_python, save
from wide_data import write

SIZES = [int(s) for s in sys.argv[1].split(",")] if len(sys.argv) > 1 else [100_000, 1_000_000, 5_000_000]
REPEAT = int(sys.argv[2]) if len(sys.argv) > 2 else 3

STEP = r"""
import datetime as dt, json, resource, sys, time
import retrain  # first, as in an Airflow task: it sets Arrow's allocator option before pyarrow loads
from retrain.spec import load_spec
from retrain.window import Window
from retrain.data import read_window
step, spec_path, out_dir = sys.argv[1:4]
spec = load_spec(spec_path)
window = Window.ending(dt.date(2025, 5, 1), spec.data)
if step == "validation":
    import great_expectations  # noqa: F401 - import cost is not the step's cost
    from retrain.validation import validate_frame
elif step == "drift":
    import scipy.stats  # noqa: F401
    from retrain.drift import compute_drift
else:
    from retrain.features import build_partition
import os
rss_after_imports = int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
read_started = time.perf_counter()
frame = read_window(spec, window, untimed=step == "validation").frame  # as each step reads
read_seconds = time.perf_counter() - read_started
window_bytes = int(frame.memory_usage(deep=True).sum())
started = time.perf_counter()
if step == "validation":
    outcome = validate_frame(frame, spec, window)
    assert outcome.success, "benchmark data must validate"
elif step == "drift":
    reference = frame.sample(n=min(len(frame), spec.drift.reference_sample_rows), random_state=0)
    compute_drift(reference, frame, spec)
else:
    build_partition(frame, spec, window, __import__("pathlib").Path(out_dir) / window.partition)  # as the operator does
seconds = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": seconds, "read_seconds": read_seconds, "window_bytes": window_bytes,
                  "peak_bytes": max(0, peak - rss_after_imports)}))
"""


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-scaling-"))
    rows = []
    for size in SIZES:
        spec = write(size, work / f"n{size}", name=f"bench{size}")
        for step in ("validation", "drift", "features"):
            samples = []
            for _ in range(REPEAT):
                out = run_python(STEP, step, str(spec), str(work / "out"), env=python_env())
                samples.append(json.loads(out.strip().splitlines()[-1]))
            seconds = statistics.median(s["seconds"] for s in samples)
            window_bytes = samples[0]["window_bytes"]
            peak = statistics.median(s["peak_bytes"] for s in samples)
            read = statistics.median(s["read_seconds"] for s in samples)
            rows.append({"rows": size, "step": step, "seconds": round(seconds, 3), "window_mb": round(window_bytes / 2**20, 1),
                         "read_seconds": round(read, 3), "peak_mb": round(peak / 2**20, 1), "memory_ratio": round(peak / window_bytes, 2)})  # fmt: skip
            print(rows[-1], flush=True)
        shutil.rmtree(work / f"n{size}", ignore_errors=True)
    for step in ("validation", "drift", "features"):
        by_size = {r["rows"]: r["seconds"] for r in rows if r["step"] == step}
        if 1_000_000 in by_size and 5_000_000 in by_size:
            exponent = math.log(by_size[5_000_000] / by_size[1_000_000]) / math.log(5)
            rows.append({"step": step, "time_exponent_1M_to_5M": round(exponent, 3), "target": 1.1})
            print(rows[-1])
    shutil.rmtree(work, ignore_errors=True)
    print("wrote", save("scaling", rows, notes=f"median of {REPEAT} fresh interpreters per step"))


if __name__ == "__main__":
    main()
