"""Validation and drift of a table of 1M, 5M and 10M rows x 20 columns in PostgreSQL: inside the database
(the SQL source) against the baseline of reading the window into pandas and validating and profiling there.

One PostgreSQL cluster (scripts/postgres.sh, as the tests use) holds one table that grows from 1M to 5M to
10M rows, generated server-side with generate_series; every row is in the window. Each case runs in a fresh
interpreter: time is the median of REPEAT runs; peak memory is the worker process's peak RSS (getrusage)
less its RSS after the imports. Target: the in-database worker's peak memory stays flat as the table grows.

    python sql_scaling.py [sizes, default 1000000,5000000,10000000] [repetitions, default 1]
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml
from common import REPO, python_env, run_python, save

sys.path.insert(0, str(REPO))
from tests.support.postgres import PostgresServer  # the one cluster helper, shared with the tests

SIZES = [int(s) for s in sys.argv[1].split(",")] if len(sys.argv) > 1 else [1_000_000, 5_000_000, 10_000_000]
REPEAT = int(sys.argv[2]) if len(sys.argv) > 2 else 1
NUMERIC = [f"f{i:02d}" for i in range(1, 15)]
CATEGORICAL = ["c1", "c2", "c3", "c4"]
END = "2025-05-01"

SPEC = {
    "name": "bench_sql",
    "data": {"conn_id": "bench", "table": "public.bench", "timestamp_column": "ts", "lookback_days": 56},
    "target": "label",
    "task": "classification",
    "features": {"numeric": NUMERIC, "categorical": CATEGORICAL},
    "model": {"estimator": "sklearn.linear_model.LogisticRegression"},
    "validation": {
        "min_rows": 1000,
        "expectations": [
            {
                "type": "expect_column_values_to_be_between",
                "kwargs": {"column": "f01", "min_value": 0, "max_value": 100},
            },
            {
                "type": "expect_column_values_to_be_in_set",
                "kwargs": {"column": "c1", "value_set": ["a", "b", "c", "d"]},
            },
            {"type": "expect_column_mean_to_be_between", "kwargs": {"column": "f02", "min_value": 0, "max_value": 100}},
        ],
    },
    "drift": {"reference_sample_rows": 50_000},
}

COLUMNS = (
    "ts timestamptz, "
    + ", ".join(f"{c} double precision" for c in NUMERIC)
    + ", "
    + ", ".join(f"{c} text" for c in CATEGORICAL)
    + ", label bigint"
)
# Rows numbered start..end, spread over the 56 days before END; the later half of the numeric columns shifted.
GENERATE = (
    "INSERT INTO public.bench SELECT timestamptz '2025-03-06 00:00+00' + (n % 4838400) * interval '1 second', "
    + ", ".join(f"round((random() * 100 + {i % 7})::numeric, 3)::float8" for i, _ in enumerate(NUMERIC))
    + ", "
    + ", ".join(f"(ARRAY['a','b','c','d'])[1 + (n * {i + 7} % 4)]" for i, _ in enumerate(CATEGORICAL))
    + ", (random() < 0.3)::int FROM generate_series(CAST(:start AS bigint), CAST(:end AS bigint)) AS n"
)

CASE = r"""
import json, os, resource, sys, time
import retrain  # first, as in an Airflow task
import datetime as dt
import pandas as pd
import sqlalchemy as sa
import great_expectations  # noqa: F401 - import cost is not the step's cost
import scipy.stats  # noqa: F401
from retrain.spec import load_spec
from retrain.window import Window
case, spec_path, reference_path, url = sys.argv[1:5]
spec = load_spec(spec_path)
window = Window.ending(dt.date(2025, 5, 1), spec.data)
reference = pd.read_parquet(reference_path)
engine = sa.create_engine(url)
from retrain.sources import open_source
source = open_source(spec, lambda conn_id: engine)
from retrain.validation import validate_frame
from retrain.drift import compute_drift
from retrain.features import typed_frame
rss_after_imports = int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
out = {}
if case == "database":
    started = time.perf_counter()
    outcome = source.validate(window).outcome
    out["validation_seconds"] = time.perf_counter() - started
    assert outcome.success, [r.describe() for r in outcome.failures]
    started = time.perf_counter()
    drifted = source.drift(reference, window)
    out["drift_seconds"] = time.perf_counter() - started
    out["rows"] = outcome.rows
