"""Where the data is: `data.uri` (files) or `data.conn_id` with exactly one of `data.table` and `data.query`,
checked when the spec is parsed, each error on the field to change."""

from __future__ import annotations

import pytest

from retrain.errors import SpecError
from retrain.spec import parse_spec
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
