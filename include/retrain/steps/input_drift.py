"""input_drift: each monitored day's scored rows against the drift reference of the version that scored them,
with the retraining gate's PSI and KS / chi-square code (retrain.drift)."""

from __future__ import annotations

import datetime as dt
import json
import math

from retrain.contracts import InputDriftResult, LiveMetricsResult
from retrain.drift import compute_drift
from retrain.monitoring import DayDrift
from retrain.pipeline import StepContext
from retrain.report import write_atomic
from retrain.scoring import days_window, feature_frame, read_rows


def run(ctx: StepContext) -> InputDriftResult:
    """PSI per feature per day (the label is not in rows to score, so only features); writes input_drift.json."""
    spec = ctx.spec
    live = ctx.input(LiveMetricsResult)
    days = [d for d in (live.days if live else ()) if d.get("version")]
    if not days:
        return InputDriftResult()
    first, last = dt.date.fromisoformat(days[0]["day"]), dt.date.fromisoformat(days[-1]["day"])
    rows = read_rows(spec, days_window(first, last), columns=list(spec.features.columns), engines=ctx.engines)
    ts = rows.frame.columns[0]
    on_day = rows.frame[ts].dt.date
    references: dict[str, object] = {}
    found = []
    for entry in days:
        version = str(entry["version"])
        if version not in references:
            references[version] = ctx.registry.reference_sample(ctx.registry.version(spec.name, version))
        current = feature_frame(rows.frame.loc[(on_day == dt.date.fromisoformat(entry["day"])).to_numpy()], spec)
        report = compute_drift(references[version], current, spec)
        psi = {c.column: (c.psi if math.isfinite(c.psi) else None) for c in report.columns}
        found.append(DayDrift(entry["day"], version, psi, tuple(report.drifted_features)))
    drifted = {d.day: list(d.drifted) for d in found if d.drifted}
    if drifted:
        ctx.log.warning("input drift against the scoring version's reference: %s", drifted)
    path = write_atomic(ctx.report_dir / "input_drift.json", json.dumps([d.to_dict() for d in found], indent=2))
    return InputDriftResult(days=tuple(d.to_dict() for d in found), reports={"input_drift_json": str(path)})
