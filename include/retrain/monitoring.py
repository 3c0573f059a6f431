"""Outcome monitoring: labels that arrive late joined to stored predictions, the live metric per day, and the
policy that asks for a retraining. Pure functions on frames and plain values; the steps read and write.

The policy, in order (`decide`):
1. only days whose labels are due count (a day D is due when D <= monitoring day - labels.delay_days);
   no due day scored: nothing to judge;
2. the latest due day must have at least `policy.min_labels` labelled rows, else "not enough labels";
3. a day breaches when its live metric is below `policy.min_score` (the floor) or more than `policy.max_drop`
   below the champion's evaluation score on the same metric;
4. a request needs the latest due day to breach and at least `policy.breaches` breaching days among the
   last `policy.days` calendar days up to it. Anything else is quiet, and a quiet run emits nothing.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from retrain.errors import DataError
from retrain.spec import ModelSpec, MonitorPolicySpec

LABEL = "label"
# Day statuses
PENDING = "pending"  # labels not due yet
INSUFFICIENT = "insufficient"  # due, too few labelled rows
UNDEFINED = "undefined"  # enough labels, but the metric cannot be computed (e.g. one class only)
OK = "ok"
BREACH = "breach"
SUPERSEDED = "superseded"  # scored by a version that is no longer champion: shown, not judged
NOT_JUDGED = (PENDING, SUPERSEDED)


@dataclass(frozen=True)
class Joined:
    """One day's predictions with the labels that arrived: `label` is NaN where none came."""

    frame: pd.DataFrame
    scored: int
    labelled: int
    duplicate_labels: int = 0  # label rows repeating another with the same key and value (counted once)
    conflicting_labels: int = 0  # keys with different labels: left out of the metric

    @property
    def coverage(self) -> float:
        return self.labelled / self.scored if self.scored else 0.0


def labels_frame(raw: pd.DataFrame, keys: Sequence[str], label_keys: Sequence[str], label_column: str,
                 task: str, source: str) -> pd.DataFrame:  # fmt: skip
    """The label feed as (keys..., `label`): key columns renamed to the prediction's, the label typed.

    Raises DataError naming the source and the column for a missing key or label column, or a label that is
    not a number (classification labels must be whole numbers, as the target the model was trained on).
    """
    missing = [c for c in (*label_keys, label_column) if c not in raw.columns]
    if missing:
        raise DataError(
            f"{source}: labels lack column(s) {missing} (rule: monitoring.labels.key_columns and label_column)"
        )
    values = raw[label_column]
    numbers = pd.to_numeric(values, errors="coerce")
    bad = numbers.isna() & values.notna()
    if bad.any() or (task == "classification" and (numbers.dropna() % 1 != 0).any()):
        examples = values[bad if bad.any() else numbers.notna() & (numbers % 1 != 0)].astype(str).unique()[:3].tolist()
        kind = "a number" if task == "regression" else "a whole number (a class label)"
        raise DataError(f"{source}: label column {label_column!r} holds values that are not {kind}, e.g. {examples}")
    frame = raw[list(label_keys)].rename(columns=dict(zip(label_keys, keys, strict=True)))
    frame[LABEL] = numbers.astype("float64")
    return frame[frame[LABEL].notna()]


def join_day(
    predictions: pd.DataFrame, labels: pd.DataFrame, keys: Sequence[str], source: str = "predictions"
) -> Joined:
    """The day's predictions left-joined to its labels on `keys`.

    Predictions must be unique per key (scoring guarantees it: a file that is not is named as broken).
    Labels repeated with the same value count once; a key with different labels is left out and counted.
    """
    keys = list(keys)
    if predictions.duplicated(keys).any():
        dups = predictions.loc[predictions.duplicated(keys), keys].head(3).to_dict("records")
        raise DataError(f"{source}: predictions repeat keys {dups} (rule: one prediction per key and day)")
    labels = labels.copy()
    for key in keys:
        if labels[key].dtype != predictions[key].dtype:
            try:
                labels[key] = labels[key].astype(predictions[key].dtype)
            except (TypeError, ValueError):
                raise DataError(
                    f"{source}: label key {key!r} ({labels[key].dtype}, e.g. {labels[key].astype(str).head(2).tolist()})"
                    f" cannot be matched with the predictions' {predictions[key].dtype} keys"
                ) from None
    distinct = labels.drop_duplicates([*keys, LABEL])
    duplicate = len(labels) - len(distinct)
    conflicted = distinct.duplicated(keys, keep=False)
    conflicting_keys = int(distinct.loc[conflicted, keys].drop_duplicates().shape[0])
    clean = distinct.loc[~conflicted]
    frame = predictions.merge(clean, on=keys, how="left", validate="1:1")
    return Joined(frame, len(frame), int(frame[LABEL].notna().sum()), duplicate, conflicting_keys)


