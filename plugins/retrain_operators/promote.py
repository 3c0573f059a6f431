"""Promotion and rollback: the only steps that move the `champion` alias."""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.sdk import BaseOperator

from retrain.errors import RollbackRefusedError
from retrain_operators import common
from retrain_operators.notify import promotion_notifiers


class PromoteModelOperator(BaseOperator):
    """Moves `champion` to the evaluated version when the evaluation decided so.

    Declined, dry-run and already-champion runs end *skipped*, so the model Asset (the outlet) is
    only updated by a real promotion. Runs in the one-slot promotion pool.
    """

    ui_color = "#f4cccc"

    def __init__(self, *, spec, **kwargs) -> None:
        kwargs.setdefault("on_success_callback", promotion_notifiers())
        super().__init__(**kwargs)
        self.spec = spec

    def execute(self, context: Any) -> dict:
        from airflow.sdk.exceptions import AirflowSkipException

        from retrain import registry as reg

        evaluation = context["ti"].xcom_pull(task_ids="evaluate")
        if not evaluation:
            raise ValueError("no evaluation result in XCom from task 'evaluate'; rerun the evaluate task")
        version = evaluation["model_version"]
        reasons = "; ".join(evaluation["reasons"])
        if evaluation.get("already_champion"):
            raise AirflowSkipException(f"version {version} is already champion: nothing to promote")
        if not evaluation["promote"]:
            raise AirflowSkipException(f"policy declined version {version}: {reasons}")
        if common.params(context).get("dry_run"):
            raise AirflowSkipException(f"dry run: would promote version {version} ({reasons}); no alias moved")
        common.tracking_uri()
        client = reg.client()
        expected = evaluation.get("champion_version_at_evaluation")
        after = reg.promote(client, self.spec.name, version, expected_champion=expected)
        stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        client.set_model_version_tag(self.spec.name, version, "retrain.promoted_at", stamp)
        client.set_model_version_tag(self.spec.name, version, "retrain.promoted_by_run", context["run_id"])
        client.set_model_version_tag(self.spec.name, version, reg.TAG_DECISION, "promoted")
        self.log.info(
            "PROMOTED %s version %s to '%s' (previous: %s)%s. Reasons: %s",
            self.spec.name, version, reg.CHAMPION_ALIAS, after[reg.PREVIOUS_ALIAS],
            " [forced]" if evaluation.get("forced") else "", reasons,
        )  # fmt: skip
        return {"model": self.spec.name, "aliases": after, "version": version}


class RollbackOperator(BaseOperator):
    """Moves `champion` back to `previous` or to a given version that once passed evaluation."""

    ui_color = "#fce5cd"

    def execute(self, context: Any) -> dict:
        from retrain import registry as reg

        params = common.params(context)
        model = params["model_name"]
        target = params.get("target_version")
        reason = (params.get("reason") or "").strip()
        if not reason:
            refused = ValueError("param 'reason' is required: say why you roll back (it is recorded on the version)")
            raise common.without_retry(refused)
        dag_run = context.get("dag_run")
        actor = getattr(dag_run, "triggering_user_name", None) or "unknown"
        common.tracking_uri()
        try:
            result = reg.rollback(reg.client(), model, str(target) if target not in (None, "") else None, reason, actor)
        except RollbackRefusedError as refused:
            # A refusal is a rule, not a hiccup: fail now instead of retrying (retries are for the registry being down).
            raise common.without_retry(refused) from refused
        self.log.info("ROLLED BACK %s: champion %s -> %s by %s: %s", model, result["from"], result["to"], actor, reason)
        return result
