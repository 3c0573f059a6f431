"""The scoring and monitoring DAGs on a real PostgreSQL server (scripts/postgres.sh): rows to score read from a
table and validated, predictions written to the Parquet partition and to a table (a rerun leaves the same rows,
a new champion's replace them, a failed write changes nothing), and labels joined from a query."""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pytest
import sqlalchemy as sa

from retrain.contracts import LiveMetricsResult, PredictionResult, ValidationResult
from retrain.errors import DataError, DataValidationError
from retrain.pipeline import StepContext, task_ids
from retrain.scoring import read_predictions
from retrain.sources.sql import prepare_engine
from retrain.sources.sql_output import write_day
from retrain.spec import OutputSpec, load_spec
from retrain.steps import validate_rows
from tests.support import DEMO_LABELS, DEMO_SCORING, TASKS, bare_run, run_dag, write_spec
from tests.support.postgres import load_frame

pytestmark = [
    pytest.mark.integration,
    pytest.mark.usefixtures("airflow_db", "mlflow_server"),
    pytest.mark.filterwarnings("error::sqlalchemy.exc.SAWarning"),
]
SCORE, MONITOR = task_ids(pipeline="score"), task_ids(pipeline="monitor")
DAY = dt.date(2025, 5, 29)
BAD_DAY = dt.date(2025, 5, 30)
# A name that only works quoted (upper case, a space): the output table is never pasted into SQL text.
OUTPUT = "public.Churn predictions"
ROWS = "table public.rows_to_score through connection warehouse"
WRITERS, ATTEMPTS = 4, 5  # the first-write race
LABELS_QUERY = "SELECT customer_id, event_time, churned FROM public.labels WHERE event_time >= :start AND event_time < :end"


@pytest.fixture(scope="module")
def tables(warehouse):
    """public.rows_to_score and public.labels: the demo's rows to score and labels, as tables; no output table."""
    engine = warehouse.engine()
    for table, folder in (("rows_to_score", DEMO_SCORING), ("labels", DEMO_LABELS)):
        frame = pd.concat([pd.read_parquet(p) for p in sorted(folder.glob("*.parquet"))], ignore_index=True)
        load_frame(engine, table, frame)
    with engine.begin() as connection:
        connection.execute(sa.text(f'DROP TABLE IF EXISTS public."{OUTPUT.split(".")[1]}"'))
    yield engine
    with engine.begin() as connection:
        for table in ("rows_to_score", "labels", OUTPUT.split(".")[1], "replace_me", "not_predictions"):
            connection.execute(sa.text(f'DROP TABLE IF EXISTS public."{table}"'))
    engine.dispose()


@pytest.fixture(scope="module")
def spec_path(tmp_path_factory, tables):
    policy = {"max_drop": 0.1, "breaches": 1, "days": 1, "min_labels": 50}
    return write_spec(tmp_path_factory.mktemp("sqlloop"), loop=True, **{
        "scoring.input": {"conn_id": "warehouse", "table": "public.rows_to_score"},
        "scoring.output": {"conn_id": "warehouse", "table": OUTPUT},
        "monitoring.labels": {"conn_id": "warehouse", "query": LABELS_QUERY, "delay_days": 0},
        "monitoring.policy": policy,
    })  # fmt: skip


def engines(server):
    return lambda conn_id: sa.create_engine(server.url())


def output_rows(engine, day: dt.date | None = None) -> pd.DataFrame:
    output = sa.table("Churn predictions", sa.column("day"), schema="public")
    select = sa.select(sa.text("*")).select_from(output)
    if day is not None:
        select = select.where(output.c.day == day)
    with engine.connect() as connection:
        frame = pd.DataFrame(connection.execute(select).mappings().all())
    return frame.sort_values("customer_id", ignore_index=True) if len(frame) else frame


def output_of(dag_run, task_id: str, kind):
    ti = next(ti for ti in dag_run.get_task_instances() if ti.task_id == task_id)
    return kind.from_xcom(ti.xcom_pull(task_ids=task_id))


