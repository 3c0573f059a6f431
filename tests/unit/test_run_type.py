"""How a task reads its run's type: the Task SDK hands it an enum whose str() is not the type's name."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from airflow.sdk.api.datamodels._generated import DagRunType

from retrain.options import trigger_of
from retrain_operators.base import run_type_of


@pytest.mark.parametrize(
    ("run_type", "expected"),
    [(DagRunType.ASSET_TRIGGERED, "asset_triggered"), (DagRunType.SCHEDULED, "scheduled"),
     (DagRunType.BACKFILL, "backfill"), ("manual", "manual"), (None, "manual")],
)  # fmt: skip
def test_the_run_type_is_read_as_airflow_spells_it(run_type, expected):
    """The SDK's DagRunType is a (str, Enum): str() of it is 'DagRunType.ASSET_TRIGGERED', which made every
    scheduled and asset-triggered run look manual to `trigger_of`."""
    assert str(DagRunType.ASSET_TRIGGERED) == "DagRunType.ASSET_TRIGGERED"
    assert run_type_of(SimpleNamespace(run_type=run_type)) == expected


def test_a_scheduled_run_seen_through_the_sdk_enum_is_a_schedule_trigger():
    assert trigger_of("churn", run_type_of(SimpleNamespace(run_type=DagRunType.SCHEDULED))).kind == "schedule"