def live_score(joined: pd.DataFrame, metric: str, task: str, classes: Sequence[Any] = ()) -> float | None:
    """The scikit-learn scorer `metric` on the labelled rows (None when undefined, e.g. one class only).

    Classifiers are scored from the stored probability of the positive class (binary) and the prediction;
    a probability-based metric on more than two classes cannot be computed from one stored probability.
    """
    from sklearn.metrics import get_scorer

    from retrain.evaluation import CachedClassifier, CachedRegressor, _score

    rows = joined[joined[LABEL].notna()]
    if rows.empty:
        return None
    y = rows[LABEL].to_numpy()
    if task == "classification":
        y = y.astype("int64")
        responses: dict[str, np.ndarray] = {"predict": rows["prediction"].to_numpy()}
        if "probability" in rows and len(classes) == 2:
            positive = rows["probability"].to_numpy(dtype=float)
            responses["predict_proba"] = np.column_stack([1.0 - positive, positive])
        cached = CachedClassifier(responses, np.asarray(classes if classes else np.unique(y)))
    else:
        cached = CachedRegressor({"predict": rows["prediction"].to_numpy(dtype=float)})
    try:
        return _score(get_scorer(metric), cached, np.arange(len(y)), y)
    except (KeyError, AttributeError):  # the metric needs probabilities this model's predictions do not carry
        return None


@dataclass(frozen=True)
class DayFigures:
    """One day of the live series: what was scored, how much of it is labelled, the metric, the status."""

    day: str
    version: str | None
    scored: int
    labelled: int
    value: float | None
    status: str
    rule: str = ""  # which rule a breaching day broke, with its numbers
    duplicate_labels: int = 0
    conflicting_labels: int = 0

    @property
    def coverage(self) -> float:
        return self.labelled / self.scored if self.scored else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "coverage": round(self.coverage, 4)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DayFigures:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in names})


def breach_rule(value: float, policy: MonitorPolicySpec, champion_score: float | None, metric: str) -> str:
    """Which rule a day's value breaks ('' when none), said with its numbers."""
    broken = []
    if policy.min_score is not None and value < policy.min_score:
        broken.append(f"{metric} {value:.4f} < floor min_score {policy.min_score}")
    if policy.max_drop is not None and champion_score is not None and champion_score - value > policy.max_drop:
        broken.append(
            f"{metric} {value:.4f} is {champion_score - value:.4f} below the champion's {champion_score:.4f}"
            f" > max_drop {policy.max_drop}"
        )
    return "; ".join(broken)


def day_figures(day: dt.date, joined: Joined, version: str | None, value: float | None, *, due: bool,
                current: bool, policy: MonitorPolicySpec, champion_score: float | None, metric: str) -> DayFigures:  # fmt: skip
    """A day's figures and status (see the module's policy). A day the current champion did not score
    (`current` False) is shown but not judged: the champion is not blamed for its predecessor's days."""
    if not current:
        status, rule = SUPERSEDED, ""
    elif not due:
        status, rule = PENDING, ""
    elif joined.labelled < policy.min_labels:
        status, rule = INSUFFICIENT, ""
    elif value is None or not math.isfinite(value):
        status, rule, value = UNDEFINED, "", None
    else:
        rule = breach_rule(value, policy, champion_score, metric)
        status = BREACH if rule else OK
    return DayFigures(day.isoformat(), version, joined.scored, joined.labelled, value, status, rule,
                      joined.duplicate_labels, joined.conflicting_labels)  # fmt: skip


