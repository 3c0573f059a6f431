"""Where the data is: `data.uri` (files) or `data.conn_id` with exactly one of `data.table` and `data.query`,
checked when the spec is parsed, each error on the field to change."""

from __future__ import annotations

import pytest
import yaml

from retrain.errors import SpecError
from retrain.spec import parse_spec
from tests.support import DEMO_SPEC
from tests.unit.test_spec import minimal

QUERY = "SELECT * FROM events WHERE event_time >= :start AND event_time < :end"


def with_data(**data) -> dict:
    document = minimal()
    document["data"] = {"timestamp_column": "event_time", **data}
    return document


@pytest.mark.parametrize(
    "data",
    [
        {"conn_id": "warehouse", "table": "events"},
        {"conn_id": "warehouse", "table": "analytics.events"},
        {"conn_id": "warehouse", "table": "Mixed Case.Events 2025"},  # a quoted identifier may hold spaces
        {"conn_id": "warehouse", "query": QUERY},
        {"conn_id": "warehouse", "query": "WITH w AS (SELECT * FROM e WHERE t >= :start AND t < :end) SELECT * FROM w"},
        {"conn_id": "warehouse", "query": QUERY + " AND note <> 'a::b' AND amount::numeric > 0"},  # casts are not binds
    ],
)
def test_sql_sources_parse(data):
    spec = parse_spec(with_data(**data))
    assert spec.data.uri is None and spec.data.conn_id == "warehouse"
    assert "warehouse" in spec.data.location


@pytest.mark.parametrize(
    ("data", "field", "reason"),
    [
        ({}, "data.uri", "name the data"),
        ({"uri": "x/", "conn_id": "warehouse"}, "data.conn_id", "exclude each other"),
        ({"uri": "x/", "table": "events"}, "data.table", "exclude each other"),
        ({"table": "events"}, "data.conn_id", "needs data.conn_id"),
        ({"query": QUERY}, "data.conn_id", "needs data.conn_id"),
        ({"conn_id": "warehouse"}, "data.table", "exactly one of data.table and data.query"),
        ({"conn_id": "warehouse", "table": "events", "query": QUERY}, "data.table", "exactly one"),
        ({"conn_id": "bad id!", "table": "events"}, "data.conn_id", "pattern"),
        ({"conn_id": "warehouse", "table": "a.b.c"}, "data.table", "'table' or 'schema.table'"),
        ({"conn_id": "warehouse", "table": 'events"; DROP TABLE x; --'}, "data.table", "no quote"),
        ({"conn_id": "warehouse", "table": "ev\tents"}, "data.table", "control character"),
        ({"conn_id": "warehouse", "table": "x" * 64}, "data.table", "1-63 characters"),
        ({"conn_id": "warehouse", "query": "SELECT * FROM events"}, "data.query", "missing :start, :end"),
        ({"conn_id": "warehouse", "query": "SELECT * FROM e WHERE t >= :start"}, "data.query", "missing :end"),
        ({"conn_id": "warehouse", "query": QUERY + " AND region = :region"}, "data.query", "unknown placeholder"),
    ],
)
def test_invalid_sources_name_the_field(data, field, reason):
    with pytest.raises(SpecError) as error:
        parse_spec(with_data(**data), source="models/m.yaml")
    message = str(error.value)
    assert "models/m.yaml" in message
    line = next(line for line in message.splitlines() if f"field '{field}'" in line)
    assert reason in line, message


def test_a_file_spec_is_unchanged():
    spec = parse_spec(minimal())
    assert spec.data.uri == "include/data/demo/" and spec.data.conn_id is None
    assert spec.data.location == "include/data/demo/"


# -- rows to score, labels and the predictions' table: the same rules, each error on its own field ----------------

LOOP_QUERY = "SELECT * FROM rows_to_score WHERE event_time >= :start AND event_time < :end"


def with_loop(input: dict | None = None, labels: dict | None = None, output: dict | None = None) -> dict:
    document = yaml.safe_load(DEMO_SPEC.read_text())
    if input is not None:
        document["scoring"]["input"] = input
    if labels is not None:
        document["monitoring"]["labels"] = {"delay_days": 7, **labels}
    if output is not None:
        document["scoring"]["output"] = output
    return document


