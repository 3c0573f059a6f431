"""The Assets a model's DAGs exchange, by name: what a promotion, an upstream data drop and the monitor emit.

Names only (the Airflow Asset objects are built in the DAG factory): the domain decides what an event
on each means for a run (retrain.options.Trigger).
"""

from __future__ import annotations


def model_asset(model: str) -> str:
    """Updated by a promotion: scoring (and any deployment) schedules on it."""
    return f"model_{model}"


def data_asset(model: str) -> str:
    """New data for the model landed: emitted by an upstream DAG's outlet, the REST API or an AssetWatcher."""
    return f"data_{model}"


def request_asset(model: str) -> str:
    """The monitor asks for retraining: live quality fell below the spec's policy."""
    return f"retrain_request_{model}"
