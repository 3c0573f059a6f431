"""Data in a real PostgreSQL server (scripts/postgres.sh, a free loopback port): the source reads, validates,
counts and streams there, with the same verdicts, statistics and partition hashes as the same rows in files,
and every bad name, query, batch or connection is a clear error naming what to fix."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from retrain.errors import DataError, DataValidationError
from retrain.features import build_partition_from_ordered, prepare_frame, reference_sample, split
from retrain.pipeline import StepContext
from retrain.sources import open_source
from retrain.sources.files import FileSource
from retrain.sources.sql_drift import KS_BINNED
from retrain.spec import load_spec
from retrain.steps import validate as validate_step
from retrain.tags import Tag
from retrain.window import Window
from tests.support import DEMO_DATA, TASKS, artifacts, bare_run, run_dag, write_spec
from tests.support.postgres import load_frame

# A statement SQLAlchemy warns about (a cartesian product, say) is a failure here.
pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("error::sqlalchemy.exc.SAWarning")]
NIGHT = dt.date(2025, 5, 1)
QUERY = "SELECT * FROM public.events WHERE event_time >= :start AND event_time < :end"


def sql_spec(spec_dir: Path, **data) -> Path:
    overrides = {"data.uri": None, "data.conn_id": "warehouse", **{f"data.{k}": v for k, v in data.items()}}
    return write_spec(spec_dir, **overrides)


def engines(server):
    return lambda conn_id: sa.create_engine(server.url())


def source_for(spec_path: Path, server):
    return open_source(load_spec(spec_path), engines(server))


def file_source(spec_path: Path) -> FileSource:
    spec = load_spec(spec_path)
    return FileSource(spec.model_copy(update={"data": spec.data.model_copy(update={"uri": str(DEMO_DATA)})}))


@pytest.mark.parametrize("where", [{"table": "public.events"}, {"query": QUERY}], ids=["table", "query"])
def test_validation_in_the_database_matches_files(spec_dir, warehouse, where):
    spec_path = sql_spec(spec_dir, **where)
    window = Window.ending(NIGHT, load_spec(spec_path).data)
    in_database = source_for(spec_path, warehouse).validate(window).outcome
    on_worker = file_source(spec_path).validate(window).outcome
    assert in_database.success and in_database.rows == on_worker.rows == 16800

    def verdicts(outcome):  # GX returns results in an order of its own
        return sorted((r.type, str(r.column), r.success, r.unexpected_count, r.element_count) for r in outcome.results)

    for database_verdict, worker_verdict in zip(verdicts(in_database), verdicts(on_worker), strict=True):
        assert database_verdict == worker_verdict


@pytest.mark.parametrize("where", [{"table": "public.events"}, {"query": QUERY}], ids=["table", "query"])
def test_streamed_partition_has_the_hashes_of_the_same_rows_from_files(spec_dir, warehouse, tmp_path, where):
    spec_path = sql_spec(spec_dir, **where)
    spec = load_spec(spec_path)
    window = Window.ending(NIGHT, spec.data)
    source = source_for(spec_path, warehouse)
    from_files = file_source(spec_path).build_partition(window, tmp_path / "files")
    from_database = source.build_partition(window, tmp_path / "database")
    # Small chunks: the training set's end and the holdout's start fall inside chunks.
    chunked = build_partition_from_ordered(
        source.stream_window(window, [*spec.features.columns, spec.target], chunk_rows=1000), spec, window,
        tmp_path / "chunked",
    )  # fmt: skip
    for partition in (from_database, chunked):
        assert (partition.train_rows, partition.holdout_rows) == (from_files.train_rows, from_files.holdout_rows)
        assert (partition.train_hash, partition.holdout_hash) == (from_files.train_hash, from_files.holdout_hash)
    for name in ("train.parquet", "holdout.parquet"):
        pd.testing.assert_frame_equal(
            pd.read_parquet(tmp_path / "database" / name), pd.read_parquet(tmp_path / "files" / name)
        )


def test_drift_counted_in_the_database_matches_files(spec_dir, warehouse):
    spec_path = sql_spec(spec_dir, table="public.events")
    spec = load_spec(spec_path)
    trained_on = Window.ending(NIGHT, spec.data)
    files = file_source(spec_path)
    train, _ = split(prepare_frame(files.read_window(trained_on, [*spec.features.columns, spec.target]).frame, spec),
                     spec, trained_on)  # fmt: skip
    # The reference the smaller sample (counted in the database), then the window (its values read: exact).
    for rows, lookback, expected_binned in ((2000, 56, 1), (50_000, 10, 0)):
        local = spec.model_copy(update={
            "drift": spec.drift.model_copy(update={"reference_sample_rows": rows}),
            "data": spec.data.model_copy(update={"lookback_days": lookback, "holdout_days": 1}),
        })  # fmt: skip
        after_change = Window.ending(dt.date(2025, 7, 1), local.data)
        reference = reference_sample(train, local)
        in_database = open_source(local, engines(warehouse)).drift(reference, after_change)
        on_worker = FileSource(local.model_copy(update={"data": files.spec.data})).drift(reference, after_change)
        binned = 0
        for sql, files_column in zip(in_database.report.columns, on_worker.report.columns, strict=True):
            if sql.test == KS_BINNED:  # the statistic at 1,000 reference quantiles: a lower bound, close
                binned += 1
                assert files_column.statistic - 1e-3 <= sql.statistic <= files_column.statistic
                sql = dataclasses.replace(sql, test="ks", statistic=files_column.statistic, p_value=files_column.p_value)
            assert sql == files_column, "PSI, chi-square and exact KS equal the worker's, bit for bit"
        assert binned == expected_binned, "only monthly_spend has more distinct values than KS_POINTS"
        assert in_database.report.drifted_features == on_worker.report.drifted_features
        assert "monthly_spend" in in_database.report.drifted_features
        assert "in the database" in in_database.method["computed"]


@pytest.fixture
def batch_table(warehouse):
    """public.batch: the demo window, plus whatever a test inserts, with monthly_spend held as text."""
    frame = pd.concat([pd.read_parquet(DEMO_DATA / f"events_2025-0{m}.parquet") for m in (3, 4)], ignore_index=True)
    frame["monthly_spend"] = frame["monthly_spend"].map(lambda v: None if pd.isna(v) else f"{v:g}")
    engine = warehouse.engine()
    load_frame(engine, "batch", frame, types={"monthly_spend": "text"})
    yield engine
    with engine.begin() as connection:
        connection.execute(sa.text("DROP TABLE IF EXISTS public.batch"))
    engine.dispose()


def test_a_bad_batch_fails_validation_naming_each_column(spec_dir, warehouse, batch_table):
    spec = load_spec(sql_spec(spec_dir, table="public.batch"))
    run = bare_run(spec, NIGHT)
    ctx = StepContext(spec=spec, run=run, engines=engines(warehouse))
    assert validate_step.run(ctx).success, "the good window with numbers held as text passes"

    with batch_table.begin() as connection:  # a bad export lands: 40 rows on 2025-04-30
        connection.execute(sa.text(
            "INSERT INTO public.batch (event_time, customer_id, tenure_months, monthly_spend, support_tickets,"
            " sessions_last_week, plan, region, churned)"
            " SELECT timestamptz '2025-04-30 12:00+00' + n * interval '1 minute', n, 10,"
            " CASE WHEN n % 2 = 0 THEN 'lots' ELSE '19.5' END, 1, 3, 'basic',"
            " CASE WHEN n % 4 = 0 THEN 'atlantis' ELSE 'north' END, CASE WHEN n < 10 THEN NULL ELSE 0 END"
            " FROM generate_series(1, 40) AS n"
        ))  # fmt: skip
    ctx = StepContext(spec=spec, run=run, engines=engines(warehouse))
    with pytest.raises(DataValidationError) as failed:
        validate_step.run(ctx)
    message = str(failed.value)
    assert "expect_column_values_to_not_be_null(column='churned')" in message and "9 of 16840 rows" in message
    assert "expect_column_values_to_be_in_set(column='region'" in message and "'atlantis'" in message
    assert "expect_column_values_to_match_regex(column='monthly_spend'" in message and "'lots'" in message
    report = json.loads(Path(failed.value.output.reports["validation_json"]).read_text())
    assert {f["column"] for f in report["failed"] if f["severity"] == "fail"} == {"churned", "region", "monthly_spend"}
    assert report["source"]["kind"] == "sql" and report["source"]["table"] == "public.batch"


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ({"table": "public.no_such_table"}, "field 'data.table': table 'public.no_such_table' does not exist"),
        ({"table": "nowhere.events"}, "field 'data.table': schema 'nowhere' does not exist"),
        # Parses as a name (a quoted identifier may hold it), then is no table: never run as SQL.
        ({"table": "events; DROP TABLE events; --"}, "table 'events; DROP TABLE events; --' does not exist"),
        ({"query": "SELECT * FROM public.events WHERE event_time >= :start AND event_time < :end ORDER"},
         "field 'data.query' (query through connection warehouse): the database refused it: syntax error"),
        ({"query": "SELECT * FROM public.evnts WHERE event_time >= :start AND event_time < :end"},
         'relation "public.evnts" does not exist'),
        ({"query": "SELECT event_time, plan FROM public.events WHERE event_time >= :start AND event_time < :end"},
         "no column(s) ['tenure_months', 'monthly_spend', 'support_tickets', 'sessions_last_week', 'region', 'churned']"),
    ],
    ids=["missing-table", "missing-schema", "hostile-name", "query-does-not-parse", "query-missing-table", "missing-columns"],
)  # fmt: skip
def test_bad_names_and_queries_are_clear_errors(spec_dir, warehouse, where, expected):
    spec = load_spec(sql_spec(spec_dir, **where))
    ctx = StepContext(spec=spec, run=bare_run(spec, NIGHT), engines=engines(warehouse))
    with pytest.raises(DataError) as failed:
        validate_step.run(ctx)
    assert expected in str(failed.value)
    assert not failed.value.retryable, "a wrong name or query is a verdict: retrying cannot fix it"
    assert failed.value.output.error == str(failed.value)
    with warehouse.engine().connect() as connection:  # the hostile name ran nothing
        assert connection.execute(sa.text("SELECT count(*) FROM public.events")).scalar() == 72900


@pytest.mark.parametrize(
    ("query", "refusal"),
    [
        ("SELECT * FROM public.events WHERE nextval('public.counter') > 0 AND event_time >= :start AND event_time < :end",
         "cannot execute nextval() in a read-only transaction"),
        ("WITH gone AS (DELETE FROM public.events RETURNING *) SELECT * FROM gone WHERE event_time >= :start"
         " AND event_time < :end", "data-modifying statement"),
    ],
    ids=["writing-function", "writing-cte"],
)  # fmt: skip
def test_a_query_cannot_write(spec_dir, warehouse, query, refusal):
    engine = warehouse.engine()
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE SEQUENCE IF NOT EXISTS public.counter"))
    spec = load_spec(sql_spec(spec_dir, query=query))
    with pytest.raises(DataError, match=r"field 'data\.query'") as refused:
        open_source(spec, engines(warehouse)).validate(Window.ending(NIGHT, spec.data))
    assert refusal in str(refused.value)
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM public.events")).scalar() == 72900
        assert connection.execute(sa.text("SELECT last_value FROM public.counter")).scalar() == 1  # never advanced


def test_whole_dag_on_a_table(spec_dir, warehouse, registry, airflow_db, caplog, capfd):
    spec_path = sql_spec(spec_dir, table="public.events")
    name = spec_path.stem
    states, dag_run = run_dag(spec_path, NIGHT)
    assert states == dict.fromkeys(TASKS, "success")
    features = json.loads((artifacts(name) / "features" / f"end_date={NIGHT}" / "_manifest.json").read_text())
    spec = load_spec(spec_path)
    from_files = file_source(spec_path).build_partition(Window.ending(NIGHT, spec.data), spec_dir / "files")
    assert features["input_hash"] == from_files.input_hash, "the same rows from a table or from files: one hash"
    report = next((artifacts(name) / "reports" / f"end_date={NIGHT}").glob("*/validation.json"))
    assert json.loads(report.read_text())["source"] == {
        "kind": "sql", "dialect": "postgresql", "connection": "warehouse", "table": "public.events",
        "location": "table public.events through connection warehouse",
    }  # fmt: skip
    version = registry.champion(name)
    assert version is not None and version.tags[Tag.INPUT_HASH] == from_files.input_hash
    # The connection's password is in no report, tag, XCom value or log line.
    secret = warehouse.password
    captured = capfd.readouterr()
    assert "validate_data" in caplog.text + captured.out + captured.err, "the run's logs were captured"
    assert secret not in caplog.text + captured.out + captured.err
    written = "".join(p.read_text(errors="replace") for p in artifacts(name).rglob("*") if p.suffix in {".json", ".html"})
    assert secret not in written
    assert all(secret not in str(v) for v in version.tags.values())
    for ti in dag_run.get_task_instances():
        assert secret not in json.dumps(ti.xcom_pull(task_ids=ti.task_id), default=str)


def test_database_unreachable_retries_then_fails_clearly(spec_dir, warehouse, airflow_db, monkeypatch):
    from tests.support import free_port

    nobody = free_port()  # nothing listens there
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", f"postgres://retrain:x@127.0.0.1:{nobody}/warehouse")
    spec_path = sql_spec(spec_dir, table="public.events")
    spec_path.write_text(spec_path.read_text().replace("retries: 0", "retries: 1\n  retry_delay_minutes: 0"))
    states, dag_run = run_dag(spec_path, NIGHT)
    assert states["validate_data"] == "failed"
    assert {states[t] for t in TASKS[1:]} == {"upstream_failed"}
    validate = next(ti for ti in dag_run.get_task_instances() if ti.task_id == "validate_data")
    assert validate.try_number == 2, "a database that does not answer is transient: the task is retried"
    report = next((artifacts(spec_path.stem) / "reports" / f"end_date={NIGHT}").glob("*/validation.json"))
    error = json.loads(report.read_text())["error"]
    assert "table public.events through connection warehouse: the database is unreachable" in error
    assert "x@" not in error