@pytest.mark.parametrize(
    "sections",
    [
        {"input": {"conn_id": "warehouse", "table": "analytics.rows_to_score"}},
        {"input": {"conn_id": "warehouse", "query": LOOP_QUERY}},
        {"labels": {"conn_id": "warehouse", "table": "labels"}},
        {"output": {"conn_id": "warehouse", "table": "analytics.predictions"}},
    ],
)
def test_rows_labels_and_output_may_name_a_database(sections):
    spec = parse_spec(with_loop(**sections))
    if "input" in sections:
        assert spec.scoring.input.uri is None and spec.scoring.input.conn_id == "warehouse"
    if "labels" in sections:
        assert spec.monitoring.labels.table == "labels" and spec.monitoring.labels.label_column == "churned"
    if "output" in sections:
        assert spec.scoring.output.location == "table analytics.predictions through connection warehouse"


@pytest.mark.parametrize(
    ("sections", "field", "reason"),
    [
        ({"input": {"uri": "x/", "conn_id": "warehouse", "table": "t"}}, "scoring.input.conn_id",
         "scoring.input.uri and scoring.input.conn_id exclude each other"),
        ({"input": {"format": "csv"}}, "scoring.input.uri", "name the data: scoring.input.uri (files), or scoring.input.conn_id"),
        ({"input": {"table": "rows"}}, "scoring.input.conn_id", "scoring.input.table needs scoring.input.conn_id"),
        ({"input": {"conn_id": "warehouse", "table": "t", "query": LOOP_QUERY}}, "scoring.input.table",
         "exactly one of scoring.input.table and scoring.input.query"),
        ({"input": {"conn_id": "warehouse", "query": "SELECT * FROM t WHERE event_time < :end"}}, "scoring.input.query",
         "missing :start"),
        ({"input": {"conn_id": "warehouse", "table": 'rows"; DROP TABLE events; --'}}, "scoring.input.table", "no quote"),
        ({"labels": {"uri": "x/", "query": LOOP_QUERY}}, "monitoring.labels.query", "exclude each other"),
        ({"labels": {}}, "monitoring.labels.uri", "name the data: monitoring.labels.uri"),
        ({"labels": {"conn_id": "warehouse", "query": "SELECT * FROM labels"}}, "monitoring.labels.query",
         "missing :start, :end"),
        ({"labels": {"conn_id": "warehouse", "table": "a.b.c"}}, "monitoring.labels.table", "'table' or 'schema.table'"),
        ({"output": {"conn_id": "warehouse", "table": 'predictions"; DROP TABLE events; --'}}, "scoring.output.table",
         "no quote"),
        ({"output": {"conn_id": "warehouse", "table": "x" * 64}}, "scoring.output.table", "1-63 characters"),
        ({"output": {"conn_id": "warehouse"}}, "scoring.output.table", "Field required"),
        ({"output": {"table": "predictions"}}, "scoring.output.conn_id", "Field required"),
        ({"output": {"conn_id": "bad id!", "table": "predictions"}}, "scoring.output.conn_id", "pattern"),
    ],
    ids=["input-both-kinds", "input-none", "input-no-conn", "input-table-and-query", "input-query-no-start",
         "input-hostile-table", "labels-both-kinds", "labels-none", "labels-query-unbound", "labels-three-parts",
         "output-hostile-table", "output-long-name", "output-no-table", "output-no-conn", "output-bad-conn"],
)  # fmt: skip
def test_loop_sources_name_the_field(sections, field, reason):
    with pytest.raises(SpecError) as error:
        parse_spec(with_loop(**sections), source="models/churn.yaml")
    message = str(error.value)
    line = next(line for line in message.splitlines() if f"field '{field}'" in line)
    assert reason in line, message


def test_a_key_column_cannot_be_an_output_column():
    document = with_loop(output={"conn_id": "warehouse", "table": "predictions"})
    document["scoring"]["key_columns"] = ["customer_id", "day"]
    document["monitoring"]["labels"]["key_columns"] = ["customer_id", "event_day"]
    with pytest.raises(SpecError, match=r"field 'scoring.key_columns': \['day'\] cannot be keys when scoring.output"):
        parse_spec(document)
