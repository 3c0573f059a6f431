"""The model registry, behind one boundary: MLflow is imported here and in `tracking`, nowhere else.

`Registry` reads and writes the registry (versions, aliases, tags), downloads and uploads
artifacts and loads models; it returns plain values (`ModelVersion`), never MLflow objects, so
that operators and domain code do not depend on MLflow's client (tests/unit/test_boundaries.py).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrain import history
from retrain.credentials import redact
from retrain.errors import PromotionConflictError, RegistryError, RollbackRefusedError
from retrain.tags import Decision, Tag

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.tracking import MlflowClient

    from retrain.registry.monitoring import DayPoint, LiveSeries

CHAMPION_ALIAS = "champion"
PREVIOUS_ALIAS = "previous"
# Every run of the training job logs a sample of its training set here: the drift reference.
REFERENCE_ARTIFACT = "reference/reference.parquet"
# MLflow refuses longer tag values.
TAG_VALUE_LIMIT = 5000
# search_registered_models returns at most this many models per page (MLflow's own ceiling).
MODELS_PER_PAGE = 1000
# Names per search: every name is spelled in the filter, which travels in a URL.
NAMES_PER_SEARCH = 200
# Reports and model cards are pages for a browser; nothing larger is served through the UI.
ARTIFACT_SIZE_LIMIT = 50 * 1024 * 1024
# A model version's description is a 5000-character column in MLflow's store.
DESCRIPTION_LIMIT = 5000
# Decisions a rollback never restores: a person declined the version, or has not answered yet.
NOT_RESTORABLE = (Decision.DECLINED_BY_REVIEWER, Decision.AWAITING_REVIEW)


@dataclass(frozen=True)
class ModelVersion:
    """One registered model version, as plain values."""

    model: str
    version: str
    run_id: str | None
    status: str
    tags: Mapping[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    created_at: dt.datetime | None = None
    description: str = ""

    @property
    def number(self) -> int:
        return int(self.version)


@dataclass(frozen=True)
class RegisteredModelSummary:
    """A registered model at a glance: where its aliases point, its own tags and its newest version."""

    name: str
    aliases: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    latest: ModelVersion | None = None


class ArtifactNotFound(RegistryError):
    """The run has no artifact by that name (or the name is not a plain file name)."""

    retryable = False


def is_plain_file_name(name: str) -> bool:
    """True for a name that can only mean a file in the folder it is looked up in: no separator, no `..`,
    not absolute, no control character, not empty. Checked before any name reaches the artifact store."""
    return (
        0 < len(name) <= 255
        and name not in {".", ".."}
        and not any(ch in name for ch in "/\\:")
        and all(ch.isprintable() for ch in name)
    )


@dataclass(frozen=True)
class TrackedRun:
    """An MLflow run, as plain values: its experiment, parameters and tags."""

    run_id: str
    experiment_id: str
    params: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)


def _plain(mv: Any) -> ModelVersion:
    created = getattr(mv, "creation_timestamp", None)
    return ModelVersion(
        model=mv.name,
        version=str(mv.version),
        run_id=mv.run_id,
        status=str(mv.status),
        tags=dict(mv.tags or {}),
        aliases=tuple(getattr(mv, "aliases", None) or ()),
        created_at=None if not created else dt.datetime.fromtimestamp(created / 1000, tz=dt.UTC),
        description=mv.description or "",
    )


def _quoted(value: str) -> str | None:
    """A literal for MLflow's search filter (which has no escapes), or None when none can hold it."""
    for quote in ("'", '"'):
        if quote not in value:
            return f"{quote}{value}{quote}"
    return None


def _is_missing(error: Exception) -> bool:
    return getattr(error, "error_code", "") in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}


def _refuse_moved(model: str, current: str | None, expected: str | None) -> None:
    if current != expected:
        raise PromotionConflictError(
            f"model {model}: alias '{CHAMPION_ALIAS}' points to version {current} but evaluation compared"
            f" against version {expected}; another run or a person moved it. Nothing was changed;"
            " rerun the DAG to evaluate against the new champion."
        )


@contextlib.contextmanager
def _model_loading_allowed() -> Iterator[None]:
    """MLflow asks for an explicit opt-in before it deserializes a model (skops included). We load only
    models our own training job wrote to our own registry: allow it for this load, not for the process."""
    previous = os.environ.get("MLFLOW_ALLOW_PICKLE_DESERIALIZATION")
    os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] = "true"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", None)
        else:
            os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] = previous


