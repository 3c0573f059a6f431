"""A day's predictions written to a table (`scoring.output`: `conn_id` + `table`), idempotently.

The table mirrors the day's Parquet partition: key columns, `prediction`, `probability` (classifiers),
`model_version`, `run_id`, and `day` (a DATE). One transaction deletes the day's rows and inserts the
partition's, so a rerun of a day leaves the same rows and a new champion's replace the old ones; a reader
sees the old day or the new one, never both or half. On PostgreSQL the transaction is read-write even when
the engine's sessions default to read-only (retrain.sources.sql.prepare_engine), and it takes a lock that
only another writer of the table waits for, so two runs of one day cannot both insert. Before anything else,
writers of one table take turns on a transaction-scoped advisory lock named after it: two first writes would
otherwise both find no table, both create it, and one would fail.

The table is created when missing, its column types from the partition's. Its name is a quoted identifier
(checked as 'table' or 'schema.table' when the spec is parsed, never pasted into SQL text); an existing
table without the needed columns is an error naming them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.sql.elements import quoted_name

from retrain.errors import DataError
from retrain.sources.sql import database_errors
from retrain.spec import OutputSpec

DAY = "day"
FIELD = "scoring.output.table"


@dataclass(frozen=True)
class TableWritten:
    """What the write did: the day's rows now in the table, and how many it replaced."""

    location: str
    rows: int
    replaced: int


def _sql_type(series: pd.Series) -> sa.types.TypeEngine:
    if pd.api.types.is_bool_dtype(series):
        return sa.Boolean()
    if pd.api.types.is_integer_dtype(series):
        return sa.BigInteger()
    if pd.api.types.is_float_dtype(series):
        return sa.Double()
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        return sa.DateTime(timezone=True)
    if pd.api.types.is_datetime64_dtype(series):
        return sa.DateTime()
    return sa.Text()


def _table(output: OutputSpec, frame: pd.DataFrame) -> sa.Table:
    schema, _, name = output.table.rpartition(".")
    columns = [sa.Column(quoted_name(column, True), _sql_type(frame[column])) for column in frame.columns]
    return sa.Table(
        quoted_name(name, True), sa.MetaData(), *columns, sa.Column(quoted_name(DAY, True), sa.Date(), nullable=False),
        schema=quoted_name(schema, True) if schema else None,
    )  # fmt: skip


def _records(frame: pd.DataFrame, day: dt.date) -> list[dict]:
    """Rows as plain Python values (NaN and NA as NULL, numpy scalars as Python's), with the day."""
    plain = frame.astype(object).where(frame.notna(), None)
    records = plain.to_dict(orient="records")
    for record in records:
        for key, value in record.items():
            if hasattr(value, "item"):  # a numpy scalar: the driver wants Python's
                record[key] = value.item()
        record[DAY] = day
    return records


def write_day(engine: sa.Engine, output: OutputSpec, frame: pd.DataFrame, day: dt.date) -> TableWritten:
    """Replaces the day's rows of the output table with `frame`'s (the day's partition), in one transaction.

    Raises DataError naming scoring.output.table when the database refuses (transient when it does not answer).
    """
    table = _table(output, frame)
    needed = [column.name for column in table.columns]
    with database_errors(output.location, FIELD):
        with engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                connection.execute(sa.text("SET TRANSACTION READ WRITE"))
                # Held to the commit: the next writer of this table sees it created and the day written.
                connection.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _writers_key(table, connection)}
                )
            table.create(connection, checkfirst=True)
            _require_columns(connection, table, needed, output)
            if engine.dialect.name == "postgresql":
                # Self-conflicting, and no reader waits for it: writers of the table take turns.
                lock = sa.text(f"LOCK TABLE {_compiled_name(table, connection)} IN SHARE ROW EXCLUSIVE MODE")
                connection.execute(lock)
            replaced = connection.execute(sa.delete(table).where(table.c[DAY] == day)).rowcount
            if len(frame):
                connection.execute(sa.insert(table), _records(frame, day))
    return TableWritten(output.location, len(frame), int(replaced or 0))


def _writers_key(table: sa.Table, connection: sa.Connection) -> int:
    """The advisory lock key of the table's writers: 64 bits of SHA-256 of its quoted, qualified name."""
    name = f"retrain.scoring.output:{_compiled_name(table, connection)}".encode()
    return int.from_bytes(hashlib.sha256(name).digest()[:8], "big", signed=True)


def _compiled_name(table: sa.Table, connection: sa.Connection) -> str:
    """The table's name as the dialect quotes it (never the spec's text as such)."""
    return connection.dialect.identifier_preparer.format_table(table)


def _require_columns(connection: sa.Connection, table: sa.Table, needed: Sequence[str], output: OutputSpec) -> None:
    existing = {column["name"] for column in sa.inspect(connection).get_columns(table.name, schema=table.schema)}
    missing = [name for name in needed if name not in existing]
    if missing:
        raise DataError(
            f"field '{FIELD}': table {output.table!r} (connection {output.conn_id!r}) exists without column(s)"
            f" {missing} that predictions are written to; it has {sorted(existing)}"
        )