def ensure_champion(spec_path, registry) -> None:
    if registry.champion(load_spec(spec_path).name) is None:
        assert run_dag(spec_path, dt.date(2025, 5, 1))[0] == dict.fromkeys(TASKS, "success")


def score(spec_path, day: dt.date):
    return run_dag(spec_path, day, pipeline="score", date=day.isoformat())


def test_a_day_scored_from_a_table_lands_in_parquet_and_in_the_table_and_a_rerun_leaves_the_same_rows(
    spec_path, registry, tables
):
    spec = load_spec(spec_path)
    ensure_champion(spec_path, registry)

    states, dag_run = score(spec_path, DAY)
    assert states == dict.fromkeys(SCORE, "success")
    validated = output_of(dag_run, "validate_rows", ValidationResult)
    assert validated.success and validated.rows == 300 and validated.files == (ROWS,)
    stored = read_predictions(spec.name, DAY)
    assert stored.version == "1" and len(stored.frame) == 300
    predicted = output_of(dag_run, "predict", PredictionResult)
    assert predicted.table == f"table {OUTPUT} through connection warehouse" and predicted.table_rows == 300

    in_table = output_rows(tables, DAY)
    assert list(in_table.columns) == ["customer_id", "prediction", "probability", "model_version", "run_id", "day"]
    parquet = stored.frame.sort_values("customer_id", ignore_index=True)
    pd.testing.assert_frame_equal(in_table.drop(columns="day"), parquet, check_dtype=False)
    assert set(in_table["day"]) == {DAY}

    # A rerun keeps the Parquet file and leaves the table's rows exactly as they were: no duplicate.
    states, dag_run = score(spec_path, DAY)
    assert states == dict.fromkeys(SCORE, "success")
    rerun = output_of(dag_run, "predict", PredictionResult)
    assert rerun.written is False and rerun.table_rows == 300
    pd.testing.assert_frame_equal(output_rows(tables, DAY), in_table)
    assert len(output_rows(tables)) == 300, "only the day scored is in the table"


def test_bad_rows_in_the_table_fail_validation_and_reach_neither_parquet_nor_the_table(
    spec_path, registry, tables, warehouse
):
    spec = load_spec(spec_path)
    ensure_champion(spec_path, registry)
    with tables.begin() as connection:  # a bad export for BAD_DAY: an unknown region and a repeated key
        connection.execute(sa.text(
            "INSERT INTO public.rows_to_score (event_time, customer_id, tenure_months, monthly_spend, support_tickets,"
            " sessions_last_week, plan, region)"
            " SELECT timestamptz '2025-05-30 12:00+00' + n * interval '1 minute', 7, 10, 19.5, 1, 3, 'basic', 'atlantis'"
            " FROM generate_series(1, 3) AS n"
        ))  # fmt: skip
    run = bare_run(spec, BAD_DAY + dt.timedelta(days=1))
    with pytest.raises(DataValidationError) as failed:
        validate_rows.run(StepContext(spec=spec, run=run, engines=engines(warehouse)))
    message = str(failed.value)
    assert "expect_column_values_to_be_in_set(column='region'" in message and "'atlantis'" in message
    assert "expect_column_values_to_be_unique(column='customer_id')" in message
    assert failed.value.output.files == (ROWS,)

    states, _ = score(spec_path, BAD_DAY)
    assert states == {"resolve_champion": "success", "validate_rows": "failed", "predict": "upstream_failed"}
    assert output_rows(tables, BAD_DAY).empty


