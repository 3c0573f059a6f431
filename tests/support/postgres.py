"""A real PostgreSQL server for tests, created, started and stopped by scripts/postgres.sh (the one place
that knows how), under a temporary folder on a free loopback port. Importing this module imports no Airflow."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.support import REPO, free_port

SCRIPT = REPO / "scripts" / "postgres.sh"
DATABASE = "warehouse"


class PostgresServer:
    """One cluster with a login role (its password in `pgpass`, never on a command line) and one database."""

    def __init__(self, root: Path | None = None, database: str = DATABASE) -> None:
        # mkdtemp is 0700: the server's user (postgres, when the tests run as root) must pass through it.
        self.root = root or Path(tempfile.mkdtemp(prefix="retrain-pg-"))
        self.root.chmod(0o711)
        self.dir = self.root / "pg"
        self.database = database
        self.port: int | None = None

    def _run(self, *args: str) -> str:
        result = subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=180)
        if result.returncode != 0:
            raise RuntimeError(f"scripts/postgres.sh {args[0]} failed: {result.stderr.strip()}")
        return result.stdout.strip()

    def start(self) -> PostgresServer:
        self._run("init", str(self.dir), self.database)
        self.port = int(self._run("start", str(self.dir), str(free_port())))
        return self

    def stop(self) -> None:
        self._run("stop", str(self.dir))

    def remove(self) -> None:
        """Stop the server and delete the cluster."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    @property
    def role(self) -> str:
        return self._pgpass()[3]

    @property
    def password(self) -> str:
        return self._pgpass()[4]

    def _pgpass(self) -> list[str]:
        return (self.dir / "pgpass").read_text().strip().split(":", 4)

    def url(self, driver: str = "postgresql+psycopg") -> str:
        """The SQLAlchemy URL of the database, password included (for tests only)."""
        return f"{driver}://{self.role}:{self.password}@127.0.0.1:{self.port}/{self.database}"

    def airflow_connection(self) -> str:
        """The value of an AIRFLOW_CONN_<ID> variable for the database (Airflow's URI form)."""
        return f"postgres://{self.role}:{self.password}@127.0.0.1:{self.port}/{self.database}"

    def engine(self):
        """A SQLAlchemy engine on the database (a test's own, for loading and damaging tables)."""
        import sqlalchemy as sa

        return sa.create_engine(self.url())


def load_frame(engine, table: str, frame, schema: str = "public", types: dict[str, str] | None = None) -> None:
    """Replace `schema.table` with the frame's rows through COPY (fast, server-side parsing).

    types overrides a column's SQL type (e.g. {"support_tickets": "text"}); the rest follows the dtype.
    """
    import pandas as pd
    from sqlalchemy import text

    def sql_type(column: str) -> str:
        if types and column in types:
            return types[column]
        dtype = frame[column].dtype
        if isinstance(dtype, pd.DatetimeTZDtype):
            return "timestamptz"
        if pd.api.types.is_datetime64_dtype(dtype):
            return "timestamp"
        if pd.api.types.is_integer_dtype(dtype):
            return "bigint"
        if pd.api.types.is_float_dtype(dtype):
            return "double precision"
        return "text"

    columns = ", ".join(f'"{c}" {sql_type(c)}' for c in frame.columns)
    with engine.begin() as connection:
        connection.execute(text(f'DROP TABLE IF EXISTS "{schema}"."{table}"'))
        connection.execute(text(f'CREATE TABLE "{schema}"."{table}" ({columns})'))
        with connection.connection.cursor() as cursor:  # the driver's own COPY
            with cursor.copy(f'COPY "{schema}"."{table}" FROM STDIN') as copy:
                for row in frame.itertuples(index=False):
                    copy.write_row([None if _missing(v) else v for v in row])


def _missing(value) -> bool:
    import pandas as pd

    return not isinstance(value, (list, tuple)) and bool(pd.isna(value))


def environ_with_connection(conn_id: str, server: PostgresServer) -> dict[str, str]:
    """os.environ plus the Airflow connection `conn_id` to the server, as Airflow reads it."""
    return {**os.environ, f"AIRFLOW_CONN_{conn_id.upper()}": server.airflow_connection()}
