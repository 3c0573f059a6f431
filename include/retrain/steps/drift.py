"""check_drift: the new window against the champion's training data, with the spec's retrain policy."""

from __future__ import annotations

import json

from retrain.contracts import DriftResult
from retrain.drift import render_html, should_skip
from retrain.errors import StepSkipped
from retrain.pipeline import StepContext
from retrain.report import write_atomic


def run(ctx: StepContext) -> DriftResult:
    """Writes drift.json and drift.html and returns the summary.

    No champion yet: nothing to compare, the run trains. With `drift.retrain: on_drift` and no drift,
    raises StepSkipped (the run ends skipped, not failed) unless the trigger set `force`.
    """
    spec, window = ctx.spec, ctx.run.window
    champion = ctx.registry.champion(spec.name)
    if champion is None:
        ctx.log.info("no champion yet for %s: nothing to compare, the run trains", spec.name)
        return DriftResult(compared=False)
    reference = ctx.registry.reference_sample(champion)
    drifted = ctx.source.drift(reference, window)  # files: on the worker; a database: counted there
    report, current = drifted.report, drifted.current
    document = {**report.to_dict(), "method": drifted.method, "source": ctx.source.describe()}
    json_path = write_atomic(ctx.report_dir / "drift.json", json.dumps(document, indent=2))
    html_path = write_atomic(
        ctx.report_dir / "drift.html",
        render_html(report, reference, current, str(window), champion.version, method=drifted.method),
    )
    result = DriftResult(
        compared=True,
        champion_version=champion.version,
        any_drift=report.any_drift,
        drifted_features=tuple(report.drifted_features),
        label_drifted=report.label_drifted,
        max_psi=report.to_dict()["max_psi"],
        reports={"drift_html": str(html_path), "drift_json": str(json_path)},
    )
    if report.any_drift:
        ctx.log.warning(
            "DRIFT against champion v%s: features %s%s (report %s)",
            champion.version, report.drifted_features, ", label" if report.label_drifted else "", html_path,
        )  # fmt: skip
    else:
        ctx.log.info(
            "no drift against champion v%s (max PSI %.3f); report %s", champion.version, report.max_psi, html_path
        )
    reason = should_skip(report, spec, ctx.run.options.force)
    if reason:
        raise StepSkipped(reason, output=result)
    return result
