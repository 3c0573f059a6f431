"""Drift gate: the new window against the champion's training data, with the spec's retrain policy."""

from __future__ import annotations

import json
import tempfile
from typing import Any

from airflow.sdk import BaseOperator

from retrain_operators import common


class CheckDriftOperator(BaseOperator):
    """Writes drift.json and drift.html and pushes the summary to XCom (key `drift`).

    No champion yet: nothing to compare, the run trains. With `drift.retrain: on_drift` and no drift,
    the run ends here *skipped* (not failed) unless the trigger set `force`.
    """

    ui_color = "#d0e0e3"

    def __init__(self, *, spec, **kwargs) -> None:
        super().__init__(**kwargs)
        self.spec = spec

    def execute(self, context: Any) -> dict:
        import pandas as pd
        from airflow.sdk.exceptions import AirflowSkipException

        from retrain import registry as reg
        from retrain.data import read_window
        from retrain.drift import compute_drift, render_html, should_skip
        from retrain.errors import RegistryError
        from retrain.features import typed_frame
        from retrain.report import write_atomic

        spec = self.spec
        common.tracking_uri()
        client = reg.client()
        champion = reg.get_champion(client, spec.name)
        if champion is None:
            self.log.info("no champion yet for %s: nothing to compare, the run trains", spec.name)
            summary = {"status": "no_champion", "any_drift": None}
            context["ti"].xcom_push(key="drift", value=summary)
            return summary

        import mlflow.artifacts

        with tempfile.TemporaryDirectory() as tmp:
            try:
                path = mlflow.artifacts.download_artifacts(
                    run_id=champion.run_id, artifact_path=reg.REFERENCE_ARTIFACT, dst_path=tmp
                )
            except Exception as error:  # noqa: BLE001 - MLflow raises several types for a missing artifact
                raise RegistryError(
                    f"{spec.name} champion version {champion.version} (run {champion.run_id}) has no drift reference"
                    f" artifact {reg.REFERENCE_ARTIFACT}: {error}"
                ) from None
            reference = pd.read_parquet(path)
        window = common.resolve_window(context, spec)
        current = typed_frame(read_window(spec, window, columns=[*spec.features.columns, spec.target]).frame, spec)
        report = compute_drift(reference, current, spec)
        directory = common.report_dir(context, spec)
        json_path = write_atomic(directory / "drift.json", json.dumps(report.to_dict(), indent=2))
        html_path = write_atomic(
            directory / "drift.html", render_html(report, reference, current, str(window), champion.version)
        )
        summary = {
            "status": "compared",
            "champion_version": str(champion.version),
            "any_drift": report.any_drift,
            "drifted_features": report.drifted_features,
            "label_drifted": report.label_drifted,
            "max_psi": report.to_dict()["max_psi"],
            "report_html": str(html_path),
            "report_json": str(json_path),
        }
        context["ti"].xcom_push(key="drift", value=summary)
        if report.any_drift:
            self.log.warning(
                "DRIFT against champion v%s: features %s%s (report %s)",
                champion.version, report.drifted_features, ", label" if report.label_drifted else "", html_path,
            )  # fmt: skip
        else:
            self.log.info(
                "no drift against champion v%s (max PSI %.3f); report %s", champion.version, report.max_psi, html_path
            )
        reason = should_skip(report, spec, bool(common.params(context).get("force")))
        if reason:
            raise AirflowSkipException(reason)
        return summary
