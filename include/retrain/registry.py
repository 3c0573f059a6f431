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


def _alias_version(mlflow_client: MlflowClient, model_name: str, alias: str) -> str | None:
    mv = version_by_alias(mlflow_client, model_name, alias)
    return None if mv is None else str(mv.version)


def aliases(mlflow_client: MlflowClient, model_name: str) -> dict[str, str | None]:
    return {alias: _alias_version(mlflow_client, model_name, alias) for alias in (CHAMPION_ALIAS, PREVIOUS_ALIAS)}


def promote(mlflow_client: MlflowClient, model_name: str, version: str, expected_champion: str | None) -> dict:
    """Move `champion` to `version` and `previous` to the old champion, in that order.

    MLflow alias writes are last-writer-wins with no compare-and-set, so right before writing we
    check `champion` still points where it pointed at evaluation time (the promotion pool allows one
    writer at a time; this catches everything else, such as a manual change in the MLflow UI).
    A rerun after a failure between the two writes finds `champion` already moved and completes
    `previous`. Returns the aliases read back after the writes.
    """
    from retrain.errors import PromotionConflictError, RegistryError

    version = str(version)
    mv = mlflow_client.get_model_version(model_name, version)
    if mv.status != "READY":
        raise RegistryError(
            f"model {model_name} version {version} has status {mv.status}; only READY versions are promoted"
        )
    current = _alias_version(mlflow_client, model_name, CHAMPION_ALIAS)
    if current == version and expected_champion != version:
        pass  # an earlier attempt moved champion and stopped before previous: complete it below
    elif current != expected_champion:
        raise PromotionConflictError(
            f"model {model_name}: alias '{CHAMPION_ALIAS}' points to version {current} but evaluation compared"
            f" against version {expected_champion}; another run or a person moved it. Nothing was changed;"
            " rerun the DAG to evaluate against the new champion."
        )
    else:
        mlflow_client.set_registered_model_alias(model_name, CHAMPION_ALIAS, version)
    if expected_champion is not None and expected_champion != version:
        mlflow_client.set_registered_model_alias(model_name, PREVIOUS_ALIAS, expected_champion)
    after = aliases(mlflow_client, model_name)
    if after[CHAMPION_ALIAS] != version or (
        expected_champion is not None and after[PREVIOUS_ALIAS] != expected_champion
    ):
        raise RegistryError(f"model {model_name}: aliases read back as {after} after promoting version {version}")
    return after


def rollback(mlflow_client: MlflowClient, model_name: str, target_version: str | None, reason: str, actor: str) -> dict:
    """Point `champion` back at `previous` (or at target_version) and `previous` at the replaced champion.

    Refuses a version that never passed evaluation: rollback restores a vetted model, nothing else.
    """
    import datetime as dt

    from retrain.errors import RollbackRefusedError

    current = _alias_version(mlflow_client, model_name, CHAMPION_ALIAS)
    target = str(target_version) if target_version else _alias_version(mlflow_client, model_name, PREVIOUS_ALIAS)
    if target is None:
        raise RollbackRefusedError(
            f"model {model_name}: no target version given and no '{PREVIOUS_ALIAS}' alias to roll back to"
        )
    if target == current:
        raise RollbackRefusedError(f"model {model_name}: version {target} is already '{CHAMPION_ALIAS}'")
    mv = mlflow_client.get_model_version(model_name, target)
    if (mv.tags or {}).get(TAG_PASSED_EVALUATION) != "true":
        raise RollbackRefusedError(
            f"model {model_name} version {target} never passed evaluation (tag {TAG_PASSED_EVALUATION} is not 'true');"
            " rollback only restores versions that were promoted by policy"
        )
    if mv.status != "READY":
        raise RollbackRefusedError(f"model {model_name} version {target} has status {mv.status}")
    mlflow_client.set_registered_model_alias(model_name, CHAMPION_ALIAS, target)
    if current is not None:
        mlflow_client.set_registered_model_alias(model_name, PREVIOUS_ALIAS, current)
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    mlflow_client.set_model_version_tag(model_name, target, "retrain.rolled_back_to_at", stamp)
    mlflow_client.set_model_version_tag(model_name, target, "retrain.rollback_reason", reason)
    mlflow_client.set_model_version_tag(model_name, target, "retrain.rollback_by", actor)
    if current is not None:
        mlflow_client.set_model_version_tag(model_name, current, "retrain.rolled_back_from_at", stamp)
    return {"from": current, "to": target, **aliases(mlflow_client, model_name)}
