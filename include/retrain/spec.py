"""The model spec: one YAML file per model, the public contract of this package.

Parsed once into frozen, typed objects. Every error names the file, the field and the reason.
This module imports neither Airflow nor scikit-learn so DAG files can parse specs cheaply.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
from collections.abc import Collection
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from retrain.errors import SpecError
from retrain.estimator_params import param_problems
from retrain.guards import expectation_argument_problem
from retrain.safe_files import load_yaml, read_bounded_text
from retrain.sklearn_catalog import estimator_problem, scorer_problem

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
# A spec is a page of YAML (the demo's is 2 KB): the cap bounds what parsing one file can cost.
MAX_SPEC_BYTES = 256 * 1024
# Airflow refuses a DAG tag longer than this (airflow.sdk.definitions.dag.TAG_MAX_LEN).
MAX_TAG_LENGTH = 100
# Schedules Airflow understands by name; "@continuous" would retrain in a loop and is not offered.
CRON_PRESETS = ("@once", "@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly")
CONN_ID_PATTERN = r"^[A-Za-z0-9_.-]{1,250}$"  # what Airflow accepts as a connection id
# The longest file-name part of a DAG id (Airflow allows 250 characters in all).
MAX_SLUG = 100
DEFAULT_SPECS_DIR = Path(__file__).resolve().parents[1] / "models"

# Estimators the spec may name. A spec is configuration, not code: an arbitrary import path
# would let whoever edits a YAML file run code on the workers. Extend with
# RETRAIN_ALLOWED_ESTIMATOR_PREFIXES (comma-separated module prefixes).
DEFAULT_ALLOWED_ESTIMATOR_PREFIXES = ("sklearn.",)
DEFAULT_METRICS = {"classification": "roc_auc", "regression": "r2"}

ColumnName = Annotated[str, Field(min_length=1, max_length=256)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class _Location(_Frozen):
    """Where rows are: files (`uri`), or a table or a query through an Airflow connection (`conn_id` +
    `table` | `query`); which combinations are allowed is checked by source_problems."""

    uri: str | None = Field(
        default=None, min_length=1,
        description="A file or folder of CSV/Parquet files; relative paths join RETRAIN_DATA_ROOT.",
    )  # fmt: skip
    conn_id: str | None = Field(
        default=None, pattern=CONN_ID_PATTERN, description="Airflow connection of the database holding the rows."
    )
    table: str | None = Field(
        default=None, min_length=1, max_length=127, description="A table or view, 'table' or 'schema.table'."
    )
    query: str | None = Field(
        default=None, min_length=1, max_length=100_000, description="A SELECT bounded by :start and :end."
    )


class DataSpec(_Location):
    timestamp_column: ColumnName
    lookback_days: int = Field(default=56, ge=2, le=3650)
    holdout_days: int = Field(default=7, ge=1, le=365)
    format: Literal["auto", "csv", "parquet"] = "auto"
    extra_columns: Literal["allow", "warn", "fail"] = Field(
        default="allow", description="What validation does with columns the spec does not name."
    )

    @property
    def location(self) -> str:
        """Where the data is, for messages and reports: the URI, or the table or query and the connection's id
        (never its credentials)."""
        if self.uri is not None:
            return self.uri
        return f"{f'table {self.table}' if self.table else 'query'} through connection {self.conn_id}"

    @model_validator(mode="after")
    def _holdout_inside_window(self) -> DataSpec:
        if self.holdout_days >= self.lookback_days:
            raise ValueError(
                f"holdout_days ({self.holdout_days}) must be smaller than lookback_days ({self.lookback_days}),"
                " or nothing is left to train on"
            )
        return self


class FeaturesSpec(_Frozen):
    numeric: tuple[ColumnName, ...] = ()
    categorical: tuple[ColumnName, ...] = ()

    @model_validator(mode="after")
    def _some_distinct_features(self) -> FeaturesSpec:
        names = [*self.numeric, *self.categorical]
        if not names:
            raise ValueError("declare at least one numeric or categorical feature")
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"columns listed twice: {duplicates}")
        return self

    @property
    def columns(self) -> tuple[str, ...]:
        return (*self.numeric, *self.categorical)


class EstimatorSpec(_Frozen):
    estimator: str = Field(pattern=r"^[A-Za-z_][\w.]*\.[A-Za-z_]\w*$", max_length=200)
    params: dict[str, Any] = Field(default_factory=dict)
    random_state: int = Field(
        default=42, ge=0, le=2**32 - 1, description="Seed for the estimator, the bootstrap and sampling."
    )

    @field_validator("estimator")
    @classmethod
    def _allowed(cls, value: str) -> str:
        prefixes = allowed_estimator_prefixes()
        if not value.startswith(prefixes):
            raise ValueError(f"estimator {value!r} is not allowed; allowed module prefixes: {list(prefixes)}")
        return value

    def problems(self, task: str) -> list[tuple[tuple[str, ...], str]]:
        """(field, reason) when the estimator is not a scikit-learn estimator of `task` (a class outside
        scikit-learn, admitted by RETRAIN_ALLOWED_ESTIMATOR_PREFIXES, is not checked here) or a parameter
        may not be set as given (retrain.estimator_params)."""
        if self.estimator.startswith("sklearn."):
            problem = estimator_problem(self.estimator, task)
            if problem:
                return [(("model", "estimator"), problem)]
        return [(("model", "params", name), reason) for name, reason in param_problems(self.estimator, self.params)]


class BootstrapSpec(_Frozen):
    resamples: int = Field(default=200, ge=0, le=10_000)
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)


class EvaluationSpec(_Frozen):
    metric: str = Field(
        default="",
        description="A scikit-learn scorer name valid for the task; empty: roc_auc (classification) or r2 (regression).",
    )
    secondary_metrics: tuple[str, ...] = ()
    slices: tuple[ColumnName, ...] = Field(
        default=(), description="Categorical columns to compute per-value metrics on."
    )
    bootstrap: BootstrapSpec = BootstrapSpec()
    # Strict: YAML's 1, "1" and true stay an int, a string and a bool, and must equal a label of that type.
    positive_label: StrictBool | StrictInt | StrictStr | None = Field(
        default=None,
        description="The class binary metrics count as positive; empty: the greater of the two sorted classes.",
    )

    @field_validator("positive_label", mode="before")
    @classmethod
    def _a_label(cls, value: Any) -> Any:
        """One clear error instead of one per member of the union."""
        if value is not None and not isinstance(value, str | int | bool):
            raise ValueError(f"a class label is text, an integer or true/false; got {value!r} ({type(value).__name__})")
        return value


# Who may answer an approval request: an auth manager user id (the simple auth manager's user name).
ApproverId = Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f\x7f]+$")]


class PromotionSpec(_Frozen):
    min_improvement: float = Field(default=0.0, ge=0.0, description="Challenger must beat champion by this much.")
    min_score: float | None = Field(default=None, description="Absolute floor on the primary metric.")
    max_slice_regression: float | None = Field(default=None, ge=0.0)
    require_significant: bool = Field(
        default=False, description="Require the bootstrap lower bound of the improvement to exceed min_improvement."
    )
    require_beats_baseline: bool = True
    approval: Literal["never", "always", "when_forced", "first_version"] = Field(
        default="never",
        description="When a person must approve a promotion the policy allowed: never, always, only a forced one,"
        " or only the model's first champion.",
    )
    approvers: tuple[ApproverId, ...] = Field(
        default=(), description="User ids allowed to answer (empty: anyone the auth manager lets answer)."
    )
    approval_timeout_minutes: float = Field(
        default=3 * 24 * 60, gt=0, le=30 * 24 * 60, description="No answer by then is a rejection."
    )

    @field_validator("approvers")
    @classmethod
    def _known_approvers(cls, approvers: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        """Each approver must be a user the auth manager knows, when the caller can list them (parse time)."""
        duplicates = sorted({a for a in approvers if approvers.count(a) > 1})
        if duplicates:
            raise ValueError(f"approvers listed twice: {duplicates}")
        known = (info.context or {}).get("known_users")
        unknown = [a for a in approvers if known is not None and a not in known]
        if unknown:
            raise ValueError(
                f"unknown assigned user(s) {unknown}: not a user of the auth manager"
                " ([core] simple_auth_manager_users); nobody could answer the approval"
            )
        return approvers


class ExpectationSpec(_Frozen):
    type: str = Field(
        pattern=r"^expect_[a-z0-9_]+$", description="A GX expectation name, e.g. expect_column_values_to_be_between."
    )
    kwargs: dict[str, Any] = Field(default_factory=dict)
    severity: Literal["fail", "warn"] = "fail"

    @field_validator("kwargs")
    @classmethod
    def _not_evaluated(cls, value: dict[str, Any]) -> dict[str, Any]:
        problem = expectation_argument_problem(value)
        if problem:
            raise ValueError(problem)
        return value


def _inside_expectations_folder(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_./-]*\.json", value) or ".." in value.split("/"):
        raise ValueError(
            f"{value[:100]!r} must be a .json file name (or sub-path) inside the expectations folder:"
            " letters, digits, '_', '-', '.', '/', no absolute path and no '..'"
        )
    return value


SuiteFile = Annotated[str, Field(max_length=255), AfterValidator(_inside_expectations_folder)]


class ValidationSpec(_Frozen):
    expectations: tuple[ExpectationSpec, ...] = ()
    suite_files: tuple[SuiteFile, ...] = Field(
        default=(), description="GX suite JSON files, relative to include/expectations/ (RETRAIN_EXPECTATIONS_DIR)."
    )
    min_rows: int = Field(default=1, ge=1)
    timestamp_null_tolerance: float = Field(
        default=0.0, ge=0.0, lt=1.0, description="Fraction of rows whose timestamp may be null or unparseable."
    )
    max_duplicate_fraction: float = Field(
        default=0.01, ge=0.0, le=1.0, description="Fraction of rows that may repeat an earlier row; 1 turns it off."
    )


class DriftSpec(_Frozen):
    retrain: Literal["always", "on_drift"] = "always"
    psi_threshold: float = Field(default=0.2, gt=0.0)
    p_value: float = Field(default=0.01, gt=0.0, lt=1.0)
    bins: int = Field(default=10, ge=2, le=100)
    reference_sample_rows: int = Field(
        default=50_000, ge=100, description="Rows of the training set kept as drift reference."
    )


class Toleration(_Frozen):
    key: LabelKey | None = None
    operator: Literal["Equal", "Exists"] = "Equal"
    value: LabelValue | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None


def _quantity(kind: str, pattern: str, examples: str) -> AfterValidator:
    """A Kubernetes resource quantity of `kind`, refused with an example of the right form."""

    def check(value: str) -> str:
        if not re.fullmatch(pattern, value):
            raise ValueError(f"{value!r} is not a Kubernetes {kind} quantity (e.g. {examples})")
        return value

    return AfterValidator(check)


CpuQuantity = Annotated[str, _quantity("CPU", r"\d+(\.\d+)?m?", "'500m', '2'")]
MemoryQuantity = Annotated[str, _quantity("memory", r"\d+(\.\d+)?(Ki|Mi|Gi|Ti|K|M|G|T)?", "'512Mi', '4Gi'")]


class ResourcesSpec(_Frozen):
    """The training pod's requests and limits (and how many threads the local job uses: the CPU limit)."""

    cpu_request: CpuQuantity = "1"
    cpu_limit: CpuQuantity = "2"
    memory_request: MemoryQuantity = "2Gi"
    memory_limit: MemoryQuantity = "4Gi"
    gpu: int = Field(default=0, ge=0, le=16)


