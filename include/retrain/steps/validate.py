"""validate_data: the window through the Great Expectations suite; a failure stops the run with a report."""

from __future__ import annotations

import html
import json

from retrain.contracts import ValidationResult
from retrain.errors import DataError, DataValidationError
from retrain.pipeline import StepContext
from retrain.report import write_atomic
from retrain.validation import failure_message, render_html

# Failed expectations carried in the step's output (the report has them all).
OUTPUT_FAILURES = 50


def run(ctx: StepContext) -> ValidationResult:
    """Validates the run's window and writes validation.json and validation.html in the run's report folder.

    Raises DataValidationError naming every failed expectation, or the DataError that made the window
    unreadable (unreadable file, unparseable timestamp, missing data), each carrying the result.
    """
    spec, window = ctx.spec, ctx.run.window
    html_path, json_path = ctx.report_dir / "validation.html", ctx.report_dir / "validation.json"
    reports = {"validation_html": str(html_path), "validation_json": str(json_path)}
    ctx.log.info("validating %s window %s from %s", spec.name, window, spec.data.location)
    try:
        validated = ctx.source.validate(window)  # files: read and checked here; a database: checked there
    except DataError as error:
        write_atomic(
            json_path, json.dumps({"model": spec.name, "window": str(window), "success": False, "error": str(error)})
        )
        write_atomic(
            html_path,
            f"<!doctype html><h1>Validation of {html.escape(spec.name)}: FAILED</h1><pre>{html.escape(str(error))}</pre>",
        )
        error.output = ValidationResult(False, 0, window.to_dict(), error=str(error), reports=reports)
        raise
    outcome, read = validated.outcome, validated.read
    described = {"files": list(read), "source": ctx.source.describe()}
    write_atomic(json_path, json.dumps({**outcome.to_dict(), **described}, indent=2, default=str))
    write_atomic(html_path, render_html(outcome, read))
    summary = outcome.to_dict(limit=OUTPUT_FAILURES)
    result = ValidationResult(
        success=outcome.success,
        rows=outcome.rows,
        window=window.to_dict(),
        warnings=len(outcome.warnings),
        statistics=summary["statistics"],
        # Through JSON: an expectation's arguments may hold dates that XCom should carry as text.
        failed=tuple(json.loads(json.dumps(summary["failed"], default=str))),
        files=tuple(read),
        reports=reports,
    )
    for warning in outcome.warnings:
        ctx.log.warning("validation warning: %s", warning.describe())
    if not outcome.success:
        raise DataValidationError(failure_message(outcome, html_path), output=result)
    ctx.log.info(
        "validation passed: %d rows, %d expectations, report %s", outcome.rows, len(outcome.results), html_path
    )
    return result
