"""A database table or query (`data.conn_id` + `data.table` | `data.query`), through SQLAlchemy.

Every statement is SQLAlchemy Core: table and column names are quoted identifiers, checked first against
what the database says exists (a name that does not exist is an error naming it); the window's bounds
are bind parameters, never text. The engine comes from the caller (the Airflow connection, on the
Airflow side); on PostgreSQL every session it opens is read-only and on UTC, so a query in a spec can
change nothing and timestamps without a time zone are read as UTC, as files are.

Validation runs in the database (retrain.sources.sql_validation), drift is counted there
(retrain.sources.sql_drift); the features step streams the window's needed columns, ordered, in chunks
(a server-side cursor): worker memory is bounded by a chunk, not by the window.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.sql.elements import quoted_name

from retrain.data import WindowData
from retrain.errors import DataError
from retrain.features import Partition, build_partition_from_ordered, empty_split_error
from retrain.sources import CHUNK_ROWS, DataSource, Drifted, Validated
from retrain.spec import ModelSpec
from retrain.window import Window

NUMBER, TEXT, TIME, OTHER = "number", "text", "time", "other"


@dataclass(frozen=True)
class Column:
    """A column of the table or query as the database describes it: its name and its kind of type."""

    name: str
    kind: str  # number | text | time | other
    type_name: str


def prepare_engine(engine: sa.Engine) -> sa.Engine:
    """The engine, with every PostgreSQL session it opens read-only and on UTC (idempotent)."""
    if engine.dialect.name == "postgresql" and not sa.event.contains(engine, "connect", _read_only_utc):
        sa.event.listen(engine, "connect", _read_only_utc)
    return engine


def _read_only_utc(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        cursor.execute("SET TIME ZONE 'UTC'")
    finally:
        cursor.close()
    dbapi_connection.commit()


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__


@contextlib.contextmanager
def database_errors(where: str, field: str) -> Iterator[None]:
    """Database errors as DataErrors naming `where` (a table or query, never a credential): transient when the
    database is unreachable (a retry may help), a verdict naming the spec `field` when it refused the statement."""
    try:
        yield
    except (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.DisconnectionError) as error:
        raise DataError(
            f"{where}: the database is unreachable or dropped the connection: {_first_line(error)}", transient=True
        ) from None
    except sa.exc.DBAPIError as error:
        raise DataError(f"field '{field}' ({where}): the database refused it: {_first_line(error)}") from None


class SqlSource(DataSource):
    """A table or a query in a database the engine reaches."""

    def __init__(self, spec: ModelSpec, engine: sa.Engine, section: str = "data") -> None:
        super().__init__(spec)
        self.engine = prepare_engine(engine)
        self.section = section  # the spec section errors name: data, scoring.input or monitoring.labels
        self.field = f"{section}.table" if spec.data.table is not None else f"{section}.query"

    # -- what the source is ------------------------------------------------------------------------------------

    def describe(self) -> dict[str, str]:
        data = self.spec.data
        described = {"kind": "sql", "dialect": self.engine.dialect.name, "connection": data.conn_id or ""}
        if data.table is not None:
            described["table"] = data.table
        else:  # the query's text is in the spec; its digest ties a report to the exact text that ran
            described["query_sha256"] = hashlib.sha256((data.query or "").encode()).hexdigest()
        return {**described, "location": data.location}

    @contextlib.contextmanager
    def errors(self) -> Iterator[None]:
        """Database errors as DataErrors naming the source: transient when the database is unreachable
        (a retry may help), a verdict when it refused the statement (a name or the query is wrong)."""
        with database_errors(self.spec.data.location, self.field):
            yield

    @cached_property
    def columns(self) -> dict[str, Column]:
        """Every column the table or query has, by name, as the database describes them."""
        with self.errors():
            if self.spec.data.table is not None:
                self._require_table()
            probe = sa.select(sa.text("*")).select_from(self._unchecked_relation()).limit(0)
            with self.engine.connect() as connection:
                description = connection.execute(probe, self._query_bounds()).cursor.description
        dbapi = self.engine.dialect.dbapi
        return {d[0]: Column(d[0], _kind(dbapi, d[1]), _type_name(self.engine, d[1])) for d in description}

    def _require_table(self) -> None:
        schema, table = self._table_name()
        inspector = sa.inspect(self.engine)
        where = f"in the database of connection {self.spec.data.conn_id!r}"
        if schema is not None and schema not in inspector.get_schema_names():
            raise DataError(f"field '{self.field}': schema {schema!r} does not exist {where}")
        if not inspector.has_table(table, schema=schema):
            raise DataError(f"field '{self.field}': table {self.spec.data.table!r} does not exist {where}")

    def _table_name(self) -> tuple[str | None, str]:
        schema, _, table = (self.spec.data.table or "").rpartition(".")
        return schema or None, table

    def require(self, names: Sequence[str]) -> list[Column]:
        """The named columns; a name the table or query does not have is an error naming it."""
        missing = [name for name in names if name not in self.columns]
        if missing:
            raise DataError(
                f"field '{self.field}' ({self.spec.data.location}): no column(s) {missing}, which the spec names;"
                f" it has {sorted(self.columns)} (names are case-sensitive)"
            )
        ts = self.columns[self.spec.data.timestamp_column]
        if ts.kind != TIME:
            raise DataError(
                f"field '{self.section}.timestamp_column': column {ts.name!r} of {self.spec.data.location} is {ts.type_name},"
                " not a date or timestamp type (rule: the window is bounded on a timestamp column)"
            )
        return [self.columns[name] for name in names]

    # -- statements ----------------------------------------------------------------------------------------------

    def _query_bounds(self, window: Window | None = None) -> dict[str, Any]:
        """The :start and :end a query binds (a probe needs some values: an empty range)."""
        if self.spec.data.query is None:
            return {}
        if window is None:
            return {
                "start": pd.Timestamp(0, tz="UTC").to_pydatetime(),
                "end": pd.Timestamp(0, tz="UTC").to_pydatetime(),
            }
        return {"start": window.start, "end": window.end}

    def _unchecked_relation(self, names: Sequence[str] = ()) -> sa.FromClause:
        identifiers = [sa.column(quoted_name(name, True)) for name in names]
        if self.spec.data.table is not None:
            schema, table = self._table_name()
            return sa.table(
                quoted_name(table, True), *identifiers, schema=None if schema is None else quoted_name(schema, True)
            )
        text = sa.text(self.spec.data.query or "").bindparams(
            sa.bindparam("start", type_=sa.DateTime(timezone=True)),
            sa.bindparam("end", type_=sa.DateTime(timezone=True)),
        )
        return text.columns(*identifiers).subquery("source")

    def relation(self) -> sa.FromClause:
        """The table or query with every column the database reports, each a quoted identifier (one object,
        so every statement built on it names the same FROM)."""
        return self._relation

    @cached_property
    def _relation(self) -> sa.FromClause:
        return self._unchecked_relation(list(self.columns))

    def window_select(self, window: Window, names: Sequence[str] | None = None, untimed: bool = False) -> sa.Select:
        """SELECT the named columns (default: all) of the rows with timestamp in [start, end): bounds bound.
        `untimed`: the rows without a timestamp too (validation counts them, as it does in files)."""
        relation = self.relation()
        selected = [relation.c[name] for name in names] if names is not None else [relation]
        select = sa.select(*selected) if names is not None else sa.select(relation)
        ts = relation.c[self.spec.data.timestamp_column]
        inside = sa.and_(
            ts >= sa.bindparam("window_start", window.start, type_=sa.DateTime(timezone=True)),
            ts < sa.bindparam("window_end", window.end, type_=sa.DateTime(timezone=True)),
        )
        select = select.where(sa.or_(inside, ts.is_(None)) if untimed else inside)
        if self.spec.data.query is not None:
            select = select.params(start=window.start, end=window.end)
        return select

    def input_columns(self, columns: Sequence[str]) -> list[str]:
        """The timestamp and `columns`, once each, checked against the database."""
        names = list(dict.fromkeys([self.spec.data.timestamp_column, *columns]))
        self.require(names)
        return names

    def ordered_select(self, window: Window, columns: Sequence[str]) -> sa.Select:
        """The window's timestamp and `columns`, ordered as a partition is: by the timestamp, then by every
        column's typed value (numbers as doubles without NaN, text by code point), nulls last, as Arrow sorts."""
        names = self.input_columns(columns)
        relation = self.relation()
        select = self.window_select(window, names)
        spec = self.spec
        keys = []
        for name in names:
            value = relation.c[name]
            if name == spec.data.timestamp_column:
                keys.append(value)
            elif name in spec.features.categorical:
                keys.append(sa.cast(value, sa.Text).collate("C"))
            elif name == spec.target and spec.task == "classification":
                keys.append(sa.cast(value, sa.BigInteger))
            else:
                keys.append(sa.func.nullif(sa.cast(value, sa.Double), sa.bindparam(f"nan_{len(keys)}", float("nan"))))
        return select.order_by(*[key.asc().nulls_last() for key in keys])

    def described_to_gx(self) -> dict[str, Any]:
        """What GX reflects the batch's column names from (its batch's SELECT is anonymous): the
        table's name; for a query, a relation GX's reflection cannot find, so that it falls back to reading
        the names off a probe that returns no row (the probe's empty range rendered as literals: GX only
        takes text there; the window's own bounds stay bind parameters in every statement that reads rows)."""
        if self.spec.data.table is not None:
            schema, table = self._table_name()
            return {"source_table_name": quoted_name(table, True), "source_schema_name": schema}
        probe = sa.select(sa.text("*")).select_from(self._unchecked_relation()).limit(0).params(**self._query_bounds())
        text = probe.compile(dialect=self.engine.dialect, compile_kwargs={"literal_binds": True})
        return {"source_table_name": quoted_name(f"({text}) AS probe", quote=False)}

    def count(self, window: Window, untimed: bool = False) -> int:
        """The window's rows, counted by the database (the whole statement runs)."""
        select = sa.select(sa.func.count()).select_from(self.window_select(window, untimed=untimed).subquery())
        with self.errors(), self.engine.connect() as connection:
            return int(connection.execute(select).scalar_one())

    def ping(self) -> None:
        """Raises a transient DataError when the database does not answer."""
        with self.errors(), self.engine.connect() as connection:
            connection.execute(sa.select(sa.literal(1)))

    # -- reading -------------------------------------------------------------------------------------------------

    def frame(self, rows: Sequence[Any], names: Sequence[str]) -> pd.DataFrame:
        """Rows the driver returned as a frame, the timestamp as UTC microseconds (as files give it)."""
        frame = pd.DataFrame.from_records(list(rows), columns=list(names))
        ts = self.spec.data.timestamp_column
        if ts in frame.columns:
            stamps = pd.to_datetime(frame[ts], utc=True)
            frame[ts] = stamps.astype("datetime64[us, UTC]")
        return frame

    def read_window(self, window: Window, columns: Sequence[str] | None = None, untimed: bool = False) -> WindowData:
        """One SELECT of the named columns (default: all) bounded by the window's bind parameters; `untimed`
        adds the rows whose timestamp is null, counted as validation counts a file's."""
        names = list(self.columns) if columns is None else self.input_columns(columns)
        with self.errors(), self.engine.connect() as connection:
            result = connection.execute(self.window_select(window, names, untimed=untimed))
            frame = self.frame(result.all(), list(result.keys()))
        untimed_rows = int(frame[self.spec.data.timestamp_column].isna().sum()) if untimed else 0
        return WindowData(
            frame=frame, files=(self.spec.data.location,), untimed_rows=untimed_rows,
            untimed_examples=(f"{self.spec.data.location}: null",) if untimed_rows else (),
        )  # fmt: skip

    def stream_window(
        self, window: Window, columns: Sequence[str], chunk_rows: int = CHUNK_ROWS
    ) -> Iterator[pd.DataFrame]:
        select = self.ordered_select(window, columns)
        with self.errors(), self.engine.connect() as connection:
            # A server-side cursor: the database holds the rows, the worker one chunk at a time.
            result = connection.execution_options(stream_results=True, max_row_buffer=chunk_rows).execute(select)
            names = list(result.keys())
            for rows in result.partitions(chunk_rows):
                yield self.frame(rows, names)

    # -- what the steps ask --------------------------------------------------------------------------------------

    def validate(self, window: Window) -> Validated:
        from retrain.sources.sql_validation import validate_in_database

        return Validated(validate_in_database(self, window), (self.spec.data.location,))

    def drift(self, reference: pd.DataFrame, window: Window) -> Drifted:
        from retrain.sources.sql_drift import drift_in_database

        return drift_in_database(self, reference, window)

    def build_partition(self, window: Window, path: Path) -> Partition:
        self.input_columns([*self.spec.features.columns, self.spec.target])
        rows = self.window_select(window, [self.spec.data.timestamp_column]).subquery()
        ts = rows.c[self.spec.data.timestamp_column]
        holdout = sa.bindparam("holdout_start", window.holdout_start, type_=sa.DateTime(timezone=True))
        counts = sa.select(sa.func.count().filter(ts < holdout), sa.func.count().filter(ts >= holdout))
        with self.errors(), self.engine.connect() as connection:
            train_rows, holdout_rows = connection.execute(counts).one()
        if not train_rows or not holdout_rows:
            raise empty_split_error(self.spec, window, train_rows, holdout_rows)
        chunks = self.stream_window(window, [*self.spec.features.columns, self.spec.target])
        return build_partition_from_ordered(chunks, self.spec, window, path)


def _kind(dbapi: Any, type_code: Any) -> str:
    """PEP 249's type objects compare equal to a description's type code: the portable way to tell kinds."""
    for kind, name in ((TIME, "DATETIME"), (NUMBER, "NUMBER"), (TEXT, "STRING")):
        type_object = getattr(dbapi, name, None)
        if type_object is not None and type_code == type_object:
            return kind
    return OTHER


def _type_name(engine: sa.Engine, type_code: Any) -> str:
    """The database's name for a description's type code (psycopg: the PostgreSQL type), for messages."""
    try:
        import psycopg

        info = psycopg.adapters.types.get(type_code)
        if info is not None:
            return info.name
    except ImportError:  # another driver: its type code is all we have
        pass
    return str(type_code)