@dataclass(frozen=True)
class Verdict:
    """What the policy says about the series: ask for a retraining or not, why, and the days it rests on."""

    request: bool
    kind: str  # request | quiet | not_enough_labels | undefined | nothing_due
    reason: str
    latest_day: str | None = None
    breaches: tuple[DayFigures, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "breaches": [b.to_dict() for b in self.breaches]}


def decide(days: Sequence[DayFigures], policy: MonitorPolicySpec, metric: str) -> Verdict:
    """The policy's verdict on a series of days (any order). Pure: the truth table is in tests/unit."""
    due = sorted((d for d in days if d.status not in NOT_JUDGED), key=lambda d: d.day)
    if not due:
        return Verdict(
            False, "nothing_due",
            "no day scored by the champion has its labels due yet: nothing to judge, nothing emitted",
        )  # fmt: skip
    latest = due[-1]
    if latest.status == INSUFFICIENT:
        return Verdict(
            False, "not_enough_labels",
            f"not enough labels on {latest.day}: {latest.labelled} of {latest.scored} scored rows labelled, the"
            f" policy needs {policy.min_labels} (monitoring.policy.min_labels); nothing emitted",
            latest.day,
        )  # fmt: skip
    if latest.status == UNDEFINED:
        return Verdict(False, "undefined", f"{metric} cannot be computed on {latest.day} (e.g. one class only);"
                       " nothing emitted", latest.day)  # fmt: skip
    first = dt.date.fromisoformat(latest.day) - dt.timedelta(days=policy.days - 1)
    window = [d for d in due if dt.date.fromisoformat(d.day) >= first]
    breaches = tuple(d for d in window if d.status == BREACH)
    count = f"{len(breaches)} of the last {policy.days} days breach (the policy asks {policy.breaches})"
    if latest.status != BREACH:
        return Verdict(False, "quiet", f"quiet: {metric} {latest.value:.4f} on {latest.day} breaks no rule; {count}",
                       latest.day, breaches)  # fmt: skip
    if len(breaches) < policy.breaches:
        return Verdict(
            False, "quiet", f"quiet: {latest.day} breaches ({latest.rule}) but {count}", latest.day, breaches
        )
    listed = ", ".join(f"{b.day} {b.value:.4f}" for b in breaches)
    return Verdict(
        True, "request",
        f"live {metric} breached on {len(breaches)} of the last {policy.days} days up to {latest.day} ({listed});"
        f" latest: {latest.rule}",
        latest.day, breaches,
    )  # fmt: skip


def request_extra(verdict: Verdict, *, model: str, metric: str, champion_version: str | None,
                  champion_score: float | None, end_date: dt.date, monitor_day: dt.date) -> dict[str, Any]:  # fmt: skip
    """The request event's payload: the reason in words, the metric, the days, the champion, and the window end
    the retraining should use (the monitoring day's end)."""
    return {
        "reason": verdict.reason,
        "model": model,
        "metric": metric,
        "days": [{"day": b.day, "value": b.value, "rule": b.rule} for b in verdict.breaches],
        "latest_day": verdict.latest_day,
        "champion_version": champion_version,
        "champion_score": champion_score,
        "monitor_day": monitor_day.isoformat(),
        "end_date": end_date.isoformat(),
    }


def champion_score(evaluation_json: str | None, metric: str, primary: str) -> float | None:
    """The champion's score on `metric` at its evaluation (its `retrain.evaluation` tag), or None."""
    import json

    if not evaluation_json:
        return None
    try:
        challenger = (json.loads(evaluation_json) or {}).get("challenger") or {}
    except ValueError:
        return None
    value = challenger.get("primary") if metric == primary else (challenger.get("secondary") or {}).get(metric)
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


# The report


