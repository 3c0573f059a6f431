"""Data validation with Great Expectations 1.x: a suite derived from the spec, plus the user's.

The default suite checks what every model needs (columns present; numeric features numeric and
finite; no feature entirely null; a target of the task's type, not null, with the classes the
metrics need; every row's timestamp valid and inside the window; enough rows; no more repeated rows
than `validation.max_duplicate_fraction`; unexpected columns per policy); each default expectation
says the rule it enforces. The spec adds expectations inline or as GX suite files, each with a
severity (`fail` or `warn`).

GX reports a failed expectation as a result, not an exception, and an error *inside* an
expectation (a missing column, a type it cannot compare) is also a result: we check `success`
ourselves and report errors apart from data failures. Every call uses its own ephemeral context
(file contexts shared by parallel tasks corrupt each other). GX is imported lazily.
"""

from __future__ import annotations

import html
import json
import logging
import math
import os
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from retrain.errors import SpecError
from retrain.guards import expectation_argument_problem
from retrain.safe_files import read_bounded_text
from retrain.settings import expectations_dir
from retrain.sklearn_catalog import BINARY_ONLY_SCORERS
from retrain.spec import ModelSpec
from retrain.window import Window

NUMERIC_TYPES = ["int", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float", "float16",
                 "float32", "float64", "Int8", "Int16", "Int32", "Int64", "Float32", "Float64"]  # fmt: skip
MAX_EXAMPLES = 10
FINITE_RULE = "numeric features must be finite (no inf or -inf); missing values are the not-null rules' business"
NOT_ALL_NULL_RULE = "a feature must not be entirely null"


@dataclass(frozen=True)
class ExpectationDef:
    type: str
    kwargs: dict[str, Any]
    severity: str = "fail"
    source: str = "default suite"
    rule: str = ""  # why the default suite asks for it, shown with a failure


@dataclass(frozen=True)
class ExpectationResult:
    type: str
    column: str | None
    kwargs: dict[str, Any]
    severity: str
    source: str
    success: bool
    errored: bool
    observed: Any = None
    unexpected_count: int | None = None
    element_count: int | None = None
    unexpected_examples: list = field(default_factory=list)
    error: str | None = None
    rule: str = ""

    def describe(self) -> str:
        args = ", ".join(f"{k}={_brief(v)}" for k, v in self.kwargs.items() if k != "column")
        call = (
            f"{self.type}(column={self.column!r}{', ' + args if args else ''})"
            if self.column
            else f"{self.type}({args})"
        )
        if self.type == "expect_column_to_exist" and not self.success and not self.errored:
            return f"FAILED {call}: column {self.column!r} is missing from the data"
        rule = f" (rule: {self.rule})" if self.rule else ""
        if self.errored:
            return f"ERROR {call}: the expectation could not be evaluated: {self.error}{rule}"
        if self.unexpected_count is not None:
            examples = f", e.g. {self.unexpected_examples[:3]}" if self.unexpected_examples else ""
            detail = f"{self.unexpected_count} of {self.element_count} rows unexpected{examples}"
        else:
            detail = f"observed {_short(self.observed)}"
        return f"{'FAILED' if self.severity == 'fail' else 'WARNING'} {call}: {detail}{rule}"


@dataclass(frozen=True)
class ValidationOutcome:
    model: str
    window: str
    rows: int
    success: bool
    results: tuple[ExpectationResult, ...]

    @property
    def failures(self) -> list[ExpectationResult]:
        return [r for r in self.results if not r.success and r.severity == "fail"]

    @property
    def warnings(self) -> list[ExpectationResult]:
        return [r for r in self.results if not r.success and r.severity == "warn"]

    def to_dict(self, limit: int | None = None) -> dict[str, Any]:
        failed = [asdict(r) for r in self.results if not r.success]
        return {
            "model": self.model,
            "window": self.window,
            "rows": self.rows,
            "success": self.success,
            "statistics": {
                "evaluated": len(self.results),
                "successful": sum(r.success for r in self.results),
                "failed": len(self.failures),
                "warnings": len(self.warnings),
                "errored": sum(r.errored for r in self.results),
            },
            "failed": failed[:limit] if limit else failed,
            "results": [asdict(r) for r in self.results] if limit is None else None,
        }


