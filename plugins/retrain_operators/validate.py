"""Validation gate: Great Expectations on the whole data window; a failure stops the run with a report."""

from __future__ import annotations

import json
from typing import Any

from airflow.sdk import BaseOperator

from retrain_operators import common


class ValidateDataOperator(BaseOperator):
    """Validates the run's window and writes validation.json and validation.html under the run's report folder.

    Pushes the result to XCom (key `validation`) *then* fails (no retry) with DataValidationError naming every failed
    expectation, or DataError (unreadable file, unparseable timestamp, missing data) as it came.
    """

    ui_color = "#ead1dc"

    def __init__(self, *, spec, **kwargs) -> None:
        super().__init__(**kwargs)
        self.spec = spec

    def execute(self, context: Any) -> dict:
        from retrain.data import read_window
        from retrain.errors import DataError, DataValidationError
        from retrain.report import write_atomic
        from retrain.validation import failure_message, render_html, validate_frame

        spec = self.spec
        window = common.resolve_window(context, spec)
        directory = common.report_dir(context, spec)
        html_path, json_path = directory / "validation.html", directory / "validation.json"
        self.log.info("validating %s window %s from %s", spec.name, window, spec.data.uri)
        try:
            data = read_window(spec, window)
        except DataError as error:
            write_atomic(
                json_path,
                json.dumps({"model": spec.name, "window": str(window), "success": False, "error": str(error)}),
            )
            write_atomic(
                html_path, f"<!doctype html><h1>Validation of {spec.name}: FAILED</h1><pre>{_escape(str(error))}</pre>"
            )
            context["ti"].xcom_push(
                key="validation", value={"success": False, "error": str(error), "report_html": str(html_path)}
            )
            if error.transient:  # storage unreachable or data not landed yet: the task's retries may help
                raise
            raise common.without_retry(error) from error
        outcome = validate_frame(data.frame, spec, window)
        write_atomic(json_path, json.dumps({**outcome.to_dict(), "files": list(data.files)}, indent=2, default=str))
        write_atomic(html_path, render_html(outcome, data.files))
        summary = {
            "window": window.to_dict(),
            "rows": outcome.rows,
            "success": outcome.success,
            "warnings": len(outcome.warnings),
            "files": list(data.files),
            "report_html": str(html_path),
            "report_json": str(json_path),
        }
        context["ti"].xcom_push(key="validation", value={**summary, **outcome.to_dict(limit=50)})
        for warning in outcome.warnings:
            self.log.warning("validation warning: %s", warning.describe())
        if not outcome.success:
            error = DataValidationError(failure_message(outcome, html_path))
            raise common.without_retry(error) from error
        self.log.info(
            "validation passed: %d rows, %d expectations, report %s", outcome.rows, len(outcome.results), html_path
        )
        return summary


def _escape(text: str) -> str:
    import html

    return html.escape(text)