def _plot(x: list[str], series: Mapping[str, list[float | None]], lines: Mapping[str, float], title: str,
          ylabel: str) -> str:  # fmt: skip
    """A PNG (data URI) of named series per day, with horizontal reference lines."""
    import base64
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 2.8), dpi=80)
    for name, values in series.items():
        ax.plot(x, [np.nan if v is None else v for v in values], marker="o", label=name)
    for name, level in lines.items():
        ax.axhline(level, linestyle="--", linewidth=1, color="grey" if "champion" in name else "red", label=name)
    ax.set_title(title, fontsize=9)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(axis="x", labelsize=7, rotation=30)
    ax.legend(fontsize=7)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def render_html(spec: ModelSpec, days: Sequence[DayFigures], drift: Sequence[Mapping[str, Any]], verdict: Verdict,
                *, champion_version: str | None, champion_score: float | None, monitor_day: dt.date) -> str:  # fmt: skip
    """The monitoring report: the verdict, the live metric against the champion's score and the thresholds, PSI
    per feature, and a table of the days. Every value from the data is escaped."""
    esc = html.escape
    assert spec.monitoring is not None
    metric, policy = spec.monitoring.metric, spec.monitoring.policy
    ordered = sorted(days, key=lambda d: d.day)
    x = [d.day for d in ordered]
    lines: dict[str, float] = {}
    if champion_score is not None:
        lines[f"champion v{champion_version} at evaluation"] = champion_score
        if policy.max_drop is not None:
            lines["champion - max_drop"] = champion_score - policy.max_drop
    if policy.min_score is not None:
        lines["floor min_score"] = policy.min_score
    metric_plot = (
        _plot(x, {f"live {metric}": [d.value for d in ordered]}, lines, f"live {metric} per day", metric) if x else ""
    )
    by_day = {d["day"]: d for d in drift}
    features = sorted({f for d in drift for f in (d.get("psi") or {})})
    psi_plot = _plot(x, {f: [(by_day.get(day) or {}).get("psi", {}).get(f) for day in x] for f in features},
                     {"psi_threshold": spec.drift.psi_threshold}, "PSI of the scored rows per feature", "PSI") if x and features else ""  # fmt: skip
    rows = "".join(
        f'<tr class="{esc(d.status)}"><td>{esc(d.day)}</td><td>{esc(str(d.version or ""))}</td><td>{d.scored}</td>'
        f"<td>{d.labelled} ({d.coverage:.0%})</td><td>{'' if d.value is None else f'{d.value:.4f}'}</td>"
        f"<td>{esc(d.status)}</td><td>{esc(d.rule)}</td>"
        f"<td>{esc(', '.join((by_day.get(d.day) or {}).get('drifted') or []))}</td></tr>"
        for d in ordered
    )
    verdict_class = "request" if verdict.request else "quiet"
    images = "".join(f'<figure><img alt="trend" src="{src}"></figure>' for src in (metric_plot, psi_plot) if src)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Monitoring {esc(spec.name)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.25em .5em}}
tr.breach td{{background:#fde2e1}}tr.insufficient td,tr.pending td{{color:#777}}.request{{color:#b00020}}.quiet{{color:#1a7f37}}</style></head><body>
<h1>Monitoring {esc(spec.name)} on {monitor_day.isoformat()}: <span class="{verdict_class}">{"RETRAINING REQUESTED" if verdict.request else "no request"}</span></h1>
<p>{esc(verdict.reason)}</p>
<p>Live metric {esc(metric)}; champion {esc(str(champion_version or "none"))} scored {esc("—" if champion_score is None else f"{champion_score:.4f}")}
at its evaluation. Policy: floor {policy.min_score}, max_drop {policy.max_drop}, {policy.breaches} breaches in {policy.days} days,
at least {policy.min_labels} labels a day; labels are due {spec.monitoring.labels.delay_days} days after the day they describe.</p>
{images}
<table><tr><th>day</th><th>version</th><th>scored</th><th>labelled</th><th>{esc(metric)}</th><th>status</th><th>rule broken</th><th>drifted features</th></tr>
{rows}</table></body></html>"""


@dataclass(frozen=True)
class DayDrift:
    """One day's input drift: PSI per feature and the features that drifted, against one version's reference."""

    day: str
    version: str | None
    psi: Mapping[str, float | None] = field(default_factory=dict)
    drifted: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"day": self.day, "version": self.version, "psi": dict(self.psi), "drifted": list(self.drifted)}
