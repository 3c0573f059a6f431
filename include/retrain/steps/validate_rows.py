"""validate_rows: the day's rows to score through the feature part of the model's suite (no target) and the
key rules; a failure stops the run with a report before anything is written.

The suite runs on the worker, on the rows read, also when they come from a table or a query: the read is
one bounded SELECT of the day's needed columns (rows of one day are small, unlike a training window, which
validate_data validates inside the database).
"""

from __future__ import annotations

from retrain.contracts import ValidationResult
from retrain.errors import DataValidationError
from retrain.pipeline import StepContext
from retrain.report import write_atomic
from retrain.scoring import day_window, read_day_rows, rows_view, scoring_spec
from retrain.steps.validate import OUTPUT_FAILURES
from retrain.validation import failure_message, feature_suite, render_html, validate_frame


def run(ctx: StepContext) -> ValidationResult:
    """Validates the rows of the run's day; writes rows_validation.json/.html. Raises DataError when the day has
    no rows or a file cannot be read, DataValidationError naming every failed expectation."""
    import json

    spec, day = ctx.spec, ctx.run.day
    scoring = scoring_spec(spec)
    window = day_window(day)
    data = read_day_rows(spec, day, untimed=True, engines=ctx.engines)  # rows without a valid timestamp: counted
    view = rows_view(spec, scoring.input)
    outcome = validate_frame(
        data.frame, view, window, data.untimed_examples, definitions=feature_suite(view, window, scoring.key_columns)
    )
    html_path, json_path = ctx.report_dir / "rows_validation.html", ctx.report_dir / "rows_validation.json"
    write_atomic(json_path, json.dumps({**outcome.to_dict(), "files": list(data.files)}, indent=2, default=str))
    write_atomic(html_path, render_html(outcome, data.files))
    summary = outcome.to_dict(limit=OUTPUT_FAILURES)
    result = ValidationResult(
        success=outcome.success, rows=outcome.rows, window=window.to_dict(), warnings=len(outcome.warnings),
        statistics=summary["statistics"], failed=tuple(json.loads(json.dumps(summary["failed"], default=str))),
        files=tuple(data.files), reports={"rows_validation_html": str(html_path), "rows_validation_json": str(json_path)},
    )  # fmt: skip
    if not outcome.success:
        raise DataValidationError(failure_message(outcome, html_path), output=result)
    ctx.log.info("rows to score for %s: %d rows passed %d expectations", day, outcome.rows, len(outcome.results))
    return result