def test_monitoring_joins_labels_from_a_query(spec_path, registry, tables):
    ensure_champion(spec_path, registry)
    if output_rows(tables, DAY).empty:  # run alone
        assert score(spec_path, DAY)[0] == dict.fromkeys(SCORE, "success")

    states, dag_run = run_dag(spec_path, DAY, pipeline="monitor", date=DAY.isoformat())
    assert states == {**dict.fromkeys(MONITOR, "success"), "request_retraining": "skipped"}
    live = output_of(dag_run, "join_labels", LiveMetricsResult)
    (figures,) = [d for d in live.days if d["day"] == DAY.isoformat()]
    with tables.connect() as connection:
        expected = connection.execute(sa.text(
            "SELECT count(*) FROM public.labels l JOIN public.\"Churn predictions\" p USING (customer_id)"
            " WHERE p.day = :day AND l.event_time >= :start AND l.event_time < :start + interval '1 day'"
        ), {"day": DAY, "start": dt.datetime(2025, 5, 29, tzinfo=dt.UTC)}).scalar_one()  # fmt: skip
    assert 50 <= expected < 300, "some labels never come"
    assert figures["scored"] == 300 and figures["labelled"] == expected
    assert figures["value"] is not None and figures["status"] == "ok"


def test_the_table_write_is_one_idempotent_transaction(warehouse, tables):
    # Sessions read-only by default (as a source's engine makes them): the write still goes through.
    engine = prepare_engine(warehouse.engine())
    output = OutputSpec(conn_id="warehouse", table="public.replace_me")
    day, next_day = dt.date(2025, 6, 1), dt.date(2025, 6, 2)

    def frame(version: str, keys: list[int]) -> pd.DataFrame:
        return pd.DataFrame({
            "customer_id": keys, "prediction": [k % 2 for k in keys], "probability": [k / 10 for k in keys],
            "model_version": version, "run_id": f"run-{version}",
        })  # fmt: skip

    def stored(on: dt.date) -> list[tuple[int, str]]:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text('SELECT customer_id, model_version FROM public."replace_me" WHERE day = :day ORDER BY 1'),
                {"day": on},
            )
            return [tuple(row) for row in rows]

    assert write_day(engine, output, frame("1", [1, 2, 3]), day).replaced == 0
    write_day(engine, output, frame("1", [4, 5]), next_day)
    again = write_day(engine, output, frame("1", [1, 2, 3]), day)
    assert (again.rows, again.replaced) == (3, 3) and stored(day) == [(1, "1"), (2, "1"), (3, "1")]

    # A new champion's predictions replace the day's, whatever their number; the other day is untouched.
    write_day(engine, output, frame("2", [2, 3]), day)
    assert stored(day) == [(2, "2"), (3, "2")]
    assert stored(next_day) == [(4, "1"), (5, "1")]

    # An insert the database refuses (text into the integer prediction column) rolls the delete back.
    broken = frame("3", [1]).assign(prediction=["churned"])
    with pytest.raises(DataError, match=r"field 'scoring.output.table' \(table public.replace_me .*refused"):
        write_day(engine, output, broken, day)
    assert stored(day) == [(2, "2"), (3, "2")], "the failed write's delete was rolled back with it"

    with engine.begin() as connection:
        connection.execute(sa.text("SET TRANSACTION READ WRITE"))
        connection.execute(sa.text('CREATE TABLE public."not_predictions" (customer_id bigint, note text)'))
    elsewhere = OutputSpec(conn_id="warehouse", table="public.not_predictions")
    with pytest.raises(DataError, match=r"exists without column\(s\) \['prediction', 'probability'"):
        write_day(engine, elsewhere, frame("1", [1]), day)
    engine.dispose()


def test_first_writes_of_a_new_table_at_once_all_land(warehouse, tables):
    """Writers that all find no table yet (a barrier starts them together): each creates it or waits for the one
    that does, and every day lands. Without the writers' advisory lock, one CREATE TABLE fails."""
    engine = prepare_engine(warehouse.engine())  # a pool of 5 connections: one per writer
    days = [dt.date(2025, 7, d) for d in range(1, WRITERS + 1)]
    for attempt in range(ATTEMPTS):  # the window is short: a few fresh tables
        output = OutputSpec(conn_id="warehouse", table=f"public.race_{attempt}")
        start = threading.Barrier(WRITERS)

        def write(day: dt.date, output=output, start=start) -> int:
            start.wait()
            frame = pd.DataFrame({"customer_id": [day.day], "prediction": [1], "model_version": "1", "run_id": "r"})
            return write_day(engine, output, frame, day).rows

        try:
            with ThreadPoolExecutor(WRITERS) as pool:
                assert list(pool.map(write, days)) == [1] * WRITERS
            with engine.connect() as connection:
                written = connection.execute(sa.text(f'SELECT day FROM public."race_{attempt}" ORDER BY day'))
                assert [row.day for row in written] == days
        finally:
            with engine.begin() as connection:
                connection.execute(sa.text("SET TRANSACTION READ WRITE"))
                connection.execute(sa.text(f'DROP TABLE IF EXISTS public."race_{attempt}"'))
    engine.dispose()


