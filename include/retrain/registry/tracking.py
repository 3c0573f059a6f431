"""Logging one training run to MLflow: the other half of the registry boundary, used by the training job.

The run goes to MLflow's own tracking URI resolution (MLFLOW_TRACKING_URI, which the operator sets in
the job's environment, or the pod's Secret).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from importlib.metadata import version
from typing import Any

import pandas as pd

# What a logged pipeline needs to load and predict. Declared, not inferred: MLflow's inference loads the model
# in a subprocess to capture its imports (about 10 s a model here) and also picks up whatever else the
# process imported (pytest, psutil...). The versions are the installed ones: the pins of requirements.txt.
MODEL_DISTRIBUTIONS = ("mlflow", "scikit-learn", "numpy", "scipy", "pandas", "pyarrow", "skops")


def model_requirements() -> list[str]:
    """The pip requirements recorded with a logged model: the distributions it needs, at the installed versions."""
    return [f"{name}=={version(name)}" for name in MODEL_DISTRIBUTIONS]


def dataset_schema(frame: pd.DataFrame):
    """The MLflow schema of a frame, equal to the one `mlflow.data.from_pandas` infers, from its dtypes and one
    vectorised null check per column. MLflow visits every value in Python: 17 s CPU for 875k x 20 rows.

    Object columns, whose type only their values tell, still go through MLflow's own per-value inference.
    """
    from mlflow.types import ColSpec, DataType, Schema
    from mlflow.types.utils import _infer_pandas_column, _infer_required

    columns = []
    for name in frame.columns:
        column = frame[name]
        if column.dtype == object:
            kind, required = _infer_pandas_column(column), _infer_required(column)
        else:
            text = pd.api.types.is_string_dtype(column.dtype) and not isinstance(column.dtype, pd.CategoricalDtype)
            kind = DataType.string if text else _infer_pandas_column(column)  # from the dtype alone
            required = not bool(column.isna().any())
        columns.append(ColSpec(type=kind, name=name, required=required))
    return Schema(columns)


class RunLogger:
    """What the training job records on its MLflow run."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id

    def params(self, params: Mapping[str, Any]) -> None:
        import mlflow

        mlflow.log_params(dict(params))

    def metrics(self, metrics: Mapping[str, float]) -> None:
        import mlflow

        mlflow.log_metrics(dict(metrics))

    def document(self, data: Mapping[str, Any], artifact_file: str) -> None:
        """A JSON document as an artifact of the run (e.g. the spec, the result)."""
        import mlflow

        mlflow.log_dict(dict(data), artifact_file)

    def dataset(self, frame: pd.DataFrame, name: str, digest: str, context: str) -> None:
        """Dataset lineage: which rows (by content digest) the run used, and for what."""
        import mlflow

        dataset = mlflow.data.from_pandas(frame, name=name, digest=digest)
        # `schema` is a cached property that MLflow would compute by visiting every value in Python.
        vars(dataset)["schema"] = dataset_schema(frame)
        mlflow.log_input(dataset, context=context)

    def artifact(self, local_path: str, artifact_path: str | None = None) -> None:
        import mlflow

        mlflow.log_artifact(local_path, artifact_path=artifact_path)

    def sklearn_model(
        self, pipeline: Any, example: pd.DataFrame, predict_method: str, trusted_types: list[str], classes: Any = None
    ) -> str:
        """Logs the fitted pipeline (skops format, with its signature and an input example); returns its URI.

        For a classifier, `classes` (a `retrain.evaluation.ClassLabels`) names the probability columns in
        the signature by their labels as text, and goes into the model's metadata with their types kept
        (`classes`, `positive_label`): what a client needs to read predict_proba.
        """
        import mlflow.sklearn
        from mlflow.models import infer_signature

        output = getattr(pipeline, predict_method)(example)
        metadata = None
        if classes is not None:
            output = pd.DataFrame(output, columns=[str(label) for label in classes.classes])
            metadata = {"classes": list(classes.classes), "positive_label": classes.positive}
        info = mlflow.sklearn.log_model(
            pipeline,
            name="model",
            signature=infer_signature(example, output),
            input_example=example,
            serialization_format="skops",
            skops_trusted_types=trusted_types,
            pyfunc_predict_fn=predict_method,
            pip_requirements=model_requirements(),
            metadata=metadata,
        )
        return info.model_uri

    def register(self, model_uri: str, model_name: str, tags: Mapping[str, str]) -> str:
        """Registers the logged model as a new version of `model_name`; returns the version number."""
        import mlflow

        return str(mlflow.register_model(model_uri, model_name, tags=dict(tags)).version)


@contextlib.contextmanager
def training_run(experiment: str, run_name: str, tags: Mapping[str, str]) -> Iterator[RunLogger]:
    """An MLflow run in `experiment` (created if needed), ended when the block ends (FAILED on an exception)."""
    import mlflow

    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name=run_name, tags=dict(tags)) as run:
        yield RunLogger(run.info.run_id)