# Kubernetes names and label syntax: spec values reach the pod as data, so only these shapes are accepted.
K8S_NAME = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"
LabelKey = Annotated[str, Field(pattern=r"^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")]
LabelValue = Annotated[str, Field(pattern=r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")]


class TrainingSpec(_Frozen):
    image: str = Field(
        default="retrain-training:latest",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._/:-]{0,254}(@sha256:[0-9a-f]{64})?$",
        description="The training image; the kubernetes backend requires it pinned by digest (name@sha256:...).",
    )
    namespace: str = Field(default="ml-training", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)
    service_account: str = Field(default="retrain-training", pattern=K8S_NAME)
    mlflow_secret: str = Field(
        default="retrain-mlflow", pattern=K8S_NAME, description="Kubernetes Secret holding MLFLOW_* keys."
    )
    resources: ResourcesSpec = ResourcesSpec()
    node_selector: dict[LabelKey, LabelValue] = Field(default_factory=dict)
    tolerations: tuple[Toleration, ...] = ()
    affinity: dict[str, Any] = Field(default_factory=dict)
    artifacts_pvc: str | None = Field(
        default=None,
        pattern=K8S_NAME,
        description="PersistentVolumeClaim shared with the workers, mounted at the artifacts root.",
    )
    timeout_minutes: int = Field(default=120, ge=1, le=7 * 24 * 60)
    startup_timeout_seconds: int = Field(default=600, ge=30, le=24 * 3600)
    deferrable: bool = False


DagTag = Annotated[str, Field(min_length=1, max_length=MAX_TAG_LENGTH, pattern=r"^[^\x00-\x1f\x7f]+$")]


def _cron(value: str) -> str:
    if value in CRON_PRESETS:
        return value
    from croniter import croniter  # what Airflow's cron timetables validate with

    if len(value) > 200 or not croniter.is_valid(value):
        raise ValueError(
            f"{value[:200]!r} is not a cron expression (five fields, e.g. '0 2 * * *') nor one of {list(CRON_PRESETS)}"
        )
    return value


Cron = Annotated[str, AfterValidator(_cron)]


class ScheduleSpec(_Frozen):
    cron: Cron | None = Field(
        default="0 2 * * *", description="A cron expression, one of @hourly, @daily, ..., or null (manual only)."
    )
    start_date: dt.date = dt.date(2024, 1, 1)
    owner: str = Field(default="ml-platform", min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")
    retries: int = Field(default=2, ge=0, le=10)
    retry_delay_minutes: int = Field(default=5, ge=0, le=24 * 60)
    tags: tuple[DagTag, ...] = Field(default=(), max_length=20)
    events: tuple[Literal["data", "monitoring"], ...] = Field(
        default=(),
        description="Asset events that also start a retraining: data (data_<name>), monitoring (retrain_request_<name>).",
    )
    ready_file: str | None = Field(
        default=None,
        min_length=1,
        description="A marker file an AssetWatcher waits for (then deletes) to emit an event on data_<name>.",
    )



class RowsSpec(_Location):
    """Where rows are read from: a file or a folder of CSV/Parquet files (`uri`), or a table or a query in a
    database (`conn_id` + `table` | `query`), with the same rules as `data` (retrain.spec.source_problems)."""

    format: Literal["auto", "csv", "parquet"] = "auto"
    timestamp_column: ColumnName = Field(default="", description="Empty: data.timestamp_column.")


class OutputSpec(_Frozen):
    """A table the day's predictions are also written to (besides the Parquet partition), through a connection."""

    conn_id: str = Field(pattern=CONN_ID_PATTERN, description="Airflow connection of the database to write to.")
    table: str = Field(min_length=1, max_length=127, description="'table' or 'schema.table'; created when missing.")

    @property
    def location(self) -> str:
        """The table and the connection's id (never its credentials), for messages and reports."""
        return f"table {self.table} through connection {self.conn_id}"


class ScoringSpec(_Frozen):
    """`score_<name>`: the champion scores the rows of each day."""

    input: RowsSpec
    key_columns: tuple[ColumnName, ...] = Field(min_length=1, description="Columns that identify a row of a day.")
    cron: Cron | None = Field(default="0 6 * * *", description="Besides every promotion; null: on promotions only.")
    output: OutputSpec | None = Field(default=None, description="A table the day's predictions are also written to.")


class LabelsSpec(RowsSpec):
    """Where the true labels land, how they join the predictions, and how late they come."""

    label_column: ColumnName = Field(default="", description="Empty: the spec's target.")
    key_columns: tuple[ColumnName, ...] = Field(default=(), description="Empty: scoring.key_columns, in that order.")
    delay_days: int = Field(default=7, ge=0, le=365, description="Labels of day D are complete by D + delay_days.")


class MonitorPolicySpec(_Frozen):
    """When live quality asks for a retraining: `breaches` bad days among the last `days`, the latest among them."""

    min_score: float | None = Field(default=None, description="Floor on the live metric.")
    max_drop: float | None = Field(default=None, ge=0.0, description="Largest fall below the champion's evaluation score.")
    breaches: int = Field(default=3, ge=1, le=365)
    days: int = Field(default=5, ge=1, le=365)
    min_labels: int = Field(default=100, ge=1, description="Fewer labelled rows on a day: not enough labels to judge it.")


class MonitoringSpec(_Frozen):
    """`monitor_<name>`: labels joined to the predictions, the live metric and the input drift per day."""

    labels: LabelsSpec
    metric: str = Field(default="", description="Empty: evaluation.metric; else one of evaluation.secondary_metrics.")
    lookback_days: int = Field(default=14, ge=1, le=366, description="Days of predictions each run looks at.")
    cron: Cron | None = "0 7 * * *"
    policy: MonitorPolicySpec = MonitorPolicySpec()


class ModelSpec(_Frozen):
    name: str = Field(pattern=NAME_PATTERN, description="DAG id retrain_<name>; registered model <name>.")
    description: str = ""
    intended_use: str = Field(
        default="", max_length=4000, description="Intended use and known limits: shown on every version's model card."
    )
    data: DataSpec
    target: ColumnName
    task: Literal["classification", "regression"]
    features: FeaturesSpec
    model: EstimatorSpec
    evaluation: EvaluationSpec = EvaluationSpec()
    promotion: PromotionSpec = PromotionSpec()
    validation: ValidationSpec = ValidationSpec()
    drift: DriftSpec = DriftSpec()
    training: TrainingSpec = TrainingSpec()
    schedule: ScheduleSpec = ScheduleSpec()
    scoring: ScoringSpec | None = None
    monitoring: MonitoringSpec | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_metric(cls, document: Any) -> Any:
        """The primary metric defaults by task, so a regression spec needs no classification scorer."""
        if isinstance(document, dict) and isinstance(document.get("evaluation", {}), dict):
            evaluation = dict(document.get("evaluation") or {})
            if not evaluation.get("metric"):
                evaluation["metric"] = DEFAULT_METRICS.get(document.get("task"), "")
                document = {**document, "evaluation": evaluation}
        return loop_defaults(document)

    @model_validator(mode="after")
    def _consistent(self) -> ModelSpec:
        """Rules between fields, each error on the field to change."""
        problems: list[tuple[tuple[str, ...], str]] = []
        features = set(self.features.columns)
        if self.target in features:
            problems.append((("target",), f"target {self.target!r} is also listed as a feature"))
        if self.data.timestamp_column in features or self.data.timestamp_column == self.target:
            problems.append(
                (("data", "timestamp_column"), f"{self.data.timestamp_column!r} cannot be the target or a feature")
            )
        if self.promotion.approvers and self.promotion.approval == "never":
            problems.append(
                (("promotion", "approvers"), "approvers are listed but promotion.approval is 'never': nobody is asked")
            )
        unknown_slices = sorted(set(self.evaluation.slices) - set(self.features.categorical))
        if unknown_slices:
            problems.append((("evaluation", "slices"), f"{unknown_slices} must be categorical features"))
        if self.evaluation.positive_label is not None and self.task != "classification":
            problems.append((("evaluation", "positive_label"), "a positive class needs task: classification"))
        for index, name in enumerate((self.evaluation.metric, *self.evaluation.secondary_metrics)):
            problem = scorer_problem(name, self.task)
            if problem:
                loc = ("evaluation", "metric") if index == 0 else ("evaluation", "secondary_metrics", str(index - 1))
                problems.append((loc, problem))
        problems += self.model.problems(self.task)
        problems += source_problems(self.data, ("data",))
        problems += loop_problems(self)
        if problems:
            raise ValidationError.from_exception_data(
                "ModelSpec",
                [
                    InitErrorDetails(type=PydanticCustomError("spec", "{reason}", {"reason": reason}), loc=loc, input=None)
                    for loc, reason in problems
                ],
            )
        return self

    @property
    def dag_id(self) -> str:
        return f"retrain_{self.name}"

    @property
    def input_columns(self) -> tuple[str, ...]:
        """Every column a run reads from the data: timestamp, features, target."""
        return (self.data.timestamp_column, *self.features.columns, self.target)


# SQLAlchemy's own pattern for a named bind parameter in text(): what it would try to bind.
_BIND_PARAMETER = re.compile(r"(?<![:\w\x5c]):(\w+)(?!:)")
QUERY_PARAMETERS = ("start", "end")
# The columns scoring.output's table has besides the key columns (retrain.sources.sql_output writes them).
OUTPUT_COLUMNS = ("prediction", "probability", "model_version", "run_id", "day")
# A table part: what a quoted identifier may hold, less what no catalogue name here needs (quotes, dots,
# control characters). Whether it exists is checked against the database's catalogue when a run reads it.
_IDENTIFIER_PART = re.compile(r"[^\x00-\x1f\x7f\".]{1,63}")


def table_problem(table: str) -> str | None:
    """Why `table` is not 'table' or 'schema.table' (each part a name a quoted identifier may hold), or None."""
    parts = table.split(".")
    if len(parts) > 2 or not all(_IDENTIFIER_PART.fullmatch(part) for part in parts):
        reason = "is not 'table' or 'schema.table' (each part 1-63 characters, no quote, dot or control character)"
        return f"{table!r} {reason}"
    return None


def source_problems(section: DataSpec | RowsSpec, where: tuple[str, ...]) -> list[tuple[tuple[str, ...], str]]:
    """Where a section's rows are (`data`, `scoring.input`, `monitoring.labels`, at `where`): `uri`, or `conn_id`
    with exactly one of `table` and `query`; each problem on its field."""
    name = ".".join(where)
    sql_fields = [field for field in ("conn_id", "table", "query") if getattr(section, field) is not None]
    if section.uri is not None:
        return [((*where, field), f"{name}.uri and {name}.{field} exclude each other: name files or a database")
                for field in sql_fields]  # fmt: skip
    if not sql_fields:
        return [((*where, "uri"), f"name the data: {name}.uri (files), or {name}.conn_id with {name}.table or {name}.query")]
    if section.conn_id is None:
        return [((*where, "conn_id"), f"{name}.{sql_fields[0]} needs {name}.conn_id, the Airflow connection to read it")]
    if (section.table is None) == (section.query is None):
        return [((*where, "table"), f"with {name}.conn_id, give exactly one of {name}.table and {name}.query")]
    if section.table is not None:
        problem = table_problem(section.table)
        return [] if problem is None else [((*where, "table"), problem)]
    found = set(_BIND_PARAMETER.findall(section.query or ""))
    missing = [f":{parameter}" for parameter in QUERY_PARAMETERS if parameter not in found]
    unknown = sorted(f":{parameter}" for parameter in found - set(QUERY_PARAMETERS))
    if missing or unknown:
        reason = "the query must bind the window as :start (inclusive) and :end (exclusive)"
        if missing:
            reason += f"; missing {', '.join(missing)}"
        if unknown:
            reason += f"; unknown placeholder(s) {', '.join(unknown)} (write \\: for a literal colon)"
        return [((*where, "query"), reason)]
    return []


def _section(document: dict, key: str) -> dict | None:
    value = document.get(key)
    return dict(value) if isinstance(value, dict) else None


def loop_defaults(document: Any) -> Any:
    """Fill what scoring and monitoring take from the rest of the spec when left empty: timestamp columns,
    the label column, the join key and the live metric. Anything malformed is left for validation to name."""
    if not isinstance(document, dict):
        return document
    data, evaluation = _section(document, "data") or {}, _section(document, "evaluation") or {}
    scoring, monitoring = _section(document, "scoring"), _section(document, "monitoring")
    if scoring is not None and (rows := _section(scoring, "input")) is not None:
        if not rows.get("timestamp_column"):
            rows["timestamp_column"] = data.get("timestamp_column")
        document = {**document, "scoring": {**scoring, "input": rows}}
    if monitoring is not None:
        labels = _section(monitoring, "labels")
        if labels is not None:
            if not labels.get("timestamp_column"):
                labels["timestamp_column"] = data.get("timestamp_column")
            if not labels.get("label_column"):
                labels["label_column"] = document.get("target")
            if not labels.get("key_columns") and scoring is not None:
                labels["key_columns"] = scoring.get("key_columns")
            monitoring["labels"] = labels
        if not monitoring.get("metric"):
            monitoring["metric"] = evaluation.get("metric")
        document = {**document, "monitoring": monitoring}
    return document


def loop_problems(spec: ModelSpec) -> list[tuple[tuple[str, ...], str]]:
    """Rules of the scoring, monitoring and event-schedule sections, each on the field to change."""
    problems: list[tuple[tuple[str, ...], str]] = []
    if spec.schedule.ready_file and "data" not in spec.schedule.events:
        problems.append((("schedule", "ready_file"), "a ready_file emits data events: add 'data' to schedule.events"))
    if len(set(spec.schedule.events)) != len(spec.schedule.events):
        problems.append((("schedule", "events"), f"listed twice: {list(spec.schedule.events)}"))
    scoring, monitoring = spec.scoring, spec.monitoring
    if scoring is not None:
        problems += source_problems(scoring.input, ("scoring", "input"))
        keys = scoring.key_columns
        if len(set(keys)) != len(keys):
            problems.append((("scoring", "key_columns"), f"columns listed twice: {list(keys)}"))
        if spec.target in keys:
            problems.append((("scoring", "key_columns"), f"the target {spec.target!r} cannot be a key: rows to score have none"))
        if scoring.output is not None:
            problem = table_problem(scoring.output.table)
            if problem:
                problems.append((("scoring", "output", "table"), problem))
            taken = sorted(set(keys) & set(OUTPUT_COLUMNS))
            if taken:
                problems.append((
                    ("scoring", "key_columns"),
                    f"{taken} cannot be keys when scoring.output is set: the output table has columns {list(OUTPUT_COLUMNS)}",
                ))  # fmt: skip
    if monitoring is None:
        return problems
    problems += source_problems(monitoring.labels, ("monitoring", "labels"))
    if scoring is None:
        problems.append((("monitoring",), "monitoring joins labels to stored predictions: add a scoring section"))
    elif len(monitoring.labels.key_columns) != len(scoring.key_columns):
        problems.append((
            ("monitoring", "labels", "key_columns"),
            f"{list(monitoring.labels.key_columns)} must name one label column per scoring key {list(scoring.key_columns)}",
        ))  # fmt: skip
    evaluated = (spec.evaluation.metric, *spec.evaluation.secondary_metrics)
    if monitoring.metric not in evaluated:
        problems.append((
            ("monitoring", "metric"),
            f"{monitoring.metric!r} must be one of the evaluation's metrics {list(evaluated)}: the champion's evaluation"
            " score on it is what max_drop compares with",
        ))  # fmt: skip
    policy = monitoring.policy
    if policy.min_score is None and policy.max_drop is None:
        problems.append((("monitoring", "policy"), "give min_score (a floor), max_drop (against the champion), or both"))
    if policy.breaches > policy.days:
        problems.append((("monitoring", "policy", "breaches"), f"{policy.breaches} breaches cannot fit in {policy.days} days"))
    if policy.days > monitoring.lookback_days:
        problems.append((
            ("monitoring", "policy", "days"),
            f"the policy looks at {policy.days} days but each run reads {monitoring.lookback_days} (lookback_days)",
        ))  # fmt: skip
    return problems


def allowed_estimator_prefixes() -> tuple[str, ...]:
    extra = os.environ.get("RETRAIN_ALLOWED_ESTIMATOR_PREFIXES", "")
    return DEFAULT_ALLOWED_ESTIMATOR_PREFIXES + tuple(p.strip() for p in extra.split(",") if p.strip())


def specs_dir() -> Path:
    return Path(os.environ.get("RETRAIN_SPECS_DIR") or DEFAULT_SPECS_DIR)


def _format_validation_error(source: str, error: ValidationError) -> str:
    lines = [f"{source}: invalid model spec"]
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "<root>"
        lines.append(f"  - field '{field}': {item['msg']}")
    return "\n".join(lines)


def parse_spec(document: Any, source: str = "<spec>", known_users: Collection[str] | None = None) -> ModelSpec:
    """The spec from a parsed document. `known_users`: the user ids the auth manager knows, when the caller
    can list them (the DAG processor can for the simple auth manager); each approver must be one of them."""
    if not isinstance(document, dict):
        raise SpecError(f"{source}: a model spec must be a YAML mapping, got {type(document).__name__}")
    try:
        return ModelSpec.model_validate(document, context={"known_users": known_users})
    except ValidationError as error:
        raise SpecError(_format_validation_error(source, error)) from None


def load_spec(path: str | os.PathLike[str], known_users: Collection[str] | None = None) -> ModelSpec:
    """The spec in `path`: a regular file inside its folder (a symlink only when it resolves there), at most
    MAX_SPEC_BYTES, YAML without aliases, valid against the schema, and named like its `name`."""
    path = Path(path)
    text = read_bounded_text(path, path.parent, MAX_SPEC_BYTES, "model spec")
    document = load_yaml(text, str(path))
    spec = parse_spec(document, source=str(path), known_users=known_users)
    if path.stem != spec.name:
        raise SpecError(f"{path}: field 'name' is {spec.name!r} but the file is named {path.name!r}; they must match")
    return spec


def dag_id_of_file(path: str | os.PathLike[str]) -> str:
    """The retraining DAG id a spec file claims whatever its content, without reading it: retrain_<file name,
    lower case, [a-z0-9_] only> (a valid spec's name equals its file name, so this is its DAG id too; a broken
    one's placeholder DAG takes it), shortened with a hash when long."""
    stem = Path(path).stem
    slug = re.sub(r"[^a-z0-9_]+", "_", stem.lower()) or "unnamed"
    if len(slug) > MAX_SLUG:
        slug = f"{slug[: MAX_SLUG - 13]}_{hashlib.sha256(stem.encode()).hexdigest()[:12]}"
    return f"retrain_{slug}"


def spec_files(directory: Path | None = None) -> list[Path]:
    directory = directory or specs_dir()
    return sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])


def load_spec_by_name(name: str, directory: Path | None = None) -> ModelSpec:
    for path in spec_files(directory):
        if path.stem == name:
            return load_spec(path)
    raise SpecError(f"no spec named {name!r} in {directory or specs_dir()}")