@pytest.mark.parametrize(
    ("section", "where", "expected"),
    [
        ("scoring.input", {"table": "public.no_such_rows"},
         "field 'scoring.input.table': table 'public.no_such_rows' does not exist"),
        ("scoring.input", {"table": "rows_to_score; DROP TABLE labels; --"},
         "field 'scoring.input.table': table 'rows_to_score; DROP TABLE labels; --' does not exist"),
        ("scoring.input", {"query": "SELECT event_time, customer_id FROM public.rows_to_score"
                                    " WHERE event_time >= :start AND event_time < :end"},
         "field 'scoring.input.query' (query through connection warehouse): no column(s) ['tenure_months'"),
        ("monitoring.labels", {"table": "public.labels_missing"},
         "field 'monitoring.labels.table': table 'public.labels_missing' does not exist"),
    ],
    ids=["missing-table", "hostile-name", "missing-columns", "missing-labels-table"],
)  # fmt: skip
def test_a_wrong_table_or_query_is_named_on_its_field(spec_path, warehouse, tables, section, where, expected):
    from retrain.scoring import read_day_rows
    from retrain.steps.join_labels import read_labels

    spec = load_spec(spec_path)
    owner, field = section.split(".")
    changed = getattr(spec, owner).model_copy(update={
        field: getattr(getattr(spec, owner), field).model_copy(update={"table": None, "query": None, **where})
    })  # fmt: skip
    spec = spec.model_copy(update={owner: changed})
    with pytest.raises(DataError) as failed:
        if owner == "scoring":
            read_day_rows(spec, DAY, engines=engines(warehouse))
        else:
            read_labels(spec, DAY, DAY, log=None, engines=engines(warehouse))
    assert expected in str(failed.value) and not failed.value.transient
    with tables.connect() as connection:  # the hostile name ran nothing
        assert connection.execute(sa.text("SELECT count(*) FROM public.labels")).scalar() > 0


def test_a_new_champion_rescores_the_day_through_the_dag_and_its_rows_replace_the_old_in_the_table(
    spec_path, registry, tables
):
    spec = load_spec(spec_path)
    ensure_champion(spec_path, registry)
    assert score(spec_path, DAY)[0] == dict.fromkeys(SCORE, "success")
    old = registry.champion(spec.name).version
    assert set(output_rows(tables, DAY)["model_version"]) == {old}

    # Another night's version, promoted whatever the comparison says (the trigger form's force_promote).
    states, _ = run_dag(spec_path, dt.date(2025, 5, 8), force_promote=True)
    assert states == dict.fromkeys(TASKS, "success")
    new = registry.champion(spec.name).version
    assert new != old

    states, dag_run = score(spec_path, DAY)
    assert states == dict.fromkeys(SCORE, "success")
    predicted = output_of(dag_run, "predict", PredictionResult)
    assert (predicted.version, predicted.written, predicted.replaced_version, predicted.table_rows) == (new, True, old, 300)
    in_table = output_rows(tables, DAY)
    assert len(in_table) == 300 and set(in_table["model_version"]) == {new}, "the old champion's rows are gone"
    parquet = read_predictions(spec.name, DAY).frame.sort_values("customer_id", ignore_index=True)
    pd.testing.assert_frame_equal(in_table.drop(columns="day"), parquet, check_dtype=False)
