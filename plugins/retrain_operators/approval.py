"""approve_promotion: Airflow's own ApprovalOperator, fed and recorded by `retrain.approval`.

The request appears in the Airflow UI's Required Actions (and the REST API's hitlDetails); the task waits
in `awaiting_input` until an assigned user answers or the spec's timeout passes, which the scheduler turns
into the default answer, Reject. On Reject the operator skips `promote`. Either way the answer (who, when,
the comment) is recorded on the version and its model card before anything is skipped.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk import Param

from retrain_operators.base import run_step, step_context

if TYPE_CHECKING:
    from retrain.pipeline import Step
    from retrain.spec import ModelSpec

COMMENT_PARAM = "comment"


class PromotionApprovalOperator(ApprovalOperator):
    """Asks the spec's approvers to approve the promotion the policy allowed; no answer by the spec's
    timeout is a rejection. Skipped when there is nothing to approve, passes when the mode asks nobody."""

    ui_color = "#fff2cc"

    def __init__(self, *, spec: ModelSpec, step: Step, **kwargs: Any) -> None:
        promotion = spec.promotion
        kwargs.setdefault("task_id", step.task_id)
        kwargs.pop("params", None)  # the DAG's trigger form, which Airflow adds here and the request leaves out
        super().__init__(
            subject=f"Promote {spec.name}?",  # replaced by the request's own subject and evidence when it asks
            defaults=self.REJECT,  # the scheduler applies it when the timeout passes: no answer is a rejection
            assigned_users=[{"id": user, "name": user} for user in promotion.approvers] or None,
            response_timeout=dt.timedelta(minutes=promotion.approval_timeout_minutes),
            params={
                COMMENT_PARAM: Param(
                    "",
                    type="string",
                    maxLength=2000,
                    title="Comment",
                    description="Why you approve or reject; recorded on the model version and its model card.",
                    source="task",  # a field of the request, not of the DAG's trigger form
                )
            },
            # A retry would post a second request; an answer is given once.
            retries=0,
            **kwargs,
        )
        self.spec = spec
        self.step = step

    def execute(self, context: Any) -> Any:
        from retrain.approval import ApprovalRequest

        ctx = step_context(context, self.spec, self.step, self.log)

        def prepare():
            prepared = self.step.function()(ctx)
            if isinstance(prepared, ApprovalRequest):
                # Set after templates were rendered: values from the data are never rendered as Jinja.
                self.subject, self.body = prepared.subject, prepared.body
                ApprovalOperator.execute(self, context)  # writes the request and parks the task: raises
            return prepared

        return run_step(context, prepare)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        if "error" in event:
            return super().execute_complete(context, event)  # raises, as Airflow's operator does
        from retrain.approval import record

        ctx = step_context(context, self.spec, self.step, self.log)
        chosen = (event.get("chosen_options") or [None])[0]
        user = event.get("responded_by_user") or {}
        responded_at = event.get("responded_at")
        review = run_step(
            context,
            lambda: record(
                ctx,
                approved=chosen == self.APPROVE,
                by=user.get("id"),
                at=responded_at.isoformat() if hasattr(responded_at, "isoformat") else responded_at,
                comment=str((event.get("params_input") or {}).get(COMMENT_PARAM) or ""),
                timed_out=bool(event.get("timedout")),
            ),
        )
        # On Reject the operator skips `promote` by raising, and Airflow then pushes no return value: push it.
        context["ti"].xcom_push(key="return_value", value=review)
        super().execute_complete(context, event)
        return review
