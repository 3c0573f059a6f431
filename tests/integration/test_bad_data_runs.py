"""Bad data in a real DAG run: each stops at validation with its reason in the report, and the
champion, the versions and the feature partitions stay exactly as they were.

One model is trained on the first night; each case damages its data folder, runs the second night,
and the folder is restored from a pristine copy afterwards (a failed validation changes nothing else).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.support import TASKS, artifacts, copy_demo_data, run_dag, write_spec

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("airflow_db", "mlflow_server")]
NIGHT = dt.date(2025, 5, 2)


def late_rows(folder: Path, rows: int = 300) -> pd.DataFrame:
    late = pd.read_parquet(folder / "events_2025-04.parquet").tail(rows).copy()
    late["event_time"] = pd.Timestamp("2025-05-01 12:00", tz="UTC")
    return late


def corrupt_parquet(folder: Path) -> tuple[str, ...]:
    (folder / "late_2025-05-01.parquet").write_bytes(b"PAR1 this is not a parquet file")
    return ("late_2025-05-01.parquet",)


def missing_column(folder: Path) -> tuple[str, ...]:
    late_rows(folder).drop(columns=["monthly_spend"]).to_parquet(folder / "late_2025-05-01.parquet", index=False)
    return ("monthly_spend",)


def wrong_type(folder: Path) -> tuple[str, ...]:
    rows = late_rows(folder)
    rows["support_tickets"] = "many"
    rows.to_csv(folder / "late_2025-05-01.csv", index=False)
    return ("support_tickets",)


def infinite_values(folder: Path) -> tuple[str, ...]:
    rows = late_rows(folder)
    rows.loc[rows.index[:3], "monthly_spend"] = np.inf  # no range of the user's covers monthly_spend
    rows.to_parquet(folder / "late_2025-05-01.parquet", index=False)
    return (
        "expect_column_values_to_be_finite",
        "monthly_spend",
        "numeric features must be finite",
        '"infinite_values": 3',
    )


def all_null_feature(folder: Path) -> tuple[str, ...]:
    for path in folder.glob("*.parquet"):  # an export that stopped filling a column
        pd.read_parquet(path).assign(sessions_last_week=np.nan).to_parquet(path, index=False)
    return ("sessions_last_week", "a feature must not be entirely null")


def duplicated_file(folder: Path) -> tuple[str, ...]:
    shutil.copy(folder / "events_2025-04.parquet", folder / "events_2025-04 (copy).parquet")
    return ("expect_compound_columns_to_not_repeat", "validation.max_duplicate_fraction 0.01")


def null_timestamps(folder: Path) -> tuple[str, ...]:
    """600 late rows, 150 of them without a usable timestamp: they used to be dropped before validation."""
    rows = late_rows(folder, 600).astype({"event_time": str})
    rows.loc[rows.index[:100], "event_time"] = "not a time"
    rows.loc[rows.index[100:150], "event_time"] = None
    rows.to_csv(folder / "late_2025-05-01.csv", index=False)
    return (
        "event_time",
        "late_2025-05-01.csv: 'not a time'",
        "validation.timestamp_null_tolerance",
        '"unexpected_count": 150',
    )


@dataclass(frozen=True)
class Trained:
    spec_path: Path
    data: Path
    pristine: Path

    @property
    def name(self) -> str:
        return self.spec_path.stem


@pytest.fixture(scope="module")
def trained(airflow_db, mlflow_server, tmp_path_factory) -> Trained:
    root = tmp_path_factory.mktemp("bad-data")
    specs = root / "specs"
    specs.mkdir()
    data = copy_demo_data(root / "data")
    spec_path = write_spec(specs, **{"data.uri": str(data)})
    assert run_dag(spec_path, dt.date(2025, 5, 1))[0] == dict.fromkeys(TASKS, "success")
    return Trained(spec_path, data, copy_demo_data(root / "pristine"))


@pytest.fixture
def model(trained):
    yield trained
    shutil.rmtree(trained.data)
    shutil.copytree(trained.pristine, trained.data)


@pytest.mark.parametrize(
    "damage",
    [corrupt_parquet, missing_column, wrong_type, infinite_values, all_null_feature, duplicated_file, null_timestamps],
)
def test_bad_data_stops_at_validation_and_changes_nothing(model, registry, damage):
    name = model.name
    features = artifacts(name) / "features"
    before = sorted(p.name for p in features.iterdir())
    reports = artifacts(name) / "reports" / f"end_date={NIGHT}"
    shutil.rmtree(reports, ignore_errors=True)  # an earlier case's report of the same night

    named = damage(model.data)
    states, _ = run_dag(model.spec_path, NIGHT)
    assert states["validate_data"] == "failed"
    assert {states[t] for t in TASKS[1:]} == {"upstream_failed"}
    report = next(reports.glob("*/validation.json")).read_text()
    for text in named:
        assert text in report, f"the report must name {text!r}: {json.loads(report)}"

    assert registry.aliases(name) == {"champion": "1", "previous": None}
    assert [v.version for v in registry.versions(name)] == ["1"]
    assert sorted(p.name for p in features.iterdir()) == before
