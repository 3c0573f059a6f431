"""OpenLineage through Airflow's OpenLineage provider: each retraining task reports what it read and wrote.

The provider calls `get_openlineage_facets_on_complete(task_instance)` after `execute` (and on failure): the
operator has kept the run and the outputs it saw, `retrain.lineage` says which datasets they are, and this
module turns them into the provider's `OperatorLineage`. OpenLineage is imported only here, inside the
methods: parsing a DAG file never pays for it. Off unless a transport is configured (README, "Lineage").
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from retrain.contracts import StepOutput
    from retrain.lineage import DatasetRef, StepLineage
    from retrain.options import Run
    from retrain.pipeline import Step
    from retrain.spec import ModelSpec

RUN_FACET = "retrain"
MODEL_VERSION_FACET = "retrain_model_version"


@functools.cache
def _facet_types() -> tuple[type, type]:
    import attr
    from openlineage.client.facet_v2 import DatasetFacet, RunFacet

    @attr.define
    class RetrainRunFacet(RunFacet):
        """The model, the model version and the input hash the task worked on."""

        model: str
        model_version: str | None = None
        input_hash: str | None = None

    @attr.define
    class ModelVersionFacet(DatasetFacet):
        """A dataset that is a registered model version: which one, trained on which inputs, in which run."""

        model: str
        version: str
        input_hash: str | None = None
        mlflow_run_id: str | None = None

    return RetrainRunFacet, ModelVersionFacet


def _dataset(ref: DatasetRef) -> Any:
    from openlineage.client.event_v2 import Dataset
    from openlineage.client.facet_v2 import schema_dataset

    facets: dict[str, Any] = {}
    if ref.fields:
        facets["schema"] = schema_dataset.SchemaDatasetFacet(
            fields=[schema_dataset.SchemaDatasetFacetFields(name=n, type=t) for n, t in ref.fields.items()]
        )
    if ref.model_version:
        facets[MODEL_VERSION_FACET] = _facet_types()[1](**ref.model_version)
    return Dataset(namespace=ref.namespace, name=ref.name, facets=facets)


def operator_lineage(lineage: StepLineage) -> Any:
    """The provider's OperatorLineage for a task's datasets and its run facet."""
    from airflow.providers.openlineage.extractors import OperatorLineage

    run_facet = _facet_types()[0](
        model=lineage.model, model_version=lineage.model_version, input_hash=lineage.input_hash
    )
    return OperatorLineage(
        inputs=[_dataset(ref) for ref in lineage.inputs],
        outputs=[_dataset(ref) for ref in lineage.outputs],
        run_facets={RUN_FACET: run_facet},
    )


class ReportsLineage:
    """Mixed into the retraining operators: keeps what the task saw and reports it when the task ends.

    The operator calls `keep_lineage(run, outputs)` in `execute`; the provider then calls
    `get_openlineage_facets_on_complete` (or `..._on_failure`, which falls back to it).
    """

    spec: ModelSpec
    step: Step
    _lineage_run: Run | None = None
    _lineage_outputs: Mapping[type[StepOutput], StepOutput | None] = {}

    def keep_lineage(self, run: Run, outputs: Mapping[type[StepOutput], StepOutput | None]) -> None:
        """Remembers the run (its window) and the outputs the task read or produced, for the lineage events."""
        self._lineage_run = run
        self._lineage_outputs = {**self._lineage_outputs, **outputs}

    def keep_result(self, result: Mapping[str, Any] | None) -> None:
        """Remembers the task's own output (its XCom value)."""
        if result is not None:
            self._lineage_outputs = {**self._lineage_outputs, self.step.output: self.step.output.from_xcom(result)}

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Inputs (the data source, the rows to score, the labels, the feature partition, the predictions, the model
        version read) and outputs (the partition or predictions written, the output table, the model version
        registered), with the model version and the input hash as facets."""
        if self._lineage_run is None:
            return None  # the task failed before it knew its run: nothing to report
        from retrain.lineage import connection_ids, step_lineage
        from retrain_operators.hooks import MlflowHook

        tracking_uri = MlflowHook().environment().get("MLFLOW_TRACKING_URI")
        # Only the connections of the datasets this step names: each lookup may be a round trip.
        names = [*self.step.reads, *self.step.writes]
        databases = {conn_id: database_namespace(conn_id) for conn_id in connection_ids(self.spec, names)}
        found = step_lineage(
            self.spec, self.step, self._lineage_run.window, self._lineage_outputs, tracking_uri, databases
        )
        return operator_lineage(found)


def database_namespace(conn_id: str | None) -> str | None:
    """`<type>://<host>:<port>/<db>` of a SQL source's Airflow connection (never its login or password);
    None for files or a connection that cannot be read here."""
    if conn_id is None:
        return None
    from airflow.sdk import BaseHook

    try:
        connection = BaseHook.get_connection(conn_id)
    except Exception:  # noqa: BLE001 - lineage must never fail a task; the connection id names it then
        return None
    port = f":{connection.port}" if connection.port else ""
    return f"{connection.conn_type}://{connection.host or ''}{port}/{connection.schema or ''}"
