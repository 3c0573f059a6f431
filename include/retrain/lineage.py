"""What each retraining task read and wrote, as datasets: the data source, the feature partition, the model version.

Plain values (no OpenLineage import): the Airflow side (plugins/retrain_operators/lineage.py) turns them into
the OpenLineage provider's datasets and facets. Dataset names follow OpenLineage's naming: a local file is
namespace `file` and its absolute path; `scheme://authority/path` is namespace `scheme://authority` and
the path; a database table is namespace `<type>://<host>:<port>/<db>` and the table (a query: its digest);
a model version is namespace the MLflow tracking URI and name `<model>/<version>`. Credentials, URL
queries and fragments never reach a name (retrain.settings.redact_uri).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from retrain.contracts import ChampionResult, EvaluationResult, FeaturesResult, StepOutput, TrainingResult
from retrain.pipeline import Step
from retrain.settings import features_dir, predictions_dir, redact_uri, resolve_data_uri
from retrain.spec import DataSpec, ModelSpec, OutputSpec, RowsSpec
from retrain.window import Window


@dataclass(frozen=True)
class DatasetRef:
    """One dataset: OpenLineage namespace and name; `model_version` when it is a registered model version;
    `fields` ({column: type}) when its schema is known."""

    namespace: str
    name: str
    model_version: Mapping[str, Any] | None = None
    fields: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StepLineage:
    """A task's inputs and outputs, and the model version and input hash it worked on (its run facet)."""

    inputs: tuple[DatasetRef, ...]
    outputs: tuple[DatasetRef, ...]
    model: str
    model_version: str | None = None
    input_hash: str | None = None


def location(uri: str) -> tuple[str, str]:
    """(namespace, name) of a file or URI, without credentials."""
    uri = redact_uri(uri)
    parts = urlsplit(uri)
    if parts.scheme and parts.netloc:
        return f"{parts.scheme}://{parts.netloc}", parts.path.lstrip("/") or "/"
    if parts.scheme == "file":
        return "file", parts.path
    return "file", uri


def source_dataset(where: DataSpec | RowsSpec, database: str | None = None) -> DatasetRef:
    """A place rows are read from (the spec's `data`, `scoring.input` or `monitoring.labels`) as a dataset: its
    files, or its table (or query, by digest) in the database `database` (`<type>://<host>:<port>/<db>` from the
    Airflow connection; the connection id when unknown)."""
    if where.uri is not None:
        return DatasetRef(*location(resolve_data_uri(where.uri)))
    if where.table is not None:
        return DatasetRef(_database(where.conn_id, database), where.table)
    return DatasetRef(
        _database(where.conn_id, database), "query/" + hashlib.sha256((where.query or "").encode()).hexdigest()[:16]
    )


def _database(conn_id: str, namespace: str | None) -> str:
    return redact_uri(namespace) if namespace else f"airflow-connection://{conn_id}"


def _places(spec: ModelSpec) -> dict[str, DataSpec | RowsSpec | OutputSpec | None]:
    """The spec's places by the names `Step.reads` and `Step.writes` use (None: not configured)."""
    scoring, monitoring = spec.scoring, spec.monitoring
    return {
        "data": spec.data,
        "scoring.input": scoring.input if scoring else None,
        "monitoring.labels": monitoring.labels if monitoring else None,
        "scoring.output": scoring.output if scoring else None,
    }


def spec_datasets(spec: ModelSpec, names: Iterable[str], databases: Mapping[str, str | None]) -> list[DatasetRef]:
    """The datasets a step names in `Step.reads` or `Step.writes` (one the spec does not configure is left out);
    `databases` maps a connection id to its database's namespace."""
    places = _places(spec)
    found = []
    for name in names:
        where = places.get(name)
        if name == "predictions":
            found.append(DatasetRef(*location(str(predictions_dir(spec.name)))))
        elif isinstance(where, OutputSpec):
            found.append(DatasetRef(_database(where.conn_id, databases.get(where.conn_id)), where.table))
        elif where is not None:
            found.append(source_dataset(where, databases.get(where.conn_id or "")))
    return found


def connection_ids(spec: ModelSpec, names: Iterable[str] | None = None) -> set[str]:
    """The Airflow connections of the spec's places named (default: all of them)."""
    places = _places(spec)
    chosen = [places.get(name) for name in names] if names is not None else list(places.values())
    return {place.conn_id for place in chosen if place is not None and place.conn_id}


def step_lineage(
    spec: ModelSpec,
    step: Step,
    window: Window,
    outputs: Mapping[type[StepOutput], StepOutput | None],
    tracking_uri: str | None,
    databases: Mapping[str, str | None] | None = None,
) -> StepLineage:
    """The lineage of one step from the outputs it read and produced (`outputs` maps an output type to the
    value: the step's own result and its upstream inputs) and the datasets it names (`Step.reads`, `writes`);
    `databases` maps a connection id to its database's namespace (source_dataset)."""
    partition = DatasetRef(*location(str(features_dir(spec.name, window))), fields=_schema(spec))
    trained = outputs.get(TrainingResult)
    evaluated = outputs.get(EvaluationResult)
    features = outputs.get(FeaturesResult)
    champion = outputs.get(ChampionResult)
    version = (
        getattr(trained, "model_version", None)
        or getattr(evaluated, "version", None)
        or getattr(champion, "version", None)
    )
    input_hash = getattr(trained, "input_hash", None) or getattr(features, "input_hash", None)
    model_version = None
    if version:
        model_version = DatasetRef(
            namespace=redact_uri(tracking_uri or "mlflow"),
            name=f"{spec.name}/{version}",
            model_version={
                "model": spec.name,
                "version": str(version),
                "input_hash": input_hash,
                "mlflow_run_id": getattr(trained, "run_id", None)
                or getattr(evaluated, "mlflow_run_id", None)
                or getattr(champion, "mlflow_run_id", None),
            },
        )
    inputs = spec_datasets(spec, step.reads, databases or {})
    produced = spec_datasets(spec, step.writes, databases or {})
    if step.kind == "train" or FeaturesResult in step.needs:
        inputs.append(partition)
    if step.output is FeaturesResult:
        produced.append(partition)
    if model_version is not None:
        (produced if step.output is TrainingResult else inputs).append(model_version)
    return StepLineage(tuple(inputs), tuple(produced), spec.name, version and str(version), input_hash)


def _schema(spec: ModelSpec) -> dict[str, str]:
    columns = {name: "double" for name in spec.features.numeric}
    columns.update({name: "string" for name in spec.features.categorical})
    columns[spec.target] = "double" if spec.task == "regression" else "label"
    return columns