def _brief(value: Any) -> str:
    if isinstance(value, (list, tuple)) and len(value) > 6:
        return f"[{', '.join(map(repr, value[:3]))}, … {len(value)} values]"
    return repr(value)


def _short(value: Any, limit: int = 200) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[:limit] + "…"


def default_suite(spec: ModelSpec, window: Window) -> list[ExpectationDef]:
    """What every model needs from its window, each expectation with the rule it enforces."""
    ts, target = spec.data.timestamp_column, spec.target
    tolerance = spec.validation.timestamp_null_tolerance
    defs = [
        ExpectationDef("expect_table_row_count_to_be_between", {"min_value": spec.validation.min_rows}),
        *[ExpectationDef("expect_column_to_exist", {"column": c}) for c in spec.input_columns],
        *[
            ExpectationDef("expect_column_values_to_be_in_type_list", {"column": c, "type_list": NUMERIC_TYPES})
            for c in spec.features.numeric
        ],
        *[
            ExpectationDef("expect_column_values_to_be_finite", {"column": c}, rule=FINITE_RULE)
            for c in spec.features.numeric
        ],
        *[
            ExpectationDef(
                "expect_column_proportion_of_non_null_values_to_be_between",
                {"column": c, "min_value": 0, "strict_min": True},
                rule=NOT_ALL_NULL_RULE,
            )
            for c in spec.features.columns
        ],
        ExpectationDef("expect_column_values_to_not_be_null", {"column": target}),
        ExpectationDef(
            "expect_column_values_to_not_be_null",
            {"column": ts, **({"mostly": 1 - tolerance} if tolerance else {})},
            rule=f"a row whose data.timestamp_column is null or does not parse belongs to no window and is"
            f" never trained on; tolerated: validation.timestamp_null_tolerance {tolerance}",
        ),
        ExpectationDef(
            "expect_column_values_to_be_between",
            {
                "column": ts,
                "min_value": window.start.isoformat(),
                "max_value": window.end.isoformat(),
                "strict_max": True,
            },
        ),
        *_target_suite(spec),
    ]
    fraction = spec.validation.max_duplicate_fraction
    if fraction < 1:
        defs.append(
            ExpectationDef(
                "expect_compound_columns_to_not_repeat",
                {"column_list": list(spec.input_columns), **({"mostly": 1 - fraction} if fraction else {})},
                rule=f"at most validation.max_duplicate_fraction {fraction} of the rows may repeat an earlier row"
                " in every input column (a file delivered twice, a replayed export)",
            )
        )
    if spec.data.extra_columns != "allow":
        defs.append(
            ExpectationDef(
                "expect_table_columns_to_match_set",
                {"column_set": list(spec.input_columns), "exact_match": True},
                severity="fail" if spec.data.extra_columns == "fail" else "warn",
                source="data.extra_columns",
            )
        )
    return defs


def _two_class_advice(metric: str) -> str:
    alternative = BINARY_ONLY_SCORERS[metric]
    return f"{metric} scores two classes only" + (f" (for more: {alternative})" if alternative else "")


def _target_suite(spec: ModelSpec) -> list[ExpectationDef]:
    """The target's type fits the task; a classification target has the classes the metrics need."""
    target = spec.target
    if spec.task == "regression":
        return [
            ExpectationDef(
                "expect_column_values_to_be_in_type_list",
                {"column": target, "type_list": NUMERIC_TYPES},
                rule="a regression target is numeric",
            )
        ]
    metrics = (spec.evaluation.metric, *spec.evaluation.secondary_metrics)
    binary_only = [m for m in metrics if m in BINARY_ONLY_SCORERS]
    if binary_only:
        advice = "; ".join(_two_class_advice(m) for m in binary_only)
        classes_rule = f"a classifier needs two classes, the metrics two at most: {advice} (field evaluation.metric)"
    else:
        classes_rule = "a classifier needs at least two classes in its window"
    defs = [
        ExpectationDef(
            "expect_column_values_to_be_class_labels",
            {"column": target},
            rule="a classification target holds class labels: strings, booleans, integers (or integral floats)",
        ),
        ExpectationDef(
            "expect_column_unique_value_count_to_be_between",
            {"column": target, "min_value": 2, **({"max_value": 2} if binary_only else {})},
            rule=classes_rule,
        ),
    ]
    label = spec.evaluation.positive_label
    if label is not None:
        defs.append(
            ExpectationDef(
                "expect_column_distinct_values_to_contain_set",
                {"column": target, "value_set": [label]},
                rule=f"evaluation.positive_label {label!r} ({type(label).__name__}) must be one of the target's"
                " classes, with the same type (in YAML, quote a label that is text: 'yes', '1')",
            )
        )
    return defs


