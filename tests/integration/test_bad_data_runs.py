"""Bad data in a real DAG run: each stops at validation with its reason in the report, and the
champion, the versions and the feature partitions stay exactly as they were."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest

from tests.support import TASKS, artifacts, copy_demo_data, run_dag, write_spec

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("airflow_db", "mlflow_server")]
NIGHT = dt.date(2025, 5, 2)


def late_rows(folder: Path) -> pd.DataFrame:
    rows = pd.read_parquet(folder / "events_2025-04.parquet").tail(300).copy()
    rows["event_time"] = pd.Timestamp("2025-05-01 12:00", tz="UTC")
    return rows


def corrupt_parquet(folder: Path) -> str:
    (folder / "late_2025-05-01.parquet").write_bytes(b"PAR1 this is not a parquet file")
    return "late_2025-05-01.parquet"


def missing_column(folder: Path) -> str:
    late_rows(folder).drop(columns=["monthly_spend"]).to_parquet(folder / "late_2025-05-01.parquet", index=False)
    return "monthly_spend"


def wrong_type(folder: Path) -> str:
    rows = late_rows(folder)
    rows["support_tickets"] = "many"
    rows.to_csv(folder / "late_2025-05-01.csv", index=False)
    return "support_tickets"


@pytest.mark.parametrize("damage", [corrupt_parquet, missing_column, wrong_type])
def test_bad_data_stops_at_validation_and_changes_nothing(spec_dir, registry, tmp_path, damage):
    data = copy_demo_data(tmp_path / "data")
    spec_path = write_spec(spec_dir, **{"data.uri": str(data)})
    name = spec_path.stem
    assert run_dag(spec_path, dt.date(2025, 5, 1))[0] == dict.fromkeys(TASKS, "success")
    features = artifacts(name) / "features"
    before = sorted(p.name for p in features.iterdir())

    named = damage(data)
    states, _ = run_dag(spec_path, NIGHT)
    assert states["validate_data"] == "failed"
    assert {states[t] for t in TASKS[1:]} == {"upstream_failed"}
    report = next((artifacts(name) / "reports" / f"end_date={NIGHT}").glob("*/validation.json"))
    assert named in report.read_text(), f"the report must name {named!r}: {json.loads(report.read_text())}"

    assert registry.aliases(name) == {"champion": "1", "previous": None}
    assert [v.version for v in registry.versions(name)] == ["1"]
    assert sorted(p.name for p in features.iterdir()) == before
