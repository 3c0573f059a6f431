"""The MLflow model registry as this package uses it: aliases, tags, lookups. No Airflow here."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.tracking import MlflowClient

CHAMPION_ALIAS = "champion"
PREVIOUS_ALIAS = "previous"
# Every run of the training job logs a sample of its training set here: the drift reference.
REFERENCE_ARTIFACT = "reference/reference.parquet"

# Tags written on runs and model versions.
TAG_DAG_ID = "airflow.dag_id"
TAG_RUN_ID = "airflow.run_id"
TAG_TASK_ID = "airflow.task_id"
TAG_WINDOW_END = "retrain.window_end"
TAG_INPUT_HASH = "retrain.input_hash"
TAG_TRAIN_HASH = "retrain.train_hash"
TAG_HOLDOUT_HASH = "retrain.holdout_hash"
TAG_CODE_VERSION = "retrain.code_version"
TAG_PARAMS_HASH = "retrain.params_hash"
TAG_DECISION = "retrain.decision"
TAG_PASSED_EVALUATION = "retrain.passed_evaluation"


def client(tracking_uri: str | None = None) -> MlflowClient:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri)


def _is_missing(error: Exception) -> bool:
    return getattr(error, "error_code", "") in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}


def version_by_alias(mlflow_client: MlflowClient, model_name: str, alias: str) -> ModelVersion | None:
    """The version an alias points at, or None when the model or the alias does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return mlflow_client.get_model_version_by_alias(model_name, alias)
    except MlflowException as error:
        if _is_missing(error):
            return None
        raise


def get_champion(mlflow_client: MlflowClient, model_name: str) -> ModelVersion | None:
    return version_by_alias(mlflow_client, model_name, CHAMPION_ALIAS)