class Registry:
    """The MLflow tracking server and model registry at `tracking_uri` (default: MLflow's own resolution,
    i.e. MLFLOW_TRACKING_URI). `client` lets a caller hand in a ready MlflowClient (tests inject faults)."""

    def __init__(self, tracking_uri: str | None = None, *, client: MlflowClient | None = None) -> None:
        if client is None:
            from mlflow.tracking import MlflowClient

            client = MlflowClient(tracking_uri=tracking_uri)
        self._client = client
        self.tracking_uri = tracking_uri

    # Reads

    def version(self, model: str, version: str) -> ModelVersion:
        return _plain(self._client.get_model_version(model, str(version)))

    def find_version(self, model: str, version: str) -> ModelVersion | None:
        """The version, or None when the model or the version does not exist."""
        from mlflow.exceptions import MlflowException

        try:
            return self.version(model, version)
        except MlflowException as error:
            if _is_missing(error):
                return None
            raise

    def by_alias(self, model: str, alias: str) -> ModelVersion | None:
        """The version an alias points at, or None when the model or the alias does not exist."""
        from mlflow.exceptions import MlflowException

        try:
            return _plain(self._client.get_model_version_by_alias(model, alias))
        except MlflowException as error:
            if _is_missing(error):
                return None
            raise

    def champion(self, model: str) -> ModelVersion | None:
        return self.by_alias(model, CHAMPION_ALIAS)

    def _alias_version(self, model: str, alias: str) -> str | None:
        found = self.by_alias(model, alias)
        return None if found is None else found.version

    def aliases(self, model: str) -> dict[str, str | None]:
        """{"champion": version or None, "previous": version or None}."""
        return {alias: self._alias_version(model, alias) for alias in (CHAMPION_ALIAS, PREVIOUS_ALIAS)}

    def versions(self, model: str, tags: Mapping[str, str] | None = None) -> list[ModelVersion]:
        """Versions of `model` whose tags equal `tags`, oldest first, filtered by the server."""
        clauses = [f"name = {_quoted(model)}"]
        unquotable = {}
        for key, value in (tags or {}).items():
            literal = _quoted(str(value))
            if literal is None:
                unquotable[key] = str(value)
            else:
                clauses.append(f"tags.`{key}` = {literal}")
        found = [_plain(mv) for mv in self._client.search_model_versions(" and ".join(clauses))]
        found = [v for v in found if all(v.tags.get(k) == val for k, val in unquotable.items())]
        return sorted(found, key=lambda v: v.number)

    def run_metrics(self, run_id: str) -> dict[str, float]:
        return dict(self._client.get_run(run_id).data.metrics)

    def summaries(self, models: Iterable[str]) -> dict[str, RegisteredModelSummary]:
        """Aliases, tags and newest version of each named model that exists, in one search per 200 names
        (not one round trip per model). Names no search filter can quote are skipped."""
        literals = sorted({literal for name in models if (literal := _quoted(name))})
        found: dict[str, RegisteredModelSummary] = {}
        for start in range(0, len(literals), NAMES_PER_SEARCH):
            query = f"name IN ({', '.join(literals[start : start + NAMES_PER_SEARCH])})"
            token = None
            while True:
                page = self._client.search_registered_models(
                    filter_string=query, max_results=MODELS_PER_PAGE, page_token=token
                )
                for model in page:
                    latest = max(model.latest_versions or [], key=lambda mv: int(mv.version), default=None)
                    found[model.name] = RegisteredModelSummary(
                        name=model.name,
                        aliases={alias: str(version) for alias, version in (model.aliases or {}).items()},
                        tags=dict(model.tags or {}),
                        latest=None if latest is None else _plain(latest),
                    )
                token = page.token
                if not token:
                    break
        return found

    def artifact_names(self, run_id: str, folder: str) -> list[str]:
        """Names of the files directly under `folder` of the run's artifacts (empty when there is none)."""
        prefix = folder.strip("/") + "/"
        return sorted(
            info.path[len(prefix) :]
            for info in self._client.list_artifacts(run_id, folder)
            if not info.is_dir and info.path.startswith(prefix)
        )

    def read_artifact(self, run_id: str, folder: str, name: str) -> bytes:
        """The bytes of `folder/name` in the run's artifacts. The name must be a plain file name listed
        under that folder of this run: nothing else reaches the artifact store (ArtifactNotFound)."""
        import mlflow.artifacts

        if not is_plain_file_name(name) or name not in self.artifact_names(run_id, folder):
            raise ArtifactNotFound(f"run {run_id} has no artifact {folder}/{name}")
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(
                mlflow.artifacts.download_artifacts(
                    run_id=run_id, artifact_path=f"{folder}/{name}", dst_path=tmp, tracking_uri=self.tracking_uri
                )
            )
            if local.stat().st_size > ARTIFACT_SIZE_LIMIT:
                raise ArtifactNotFound(f"artifact {folder}/{name} of run {run_id} is larger than the page limit")
            return local.read_bytes()
    def live_metric_series(self, model: str) -> LiveSeries | None:
        """The model's live metric per day from its latest monitoring run, as plain values (None before the
        first run): what a sparkline draws. Where it lives: retrain.registry.monitoring."""
        from retrain.registry.monitoring import latest_live_series

        return latest_live_series(self._client, model)

    def log_monitoring(self, model: str, run_name: str, tags: Mapping[str, str], points: Iterable[DayPoint]) -> str:
        """Logs one monitoring run (every day's figures, step = day) in experiment monitor/<model>; returns its id.
        The live metric's last days also go on the registered model (Tag.LIVE_SERIES), where the fleet page's
        one search of all models finds them."""
        from retrain.registry.monitoring import live_series_tag, log_day_points

        points = list(points)
        run_id = log_day_points(self._client, model, run_name, tags, points)
        metric = tags.get(Tag.LIVE_METRIC)
        if metric:
            self._client.set_registered_model_tag(model, Tag.LIVE_SERIES, live_series_tag(metric, points))
        return run_id

    def run(self, run_id: str) -> TrackedRun:
        """The run's experiment, parameters and tags."""
        found = self._client.get_run(run_id)
        return TrackedRun(run_id, str(found.info.experiment_id), dict(found.data.params), dict(found.data.tags))

    def champion_history(self, model: str) -> list[history.ChampionMove]:
        """Every move of `champion` (promotion, forced promotion, rollback), oldest first; [] for an unknown
        model. Entries whose alias write never happened are left out (retrain.history.settle)."""
        from mlflow.exceptions import MlflowException

        try:
            registered = self._client.get_registered_model(model)
        except MlflowException as error:
            if _is_missing(error):
                return []
            raise
        entries = history.entries_from_tags(dict(registered.tags or {}))
        return history.settle(entries, (registered.aliases or {}).get(CHAMPION_ALIAS))

    # Writes

    def set_tags(self, model: str, version: str, tags: Mapping[str, Any]) -> None:
        """Sets each tag on the version (values as text, cut to MLflow's limit)."""
        for key, value in tags.items():
            self._client.set_model_version_tag(model, str(version), str(key), str(value)[:TAG_VALUE_LIMIT])

    def wait_ready(self, model: str, version: str, timeout_s: float = 300.0) -> ModelVersion:
        import time

        deadline = time.monotonic() + timeout_s
        while True:
            found = self.version(model, version)
            if found.status == "READY":
                return found
            if found.status == "FAILED_REGISTRATION" or time.monotonic() > deadline:
                raise RegistryError(f"model {model} version {version} did not become READY (status {found.status})")
            time.sleep(0.5)

    def promote(
        self,
        model: str,
        version: str,
        expected_champion: str | None,
        *,
        kind: str = "promotion",
        reason: str = "",
        by: str = "",
        run_id: str | None = None,
    ) -> dict[str, str | None]:
        """Move `champion` to `version` and `previous` to the old champion, in that order; returns the aliases.

        MLflow alias writes are last-writer-wins with no compare-and-set, so right before writing we
        check `champion` still points where it pointed at evaluation time (the promotion pool allows one
        writer at a time; this catches everything else, such as a manual change in the MLflow UI).
        The move is written to the champion history first (kind, reason, by, run_id): if that entry
        cannot be written, no alias moves. A rerun after a failure between the writes finds `champion`
        already moved and completes `previous` and the history entry.
        """
        version = str(version)
        found = self.version(model, version)
        if found.status != "READY":
            raise RegistryError(
                f"model {model} version {version} has status {found.status}; only READY versions are promoted"
            )
        current = self._alias_version(model, CHAMPION_ALIAS)
        key = history.entry_key(model, kind, expected_champion, version, run_id)
        move = history.new_move(kind, expected_champion, version, reason, by, run_id)
        if current == version and expected_champion != version:
            # An earlier attempt moved champion and stopped before previous: complete it, keeping its time.
            move = self._recorded_move(model, key) or move
        else:
            _refuse_moved(model, current, expected_champion)
            self._write_history(model, history.HistoryEntry(key, move, history.PENDING))
            self._client.set_registered_model_alias(model, CHAMPION_ALIAS, version)
        if expected_champion is not None and expected_champion != version:
            self._client.set_registered_model_alias(model, PREVIOUS_ALIAS, expected_champion)
        after = self.aliases(model)
        if after[CHAMPION_ALIAS] != version or (
            expected_champion is not None and after[PREVIOUS_ALIAS] != expected_champion
        ):
            raise RegistryError(f"model {model}: aliases read back as {after} after promoting version {version}")
        self._write_history(model, history.HistoryEntry(key, move, history.DONE))
        self._mark_champion_since(model, version)
        return after

    def _mark_champion_since(self, model: str, version: str) -> None:
        """Records on the registered model when `version` became champion, so that one search of all models
        tells each champion's age (a version's own tags would take one round trip per model)."""
        stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        self._client.set_registered_model_tag(model, Tag.CHAMPION_SINCE, f"{version}@{stamp}")

    def check_champion(self, model: str, expected: str | None) -> None:
        """The promotion guard: raises PromotionConflictError unless `champion` points at `expected` (the
        champion the evaluation compared against). `approve_promotion` asks it too before it asks a person."""
        _refuse_moved(model, self._alias_version(model, CHAMPION_ALIAS), expected)

    def _write_history(self, model: str, entry: history.HistoryEntry) -> None:
        try:
            self._client.set_registered_model_tag(model, Tag.history_entry(entry.key), history.encode(entry))
        except Exception as error:  # MLflow raises several types when the store is unreachable
            moved = "its alias moved, the entry is not confirmed" if entry.state == history.DONE else "no alias moved"
            raise RegistryError(
                f"model {model}: the champion history entry ({entry.move.kind} to version {entry.move.to_version})"
                f" could not be written, so {moved}: {error}"
            ) from error

    def _recorded_move(self, model: str, key: str) -> history.ChampionMove | None:
        tags = dict(self._client.get_registered_model(model).tags or {})
        value = tags.get(Tag.history_entry(key))
        try:
            return None if value is None else history.decode(key, value).move
        except ValueError:
            return None

    def rollback(
        self, model: str, target_version: str | None, reason: str, actor: str, force: bool = False, *,
        run_id: str | None = None,
    ) -> dict[str, str | None]:  # fmt: skip
        """Point `champion` back at `previous` (or at target_version) and `previous` at the replaced champion.

        Refuses a version that does not exist, one a reviewer declined or has not approved yet, and, unless
        `force`, one that did not pass the policy in a real, unforced evaluation (rollback_problem): a dry run
        or a forced promotion marks a version `passed_evaluation` without the policy's comparison. The move is
        written to the champion history first (no entry, no move). Returns {"from", "to", "champion", "previous"}.
        """
        from mlflow.exceptions import MlflowException

        current = self._alias_version(model, CHAMPION_ALIAS)
        target = str(target_version) if target_version else self._alias_version(model, PREVIOUS_ALIAS)
        if target is None:
            raise RollbackRefusedError(
                f"model {model}: no target version given and no '{PREVIOUS_ALIAS}' alias to roll back to"
            )
        if target == current:
            raise RollbackRefusedError(f"model {model}: version {target} is already '{CHAMPION_ALIAS}'")
        try:
            found = self.version(model, target)
        except MlflowException as error:
            if _is_missing(error):
                raise RollbackRefusedError(f"model {model} has no version {target}: nothing to roll back to") from None
            raise
        if found.tags.get(Tag.DECISION) in NOT_RESTORABLE:
            raise RollbackRefusedError(
                f"model {model} version {target} is {found.tags[Tag.DECISION]} ({Tag.DECISION}): a person has not"
                " approved it, so rollback does not make it champion, even with force"
            )
        problem = rollback_problem(found.tags)
        if problem and not force:
            raise RollbackRefusedError(
                f"model {model} version {target} {problem}; rollback restores versions the policy passed"
                " (trigger with force=true to roll back to it anyway: recorded on the version)"
            )
        if found.status != "READY":
            raise RollbackRefusedError(f"model {model} version {target} has status {found.status}")
        key = history.entry_key(model, "rollback", current, target, run_id)
        move = history.new_move("rollback", current, target, reason, actor, run_id)
        self._write_history(model, history.HistoryEntry(key, move, history.PENDING))
        self.check_champion(model, current)  # the same guard as a promotion, against the champion read above
        self._client.set_registered_model_alias(model, CHAMPION_ALIAS, target)
        if current is not None:
            self._client.set_registered_model_alias(model, PREVIOUS_ALIAS, current)
        self._write_history(model, history.HistoryEntry(key, move, history.DONE))
        stamp = move.at.isoformat(timespec="seconds")
        self.set_tags(
            model,
            target,
            {Tag.ROLLED_BACK_TO_AT: stamp, Tag.ROLLBACK_REASON: reason, Tag.ROLLBACK_BY: actor,
             Tag.ROLLBACK_FORCED: str(bool(problem and force)).lower()},
        )  # fmt: skip
        if current is not None:
            self.set_tags(model, current, {Tag.ROLLED_BACK_FROM_AT: stamp})
        self._mark_champion_since(model, target)
        return {"from": current, "to": target, **self.aliases(model)}

    # Artifacts and models

    def reference_sample(self, version: ModelVersion) -> pd.DataFrame:
        """The drift reference the training job logged with the version (a sample of its training set)."""
        import mlflow.artifacts
        import pandas as pd

        with tempfile.TemporaryDirectory() as tmp:
            try:
                path = mlflow.artifacts.download_artifacts(
                    run_id=version.run_id,
                    artifact_path=REFERENCE_ARTIFACT,
                    dst_path=tmp,
                    tracking_uri=self.tracking_uri,
                )
            except Exception as error:  # noqa: BLE001 - MLflow raises several types for a missing artifact
                raise RegistryError(
                    f"{version.model} version {version.version} (run {version.run_id}) has no drift reference"
                    f" artifact {REFERENCE_ARTIFACT}: {redact(str(error))}"  # MLflow errors quote the tracking URI
                ) from None
            return pd.read_parquet(path)

    def log_artifacts(self, run_id: str, files: Iterable[str | os.PathLike[str]], artifact_path: str) -> None:
        """Uploads each existing file under `artifact_path` of the run (missing files are skipped)."""
        for path in files:
            if Path(path).exists():
                self._client.log_artifact(run_id, str(path), artifact_path=artifact_path)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        """Writes `text` as the run's artifact `artifact_file` (replacing an earlier one)."""
        self._client.log_text(run_id, text, artifact_file)

    def read_json(self, run_id: str, artifact_file: str) -> Any:
        """The JSON document the run's artifact `artifact_file` holds."""
        with tempfile.TemporaryDirectory() as tmp:
            try:
                local = self._client.download_artifacts(run_id, artifact_file, tmp)
            except Exception as error:  # noqa: BLE001 - MLflow raises several types for a missing artifact
                raise RegistryError(f"run {run_id} has no readable artifact {artifact_file}: {error}") from None
            return json.loads(Path(local).read_text(encoding="utf-8"))

    def set_description(self, model: str, version: str, text: str) -> None:
        """The version's description in the registry (cut to MLflow's limit)."""
        self._client.update_model_version(model, str(version), description=text[:DESCRIPTION_LIMIT])

    def load_model(self, model: str, version: str) -> Any:
        """The scikit-learn model of a version, deserialized with the permission scoped to this load."""
        import mlflow.artifacts
        import mlflow.sklearn

        with tempfile.TemporaryDirectory() as tmp:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{model}/{version}",
                dst_path=tmp,
                tracking_uri=self.tracking_uri,
                registry_uri=self.tracking_uri,
            )
            with _model_loading_allowed():
                return mlflow.sklearn.load_model(local)


# Decisions of a version the policy passed in a real run (not a dry run): what rollback restores unforced.
VETTED_DECISIONS = frozenset({Decision.APPROVED, Decision.PROMOTED, Decision.CHAMPION})


def rollback_problem(tags: Mapping[str, str]) -> str | None:
    """Why a version with these tags is not one rollback restores without `force`, or None when it is: it
    must have passed the policy (`passed_evaluation`), not by force_promote, in a real run (not a dry run)."""
    decision = tags.get(Tag.DECISION)
    if tags.get(Tag.PASSED_EVALUATION) != "true":
        return f"never passed evaluation (tag {Tag.PASSED_EVALUATION} is not 'true')"
    if tags.get(Tag.FORCED) == "true":
        return f"passed only because force_promote overrode the comparison (tag {Tag.FORCED})"
    if decision not in VETTED_DECISIONS:
        return f"was not passed by a real run (tag {Tag.DECISION} is {decision!r})"
    return None
