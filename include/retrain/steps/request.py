"""request_retraining: asks for a retraining by an event on `retrain_request_<name>` when the policy tripped.

The event's payload is the verdict's: the reason in words, the metric, the breaching days, the champion and
the window end. Quiet, not enough labels, or nothing due: the task ends skipped and no event is emitted.
"""

from __future__ import annotations

from retrain.contracts import MonitoringReportResult, RetrainRequestResult
from retrain.errors import RetrainError, StepSkipped
from retrain.pipeline import StepContext


def run(ctx: StepContext) -> RetrainRequestResult:
    """The request (its payload becomes the asset event's `extra`), or StepSkipped with the verdict's reason."""
    report = ctx.input(MonitoringReportResult)
    if report is None or not report.verdict:
        raise RetrainError("no verdict from the report step; rerun the monitoring DAG from its first task")
    verdict = report.verdict
    if not verdict.get("request"):
        raise StepSkipped(str(verdict.get("reason")), output=RetrainRequestResult(False, str(verdict.get("reason"))))
    ctx.log.warning("RETRAINING REQUESTED for %s: %s", ctx.spec.name, verdict["reason"])
    return RetrainRequestResult(True, str(verdict["reason"]), dict(verdict.get("extra") or {}))
