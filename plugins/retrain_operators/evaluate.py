"""Evaluation gate: champion and challenger on the same holdout, the policy's decision, the audit trail."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator

from retrain_operators import common

TAG_VALUE_LIMIT = 5000


class EvaluateModelOperator(BaseOperator):
    """Scores the new version and the current champion on this run's holdout and decides.

    Every evaluated version is tagged with the decision, the reasons, both models' metrics, the
    Airflow run, the window, the data hash, the report locations and the code version. Nothing
    here moves an alias: `promote` does, from this task's XCom.
    """

    ui_color = "#fff2cc"

    def __init__(self, *, spec, **kwargs) -> None:
        super().__init__(**kwargs)
        self.spec = spec

    def execute(self, context: Any) -> dict:
        import mlflow.sklearn

        from retrain import registry as reg
        from retrain.evaluation import compare
        from retrain.features import feature_matrix, read_partition
        from retrain.policy import decide
        from retrain.report import render_run_report, write_atomic

        spec = self.spec
        # We load only models our own training job wrote to our own registry; MLflow asks for an
        # explicit opt-in before deserializing any model (skops included).
        os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] = "true"
        common.tracking_uri()
        client = reg.client()
        ti = context["ti"]
        trained = ti.xcom_pull(task_ids="train") or self._result_from_mlflow(client, context)
        version = str(trained["model_version"])
        params = common.params(context)
        window = common.resolve_window(context, spec)

        train_df, holdout_df, manifest = read_partition(common.features_dir(context, spec))
        X_holdout, y_holdout = feature_matrix(holdout_df, spec)
        champion = reg.get_champion(client, spec.name)
        champion_version = None if champion is None else str(champion.version)
        challenger_model = mlflow.sklearn.load_model(f"models:/{spec.name}/{version}")
        champion_model = None
        if champion is not None and champion_version != version:
            champion_model = mlflow.sklearn.load_model(f"models:/{spec.name}/{champion_version}")

        comparison = compare(champion_model, challenger_model, X_holdout, y_holdout, train_df[spec.target], spec)
        decision = decide(comparison, spec.promotion, force_promote=bool(params.get("force_promote")))
        already_champion = champion_version == version
        reports = self._reports(ti)
        directory = common.report_dir(context, spec)
        summary = {
            "model": spec.name,
            "model_version": version,
            "challenger_version": version,
            "run_id": context["run_id"],
            "mlflow_run_id": trained["run_id"],
            "champion_version_at_evaluation": champion_version,
            "champion_version": champion_version,
            "already_champion": already_champion,
            "promote": decision.promote and not already_champion,
            "forced": decision.forced,
            "reasons": list(decision.reasons),
            "decision": decision.to_dict(),
            "dry_run": bool(params.get("dry_run")),
            "metric": spec.evaluation.metric,
            "window": str(window),
            "window_end": window.end_date.isoformat(),
            "input_hash": manifest["input_hash"],
            "comparison": comparison.to_dict(),
            "metric_table": self._metric_table(comparison.to_dict()),
            "reports": reports,
        }
        history = self._history(client)
        report_json = write_atomic(directory / "evaluation.json", json.dumps(summary, indent=2, default=str))
        report_html = write_atomic(directory / "evaluation.html", render_run_report(summary, history))
        summary["reports"] = {**reports, "evaluation_html": str(report_html), "evaluation_json": str(report_json)}

        self._record(client, summary, decision, trained["run_id"], context)
        verdict = "PROMOTE" if summary["promote"] else ("ALREADY CHAMPION" if already_champion else "DECLINE")
        self.log.info(
            "%s %s version %s vs champion %s: %s. Run report: %s",
            verdict, spec.name, version, champion_version, "; ".join(decision.reasons), report_html,
        )  # fmt: skip
        return {key: summary[key] for key in (
            "model", "model_version", "mlflow_run_id", "champion_version_at_evaluation", "already_champion",
            "promote", "forced", "reasons", "dry_run", "window_end", "metric", "reports",
        )}  # fmt: skip

    def _result_from_mlflow(self, client, context: Any) -> dict:
        """The XCom of `train` can be missing (a pod whose sidecar failed): find the run by its tags."""
        from retrain import registry as reg
        from retrain.errors import TrainingError

        query = f"name = '{self.spec.name}' and tags.`{reg.TAG_RUN_ID}` = '{context['run_id']}'"
        versions = sorted(client.search_model_versions(query), key=lambda v: int(v.version))
        if not versions:
            raise TrainingError(
                f"no result from task 'train' in XCom and no model version of {self.spec.name} tagged with"
                f" {reg.TAG_RUN_ID}={context['run_id']} in MLflow: the training did not register a model"
            )
        latest = versions[-1]
        self.log.warning("XCom of 'train' missing: using version %s found in MLflow by run tags", latest.version)
        return {"model_version": latest.version, "run_id": latest.run_id}

    @staticmethod
    def _reports(ti) -> dict[str, str | None]:
        validation = ti.xcom_pull(task_ids="validate_data") or {}
        drift = ti.xcom_pull(task_ids="check_drift", key="drift") or {}
        return {
            "validation_html": validation.get("report_html"),
            "validation_json": validation.get("report_json"),
            "drift_html": drift.get("report_html"),
            "drift_json": drift.get("report_json"),
        }

    @staticmethod
    def _metric_table(comparison: dict) -> dict[str, dict[str, float | None]]:
        challenger = comparison.get("challenger") or {}
        champion = comparison.get("champion") or {}
        table = {
            comparison.get("metric", "primary"): {
                "challenger": challenger.get("primary"),
                "champion": champion.get("primary"),
            }
        }
        for name, value in (challenger.get("secondary") or {}).items():
            table[name] = {"challenger": value, "champion": (champion.get("secondary") or {}).get(name)}
        if comparison.get("baseline") is not None:
            table["baseline (majority / mean)"] = {"challenger": comparison["baseline"], "champion": None}
        return table

    def _history(self, client) -> list[dict]:
        from retrain import registry as reg

        history = []
        for mv in client.search_model_versions(f"name = '{self.spec.name}'"):
            tags = mv.tags or {}
            if "retrain.challenger_score" not in tags:
                continue
            history.append(
                {
                    "version": mv.version,
                    "window_end": tags.get(reg.TAG_WINDOW_END, "?"),
                    "challenger": float(tags["retrain.challenger_score"]),
                    "champion": float(tags["retrain.champion_score"]) if tags.get("retrain.champion_score") else None,
                    "decision": tags.get(reg.TAG_DECISION),
                }
            )
        return history

    def _record(self, client, summary: dict, decision, mlflow_run_id: str, context: Any) -> None:
        """Tags on the version (the audit trail) and the reports as artifacts of the training run."""
        from retrain import registry as reg
        from retrain.train import code_version

        comparison = summary["comparison"]
        challenger_score = (comparison.get("challenger") or {}).get("primary")
        champion_score = (comparison.get("champion") or {}).get("primary")
        if summary["already_champion"]:
            decision_tag = "champion"
        elif not decision.promote:
            decision_tag = "declined"
        else:
            decision_tag = "dry_run_would_promote" if summary["dry_run"] else "approved"
        tags = {
            reg.TAG_DECISION: decision_tag,
            reg.TAG_PASSED_EVALUATION: "true" if decision.promote else "false",
            "retrain.forced": str(decision.forced).lower(),
            "retrain.reasons": " | ".join(decision.reasons),
            "retrain.metric": summary["metric"],
            "retrain.challenger_score": "" if challenger_score is None else repr(challenger_score),
            "retrain.champion_score": "" if champion_score is None else repr(champion_score),
            "retrain.champion_version_at_evaluation": summary["champion_version_at_evaluation"] or "",
            "retrain.evaluation": json.dumps(comparison, default=str),
            "retrain.evaluated_by_run": context["run_id"],
            reg.TAG_DAG_ID: self.spec.dag_id,
            reg.TAG_WINDOW_END: summary["window_end"],
            reg.TAG_INPUT_HASH: summary["input_hash"],
            reg.TAG_CODE_VERSION: code_version(),
            **{f"retrain.report.{k}": v for k, v in summary["reports"].items() if v},
        }
        version = summary["model_version"]
        for key, value in tags.items():
            client.set_model_version_tag(self.spec.name, version, key, str(value)[:TAG_VALUE_LIMIT])
        for key in (
            "validation_html",
            "validation_json",
            "drift_html",
            "drift_json",
            "evaluation_html",
            "evaluation_json",
        ):
            path = summary["reports"].get(key)
            if path and Path(path).exists():
                client.log_artifact(mlflow_run_id, path, artifact_path="reports")