# A suite is a list of expectations; a megabyte holds thousands.
MAX_SUITE_BYTES = 1024 * 1024


def _suite_file(name: str) -> list[ExpectationDef]:
    """The expectations of a suite file inside the expectations folder (never outside it, never a FIFO or a
    device, at most MAX_SUITE_BYTES)."""
    root = expectations_dir()
    path = root / name
    text = read_bounded_text(path, root, MAX_SUITE_BYTES, "expectation suite (validation.suite_files)")
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as error:
        reason = error.msg if isinstance(error, json.JSONDecodeError) else type(error).__name__
        raise SpecError(f"{path}: expectation suite (validation.suite_files) is not valid JSON: {reason}") from None
    items = document.get("expectations") if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise SpecError(f"{path}: an expectation suite needs a list under 'expectations'")
    defs = []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            raise SpecError(f"{path}: expectations[{index}] needs a 'type' (a GX expectation name)")
        problem = expectation_argument_problem(item.get("kwargs") or {})
        if problem:
            raise SpecError(f"{path}: expectations[{index}].kwargs: {problem}")
        severity = ((item.get("meta") or {}).get("severity")) or "fail"
        if severity not in ("fail", "warn"):
            raise SpecError(f"{path}: expectations[{index}].meta.severity must be 'fail' or 'warn', got {severity!r}")
        defs.append(ExpectationDef(item["type"], dict(item.get("kwargs") or {}), severity, str(path)))
    return defs


def suite_definitions(spec: ModelSpec, window: Window) -> list[ExpectationDef]:
    user = [
        ExpectationDef(e.type, dict(e.kwargs), e.severity, f"spec {spec.name}") for e in spec.validation.expectations
    ]
    files = [d for name in spec.validation.suite_files for d in _suite_file(name)]
    return [*default_suite(spec, window), *user, *files]


def _about(definition: ExpectationDef, column: str) -> bool:
    kwargs = definition.kwargs
    return kwargs.get("column") == column or column in (kwargs.get("column_list") or ()) or column in (
        kwargs.get("column_set") or ()
    )


def feature_suite(spec: ModelSpec, window: Window, keys: tuple[str, ...]) -> list[ExpectationDef]:
    """The suite for rows to score: every expectation of the model's suite that is not about the target (they have
    none), at least one row, and the key columns present, not null and unique together.

    The rule on extra columns is left out: rows to score carry their keys, which the training data need not.
    """
    kept = [
        d for d in suite_definitions(spec, window)
        if not _about(d, spec.target) and d.type not in ("expect_table_row_count_to_be_between", "expect_table_columns_to_match_set")
    ]  # fmt: skip
    unique = (
        ExpectationDef("expect_column_values_to_be_unique", {"column": keys[0]}, source="scoring.key_columns")
        if len(keys) == 1
        else ExpectationDef("expect_compound_columns_to_be_unique", {"column_list": list(keys)}, source="scoring.key_columns")
    )
    return [
        ExpectationDef("expect_table_row_count_to_be_between", {"min_value": 1}, source="scoring"),
        *[ExpectationDef("expect_column_to_exist", {"column": k}, source="scoring.key_columns") for k in keys],
        *[ExpectationDef("expect_column_values_to_not_be_null", {"column": k}, source="scoring.key_columns") for k in keys],
        unique,
        *kept,
    ]


