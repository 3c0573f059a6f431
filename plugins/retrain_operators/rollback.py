"""Rollback: move a model's `champion` back to `previous` or to a vetted version, by hand."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator


class RollbackOperator(BaseOperator):
    """Moves `champion` back to `previous` or to a given version that passed the policy in a real run (any
    existing version with the form's `force`, recorded on the version).

    A refusal (no reason, no target, a version that does not exist or was not vetted) fails at once
    without retrying; retries are for the registry being unreachable.
    """

    template_fields: Sequence[str] = ()
    ui_color = "#fce5cd"

    def execute(self, context: Any) -> dict:
        from retrain.errors import RollbackRefusedError
        from retrain_operators.base import without_retry
        from retrain_operators.hooks import MlflowHook

        params = dict(context.get("params") or {})
        model = params["model_name"]
        target = params.get("target_version")
        reason = (params.get("reason") or "").strip()
        force = params.get("force") is True
        actor = getattr(context.get("dag_run"), "triggering_user_name", None) or "unknown"
        try:
            if not reason:
                raise RollbackRefusedError(
                    "param 'reason' is required: say why you roll back (it is recorded on the version)"
                )
            target = None if target in (None, "") else str(target)
            result = MlflowHook().get_conn().rollback(model, target, reason, actor, force=force)
        except RollbackRefusedError as refused:
            raise without_retry(refused) from refused
        self.log.info(
            "ROLLED BACK %s: champion %s -> %s by %s%s: %s",
            model, result["from"], result["to"], actor, " (forced)" if force else "", reason,
        )  # fmt: skip
        return result