else:  # the baseline: the window read into pandas (pandas' own chunked reader on a server-side cursor)
    started = time.perf_counter()
    with engine.connect().execution_options(stream_results=True) as connection:
        chunks = pd.read_sql(source.window_select(window), connection, chunksize=262_144)
        frame = pd.concat(chunks, ignore_index=True)
    out["read_seconds"] = time.perf_counter() - started
    out["window_bytes"] = int(frame.memory_usage(deep=True).sum())
    started = time.perf_counter()
    outcome = validate_frame(frame, spec, window)
    out["validation_seconds"] = time.perf_counter() - started
    assert outcome.success, [r.describe() for r in outcome.failures]
    started = time.perf_counter()
    compute_drift(reference, typed_frame(frame, spec), spec)
    out["drift_seconds"] = time.perf_counter() - started
    out["rows"] = len(frame)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
out["peak_bytes"] = max(0, peak - rss_after_imports)
print(json.dumps(out))
"""


def grow(server: PostgresServer, rows: int, have: int) -> float:
    """Append rows have+1..rows to the table (server-side), then VACUUM ANALYZE; returns the seconds."""
    import sqlalchemy as sa

    engine = server.engine()
    started = time.perf_counter()
    with engine.begin() as connection:
        if have == 0:
            connection.execute(sa.text("DROP TABLE IF EXISTS public.bench"))
            connection.execute(sa.text(f"CREATE TABLE public.bench ({COLUMNS})"))
            connection.execute(sa.text("SELECT setseed(0.42)"))
        connection.execute(sa.text(GENERATE), {"start": have + 1, "end": rows})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(sa.text("VACUUM ANALYZE public.bench"))
    engine.dispose()
    return time.perf_counter() - started


def reference_sample(server: PostgresServer, path: Path) -> None:
    """The drift reference: 50,000 rows sampled from the first million, typed as training keeps them."""
    import pandas as pd
    import sqlalchemy as sa

    engine = server.engine()
    with engine.connect() as connection:
        frame = pd.read_sql(
            sa.text(
                f"SELECT {', '.join([*NUMERIC, *CATEGORICAL, 'label'])} FROM public.bench ORDER BY random() LIMIT 50000"
            ),
            connection,
        )
    for column in CATEGORICAL:
        frame[column] = frame[column].astype("str")
    frame.to_parquet(path)
    engine.dispose()


def measure(case: str, spec: Path, reference: Path, url: str) -> dict:
    runs = [json.loads(run_python(CASE, case, str(spec), str(reference), url, env=python_env()).strip().splitlines()[-1])
            for _ in range(REPEAT)]  # fmt: skip
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="retrain-bench-"))
    server = PostgresServer().start()
    rows_out = []
    try:
        spec = folder / "bench_sql.yaml"
        spec.write_text(yaml.safe_dump(SPEC, sort_keys=False))
        reference = folder / "reference.parquet"
        have = 0
        for size in SIZES:
            generated = grow(server, size, have)
            have = size
            if not reference.exists():
                reference_sample(server, reference)
            database = measure("database", spec, reference, server.url())
            pandas = measure("pandas", spec, reference, server.url())
            assert database["rows"] == pandas["rows"] == size, (database, pandas)
            pandas_total = pandas["read_seconds"] + pandas["validation_seconds"] + pandas["drift_seconds"]
            database_total = database["validation_seconds"] + database["drift_seconds"]
            rows_out.append({
                "rows": size,
                "generate_s": round(generated, 1),
                "db_validate_s": round(database["validation_seconds"], 1),
                "db_drift_s": round(database["drift_seconds"], 1),
                "db_peak_MB": round(database["peak_bytes"] / 2**20),
                "pandas_read_s": round(pandas["read_seconds"], 1),
                "pandas_validate_s": round(pandas["validation_seconds"], 1),
                "pandas_drift_s": round(pandas["drift_seconds"], 1),
                "pandas_peak_MB": round(pandas["peak_bytes"] / 2**20),
                "window_MB": round(pandas["window_bytes"] / 2**20),
                "time_ratio_db_vs_pandas": round(database_total / pandas_total, 2),
                "peak_ratio_db_vs_pandas": round(database["peak_bytes"] / max(pandas["peak_bytes"], 1), 3),
            })  # fmt: skip
            print(json.dumps(rows_out[-1]), flush=True)
    finally:
        server.remove()
    notes = (
        f"median of {REPEAT} fresh interpreter(s) per case; PostgreSQL 15 defaults on the same machine; one table"
        " grown 1M -> 5M -> 10M rows (generate_series), 14 double, 4 text, 1 timestamptz, 1 bigint column; peak ="
        " the worker's peak RSS less its RSS after imports"
    )
    print(save("sql_scaling", rows_out, notes))


if __name__ == "__main__":
    main()
