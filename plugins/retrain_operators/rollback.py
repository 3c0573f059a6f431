"""Rollback: move a model's `champion` back to `previous` or to a vetted version, by hand."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator


class RollbackOperator(BaseOperator):
    """Moves `champion` back to `previous` or to a given version that passed the policy in a real run (any
    existing version with the form's `force`, recorded on the version).

    A refusal (no reason, no target, a version that does not exist, was not vetted or that a reviewer
    declined) fails at once without retrying; retries are for the registry being unreachable. The log names
    what the rollback restores, from the champion history.
    """

    template_fields: Sequence[str] = ()
    ui_color = "#fce5cd"

    def execute(self, context: Any) -> dict:
        from retrain.errors import RollbackRefusedError
        from retrain.history import describe
        from retrain_operators.base import without_retry
        from retrain_operators.hooks import MlflowHook

        params = dict(context.get("params") or {})
        model = params["model_name"]
        target = params.get("target_version")
        reason = (params.get("reason") or "").strip()
        force = params.get("force") is True
        actor = getattr(context.get("dag_run"), "triggering_user_name", None) or "unknown"
        registry = MlflowHook().get_conn()
        try:
            if not reason:
                raise RollbackRefusedError(
                    "param 'reason' is required: say why you roll back (it is recorded on the version)"
                )
            before = registry.champion_history(model)
            target = None if target in (None, "") else str(target)
            result = registry.rollback(model, target, reason, actor, force=force, run_id=context["run_id"])
        except RollbackRefusedError as refused:
            raise without_retry(refused) from refused
        # What the restored version's last reign was, as the champion history recorded it.
        reign = [move for move in before if move.to_version == result["to"]]
        restores = f"; it was champion since {describe(reign[-1])}" if reign else "; no earlier reign in the history"
        self.log.info(
            "ROLLED BACK %s: champion %s -> %s by %s%s: %s%s",
            model, result["from"], result["to"], actor, " (forced)" if force else "", reason, restores,
        )  # fmt: skip
        return {**result, "restores": restores.removeprefix("; ")}
