"""validate_data: the window through the Great Expectations suite; a failure stops the run with a report."""

from __future__ import annotations

import html
import json

from retrain.contracts import ValidationResult
from retrain.data import read_window
from retrain.errors import DataError, DataValidationError
from retrain.pipeline import StepContext
from retrain.report import write_atomic
from retrain.validation import failure_message, render_html, validate_frame

# Failed expectations carried in the step's output (the report has them all).
OUTPUT_FAILURES = 50


def run(ctx: StepContext) -> ValidationResult:
    """Validates the run's window and writes validation.json and validation.html in the run's report folder.

    Raises DataValidationError naming every failed expectation, or the DataError that made the window
    unreadable (unreadable file, no timestamp column, missing data), each carrying the result. Rows
    whose timestamp is null or unparseable are read too: the suite counts them.
    """
    spec, window = ctx.spec, ctx.run.window
    html_path, json_path = ctx.report_dir / "validation.html", ctx.report_dir / "validation.json"
    reports = {"validation_html": str(html_path), "validation_json": str(json_path)}
    ctx.log.info("validating %s window %s from %s", spec.name, window, spec.data.location)
    try:
        data = read_window(spec, window, untimed=True)
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
    outcome = validate_frame(data.frame, spec, window, data.untimed_examples)
    write_atomic(json_path, json.dumps({**outcome.to_dict(), "files": list(data.files)}, indent=2, default=str))
    write_atomic(html_path, render_html(outcome, data.files))
    summary = outcome.to_dict(limit=OUTPUT_FAILURES)
    result = ValidationResult(
        success=outcome.success,
        rows=outcome.rows,
        window=window.to_dict(),
        warnings=len(outcome.warnings),
        statistics=summary["statistics"],
        # Through JSON: an expectation's arguments may hold dates that XCom should carry as text.
        failed=tuple(json.loads(json.dumps(summary["failed"], default=str))),
        files=tuple(data.files),
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