def _quiet_gx() -> None:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    for name in ("great_expectations", "great_expectations._docs_decorators"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _expectation(definition: ExpectationDef, index: int):
    from great_expectations.expectations.registry import get_expectation_impl

    try:
        cls = get_expectation_impl(definition.type)
    except Exception:  # noqa: BLE001 - GX raises several types for an unknown name
        cls = None
    if cls is None:
        raise SpecError(f"{definition.source}: unknown Great Expectations expectation {definition.type!r}")
    # Every expectation passes here, whatever its source: the last gate before GX evaluates anything.
    problem = expectation_argument_problem(definition.kwargs)
    if problem:
        raise SpecError(f"{definition.source}: {definition.type}: {problem}")
    try:
        return cls(**definition.kwargs, meta={"index": index, "severity": definition.severity})
    except Exception as error:  # noqa: BLE001 - pydantic validation errors of GX
        first = str(error).strip().splitlines()[0]
        raise SpecError(f"{definition.source}: invalid arguments for {definition.type}: {first}") from None


def validate_frame(
    frame: pd.DataFrame, spec: ModelSpec, window: Window, untimed_examples: tuple[str, ...] | list[str] = (),
    *,
    definitions: list[ExpectationDef] | None = None,
) -> ValidationOutcome:
    """Runs the spec's whole suite on the window's rows (or the `definitions` given, e.g. scoring's feature
    part); returns every expectation's result.

    `untimed_examples` (from `retrain.data.read_window`) are the raw values of the rows whose timestamp
    is null or unparseable: GX sees those rows as null timestamps and counts them, the examples say what
    the files held.
    """
    definitions = suite_definitions(spec, window) if definitions is None else definitions
    _quiet_gx()
    import great_expectations as gx

    import retrain.expectations  # noqa: F401 - registers this package's expectations with GX

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False, "metric_calculations": False}
    batch_definition = (
        context.data_sources.add_pandas("window")
        .add_dataframe_asset("rows")
        .add_batch_definition_whole_dataframe("all")
    )
    # All at once: a suite that belongs to the context re-serializes every expectation it holds on each
    # add_expectation, which made building the suite quadratic in its size (most of the step at 1M rows).
    expectations = [_expectation(definition, index) for index, definition in enumerate(definitions)]
    suite = context.suites.add(gx.ExpectationSuite(name=f"{spec.name}_suite", expectations=expectations))
    if frame.empty:
        # GX on an empty frame errors in odd places; the row count rule is the whole story.
        results = [_empty_window_result(d, spec) for d in definitions]
        return ValidationOutcome(spec.name, str(window), 0, False, tuple(results))
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
    validation = batch.validate(
        suite, result_format={"result_format": "SUMMARY", "partial_unexpected_count": MAX_EXAMPLES}
    )
    by_config = [(_definition_for(r, definitions), r.to_json_dict()) for r in validation.results]
    results = tuple(_result(definition, raw) for definition, raw in by_config)
    if untimed_examples:
        results = tuple(
            replace(r, unexpected_examples=list(untimed_examples[:MAX_EXAMPLES])) if _is_timestamp_rule(r, spec) else r
            for r in results
        )
    success = all(r.success for r in results if r.severity == "fail")
    return ValidationOutcome(spec.name, str(window), len(frame), success, results)


def _is_timestamp_rule(result: ExpectationResult, spec: ModelSpec) -> bool:
    return result.type == "expect_column_values_to_not_be_null" and result.column == spec.data.timestamp_column


def _definition_for(result, definitions: list[ExpectationDef]) -> ExpectationDef:
    return definitions[int((result.expectation_config.meta or {})["index"])]


def _result(definition: ExpectationDef, raw: dict) -> ExpectationResult:
    info = raw.get("exception_info") or {}
    errors = (
        [v for v in info.values() if isinstance(v, dict) and v.get("raised_exception")]
        if isinstance(info, dict)
        else []
    )
    if isinstance(info, dict) and info.get("raised_exception"):
        errors.append(info)
    result = raw.get("result") or {}
    return ExpectationResult(
        type=definition.type,
        column=definition.kwargs.get("column"),
        kwargs=definition.kwargs,
        severity=definition.severity,
        source=definition.source,
        success=bool(raw.get("success")) and not errors,
        errored=bool(errors),
        observed=_json_safe(result.get("observed_value", result.get("details"))),
        unexpected_count=result.get("unexpected_count"),
        element_count=result.get("element_count"),
        unexpected_examples=[_plain(v) for v in (result.get("partial_unexpected_list") or [])[:MAX_EXAMPLES]],
        error=errors[0].get("exception_message") if errors else None,
        rule=definition.rule,
    )


def _empty_window_result(definition: ExpectationDef, spec: ModelSpec) -> ExpectationResult:
    is_count = definition.type == "expect_table_row_count_to_be_between"
    return ExpectationResult(
        type=definition.type, column=definition.kwargs.get("column"), kwargs=definition.kwargs,
        severity=definition.severity, source=definition.source, success=not is_count, errored=False,
        observed=0 if is_count else "not evaluated: no rows in the window", rule=definition.rule,
    )  # fmt: skip


def _plain(value: Any) -> Any:
    """An example value as JSON can carry it: inf and NaN as text, anything else not a scalar as text."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value if isinstance(value, (str, int, float, bool)) or value is None else str(value)


def _json_safe(value: Any) -> Any:
    """An observed value with inf and NaN as text at any depth (a mean over an infinite value is inf):
    XCom and the reports are strict JSON."""
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float | np.floating) and not math.isfinite(value):
        return str(float(value))
    return value


def failure_message(outcome: ValidationOutcome, report_path: str | os.PathLike[str] | None = None) -> str:
    failures = outcome.failures
    head = f"{outcome.model}: {len(failures)} expectation(s) failed on window {outcome.window} ({outcome.rows} rows)"
    if outcome.rows == 0:
        head += "; the window has no rows (rule: validation.min_rows)"
    lines = [head + (f" (report: {report_path})" if report_path else "")]
    lines += [f"  - {r.describe()}" for r in failures]
    return "\n".join(lines)


def _rule_html(result: ExpectationResult) -> str:
    return f"<br><small>rule: {html.escape(result.rule)}</small>" if result.rule and not result.success else ""


def render_html(outcome: ValidationOutcome, files: list[str] | tuple[str, ...] = ()) -> str:
    esc = html.escape
    ordered = sorted(outcome.results, key=lambda r: (r.success, r.severity != "fail", r.type))
    rows = []
    for r in ordered:
        status = "ERROR" if r.errored else ("pass" if r.success else ("FAIL" if r.severity == "fail" else "warn"))
        detail = r.error if r.errored else (
            f"{r.unexpected_count} / {r.element_count} unexpected; e.g. {r.unexpected_examples[:5]}"
            if r.unexpected_count else _short(r.observed)
        )  # fmt: skip
        rows.append(
            f'<tr class="{status.lower()}"><td>{esc(status)}</td><td>{esc(r.type)}</td><td>{esc(str(r.column or ""))}</td>'
            f"<td><code>{esc(_short({k: v for k, v in r.kwargs.items() if k != 'column'}))}</code></td>"
            f"<td>{esc(str(detail))}{_rule_html(r)}</td>"
            f"<td>{esc(r.severity)}</td><td>{esc(r.source)}</td></tr>"
        )
    verdict = "PASSED" if outcome.success else "FAILED"
    stats = outcome.to_dict(limit=1)["statistics"]
    sources = "".join(f"<li><code>{esc(f)}</code></li>" for f in files) or "<li>none</li>"
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Validation {esc(outcome.model)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.25em .5em}}
tr.fail td,tr.error td{{background:#fde2e1}}tr.warn td{{background:#fff4d6}}</style></head><body>
<h1>Validation of {esc(outcome.model)}: {verdict}</h1>
<p>Window {esc(outcome.window)} &middot; {outcome.rows} rows &middot; {stats["evaluated"]} expectations,
{stats["failed"]} failed, {stats["warnings"]} warnings, {stats["errored"]} could not be evaluated.</p>
<table><tr><th>status</th><th>expectation</th><th>column</th><th>arguments</th><th>observed</th><th>severity</th><th>from</th></tr>
{"".join(rows)}</table><h2>Files read</h2><ul>{sources}</ul></body></html>"""
