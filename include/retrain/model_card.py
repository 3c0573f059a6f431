"""The model card of a version: what it is, what it was trained on, how it compares, what was decided and by whom.

Written by `evaluate` as artifacts of the version's MLflow run, `model_card/card.json` (for programs) and
`model_card/card.html` (for people), and updated by `approve_promotion` and `promote`, so it is complete when
the run ends, whatever the decision. The version's registry description says what the version is in one
paragraph and where its card is. Every key is always present; a value is None where it does not apply.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from retrain import markdown
from retrain.settings import redact_uri, resolve_data_uri

if TYPE_CHECKING:
    from retrain.contracts import DriftResult, ReviewResult, StepOutput, ValidationResult
    from retrain.options import Run
    from retrain.registry import Registry, TrackedRun
    from retrain.spec import ModelSpec

SCHEMA = "retrain.model_card/1"
CARD_FOLDER = "model_card"
CARD_JSON = f"{CARD_FOLDER}/card.json"
CARD_HTML = f"{CARD_FOLDER}/card.html"
REPORTS_FOLDER = "reports"  # where `evaluate` uploads the run's reports


def source_location(spec: ModelSpec) -> str:
    """Where the version's data came from, without credentials: the files' address, or the table or query and
    the Airflow connection's id."""
    data = spec.data
    return redact_uri(resolve_data_uri(data.uri)) if data.uri is not None else data.location


def artifact_url(ui_base: str | None, experiment_id: str, run_id: str, path: str) -> str | None:
    """The MLflow UI page showing one artifact of a run (None without a web address for MLflow)."""
    if not ui_base:
        return None
    return f"{ui_base}/#/experiments/{quote(experiment_id)}/runs/{quote(run_id)}/artifactPath/{quote(path)}"


def build(
    spec: ModelSpec,
    run: Run,
    *,
    version: str,
    tracked: TrackedRun,
    partition: Mapping[str, Any],
    validation: ValidationResult | None,
    drift: DriftResult | None,
    comparison: Mapping[str, Any],
    champion_version: str | None,
    policy: Mapping[str, Any],
    status: str,
    reports: Mapping[str, str],
    ui_base: str | None,
) -> dict[str, Any]:
    """The card as `evaluate` writes it: everything but the review and the promotion, which come later."""
    from retrain.tags import Tag

    def url(path: str) -> str | None:
        return artifact_url(ui_base, tracked.experiment_id, tracked.run_id, path)

    report_files = {name: path.replace("\\", "/").rsplit("/", 1)[-1] for name, path in reports.items() if path}
    return {
        "schema": SCHEMA,
        "model": {
            "name": spec.name,
            "version": version,
            "task": spec.task,
            "description": spec.description,
            "intended_use": spec.intended_use,
        },
        "estimator": {
            "class": spec.model.estimator,
            "params": {k.removeprefix("model."): v for k, v in sorted(tracked.params.items()) if k.startswith("model.")},
            "random_state": spec.model.random_state,
        },
        "data": {
            "source": source_location(spec),
            "timestamp_column": spec.data.timestamp_column,
            "target": spec.target,
            "features": {"numeric": list(spec.features.numeric), "categorical": list(spec.features.categorical)},
            "window": run.window.to_dict(),
            "rows": {"train": partition.get("train_rows"), "holdout": partition.get("holdout_rows")},
            "hashes": {
                "input": partition.get("input_hash"),
                "train": partition.get("train_hash"),
                "holdout": partition.get("holdout_hash"),
            },
            "feature_partition": partition.get("path"),
        },
        "code": {"version": tracked.tags.get(Tag.CODE_VERSION)},
        "airflow": {
            "dag_id": spec.dag_id,
            "trained_by_run": tracked.tags.get(Tag.RUN_ID),
            "trained_by_trigger": {
                "kind": tracked.tags.get(Tag.TRIGGER) or run.trigger.kind,
                "reason": tracked.tags.get(Tag.TRIGGER_REASON, run.trigger.reason),
            },
            "evaluated_by_run": run.run_id,
            "evaluated_by_trigger": {"kind": run.trigger.kind, "reason": run.trigger.reason},
        },
        "evaluation": {
            "metric": comparison.get("metric"),
            "holdout_rows": comparison.get("holdout_rows"),
            "champion_version": champion_version,
            "challenger": comparison.get("challenger"),
            "champion": comparison.get("champion"),
            "baseline": comparison.get("baseline"),
            "bootstrap": comparison.get("bootstrap"),
        },
        "validation": _summary(validation, "success", "rows", "warnings", "statistics"),
        "drift": _summary(
            drift, "compared", "champion_version", "any_drift", "drifted_features", "label_drifted", "max_psi"
        ),
        "decision": {
            "status": status,
            "promote": policy.get("promote"),
            "forced": policy.get("forced"),
            "reasons": list(policy.get("reasons") or ()),
            "dry_run": run.options.dry_run,
        },
        "review": {
            "mode": spec.promotion.approval,
            "status": "not_asked",
            "requested_at": None,
            "assigned_to": list(spec.promotion.approvers),
            "by": None,
            "at": None,
            "comment": None,
            "timed_out": None,
            "reason": None,
        },
        "promotion": {"status": "not_promoted", "kind": None, "at": None, "by_run": None, "previous": None, "message": None},
        "reports": {
            name: {"artifact": f"{REPORTS_FOLDER}/{file}", "url": url(f"{REPORTS_FOLDER}/{file}")}
            for name, file in sorted(report_files.items())
        },
        "card": {
            "run_id": tracked.run_id,
            "experiment_id": tracked.experiment_id,
            "json": CARD_JSON,
            "html": CARD_HTML,
            "json_url": url(CARD_JSON),
            "html_url": url(CARD_HTML),
            "updated_at": None,
        },
    }


def _summary(output: StepOutput | None, *names: str) -> dict[str, Any] | None:
    """Some fields of a step's output, as JSON values (None when the step recorded nothing)."""
    return None if output is None else {name: output.to_xcom()[name] for name in names}


def with_status(card: Mapping[str, Any], status: str) -> dict[str, Any]:
    """The card with the version's decision status (a Decision value) replaced."""
    return {**card, "decision": {**card["decision"], "status": status}}


def with_review(card: Mapping[str, Any], review: ReviewResult, status: str, *, requested_at: str | None = None) -> dict:
    """The card with the review: asked (outcome "awaiting"), answered, timed out, or not required."""
    current = card["review"]
    answer = {
        "status": review.outcome,
        "requested_at": requested_at or current.get("requested_at"),
        "by": review.by,
        "at": review.at,
        "comment": review.comment or None,
        "timed_out": review.timed_out,
        "reason": review.reason or None,
    }
    return with_status({**card, "review": {**current, **answer}}, status)


def with_promotion(card: Mapping[str, Any], status: str, **promotion: Any) -> dict[str, Any]:
    """The card with the promotion's outcome: status "promoted" (kind, at, by_run, previous) or "refused" (message)."""
    return {**card, "promotion": {**card["promotion"], "status": status, **promotion}}


def publish(registry: Registry, model: str, card: Mapping[str, Any]) -> None:
    """Writes card.json and card.html to the version's run and the one-paragraph description to the version."""
    card = {**card, "card": {**card["card"], "updated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}}
    run_id = card["card"]["run_id"]
    registry.log_text(run_id, json.dumps(card, indent=2, sort_keys=True, default=str), CARD_JSON)
    registry.log_text(run_id, render_html(card), CARD_HTML)
    registry.set_description(model, card["model"]["version"], description(card))


def update(registry: Registry, model: str, run_id: str, change: Callable[[dict], dict]) -> dict[str, Any]:
    """Reads the card `evaluate` wrote to the run, applies `change`, publishes the result and returns it."""
    card = change(registry.read_json(run_id, CARD_JSON))
    publish(registry, model, card)
    return card


def description(card: Mapping[str, Any]) -> str:
    """One paragraph (Markdown, every value escaped): what the version is, what it was trained on, what was
    decided, and where its card is."""
    return summary(card, markdown.escape)


def _plain(value: Any, limit: int = 2000) -> str:
    text = " ".join(str("" if value is None else value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def summary(card: Mapping[str, Any], e: Callable[..., str] = _plain) -> str:
    """The one-paragraph summary, each value through `e` (plain text by default; Markdown-escaped for the
    registry's description)."""
    model, data, decision = card["model"], card["data"], card["decision"]
    window = data["window"]
    review, promotion = card["review"], card["promotion"]
    parts = [
        f"{e(model['name'])} version {e(model['version'])}: a {e(card['estimator']['class'])} {e(model['task'])}"
        f" model{(' for ' + e(model['description'], 300)) if model['description'] else ''},",
        f"trained by Airflow run {e(card['airflow']['trained_by_run'])} of {e(card['airflow']['dag_id'])}",
        f"on {e(data['source'], 300)} from {e(window['start'][:10])} to {e(window['end'][:10])}"
        f" ({e(data['rows']['train'])} training and {e(data['rows']['holdout'])} holdout rows,"
        f" input hash {e(str(data['hashes']['input'])[:12])}), code {e(str(card['code']['version'])[:12])}.",
        f"Decision: {e(decision['status'])}"
        + (f" ({e(decision['reasons'][0], 300)})" if decision["reasons"] else "")
        + ".",
    ]
    if review["status"] not in ("not_asked", "not_required"):
        parts.append(f"Review: {e(review['status'])} by {e(review['by'] or 'nobody')} at {e(review['at'] or '?')}.")
    if promotion["status"] != "not_promoted":
        parts.append(f"Promotion: {e(promotion['status'])} {e(promotion['at'] or promotion['message'] or '', 300)}.")
    if model["intended_use"]:
        parts.append(f"Intended use and limits: {e(model['intended_use'].rstrip('. '), 600)}.")
    location = card["card"]
    card_uri = f"runs:/{location['run_id']}/{location['html']}"
    parts.append(f"Model card: {e(card_uri)} (JSON: {e(location['json'])}).")
    return " ".join(parts)


def render_html(card: Mapping[str, Any]) -> str:
    """The card as a page a person reads; every value from the spec or the data is escaped."""
    esc = html.escape
    model, data, evaluation = card["model"], card["data"], card["evaluation"]
    decision, review, promotion = card["decision"], card["review"], card["promotion"]

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return esc(markdown.number(value))
        if isinstance(value, Mapping | list):
            return f"<code>{esc(json.dumps(value, sort_keys=True, default=str))}</code>"
        return esc("—" if value is None or value == "" else str(value))

    def rows(mapping: Mapping[str, Any]) -> str:
        return "".join(f"<tr><th>{esc(str(k))}</th><td>{cell(v)}</td></tr>" for k, v in mapping.items())

    challenger, champion = evaluation.get("challenger") or {}, evaluation.get("champion") or {}
    metric_rows = [(evaluation.get("metric"), challenger.get("primary"), champion.get("primary"))]
    metric_rows += [
        (name, value, (champion.get("secondary") or {}).get(name))
        for name, value in (challenger.get("secondary") or {}).items()
    ]
    metric_rows.append(("baseline (prior / mean)", evaluation.get("baseline"), None))
    metrics = "".join(f"<tr><td>{cell(n)}</td><td>{cell(a)}</td><td>{cell(b)}</td></tr>" for n, a, b in metric_rows)
    slices = "".join(
        f"<tr><td>{cell(column)} = {cell(value)}</td><td>{cell(score)}</td>"
        f"<td>{cell(((champion.get('slices') or {}).get(column) or {}).get(value))}</td></tr>"
        for column, values in (challenger.get("slices") or {}).items()
        for value, score in values.items()
    )
    boot = evaluation.get("bootstrap")
    interval = (
        "No bootstrap interval (no champion to compare with)."
        if not boot
        else f"Improvement {cell(boot['mean_difference'])}, {boot['confidence']:.0%} bootstrap interval"
        f" [{cell(boot['low'])}, {cell(boot['high'])}] over {esc(str(boot['resamples']))} resamples."
    )
    reasons = "".join(f"<li>{esc(str(r))}</li>" for r in decision["reasons"])
    links = "".join(
        f"<li>{esc(name)}: <code>{esc(item['artifact'])}</code>"
        + (f' (<a href="{esc(item["url"])}">open in MLflow</a>)' if item.get("url") else "")
        + "</li>"
        for name, item in card["reports"].items()
    )
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>Model card: {esc(model["name"])} version {esc(str(model["version"]))}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}table{{border-collapse:collapse;margin:.5em 0}}
td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}}code{{word-break:break-all}}</style>
</head><body>
<h1>{esc(model["name"])} version {esc(str(model["version"]))}</h1>
<p>{esc(summary(card))}</p>
<h2>Model</h2><table>{rows(model)}</table>
<h2>Estimator</h2><table>{rows({"class": card["estimator"]["class"], "random_state": card["estimator"]["random_state"]})}{rows(card["estimator"]["params"])}</table>
<h2>Data</h2><table>{rows({k: v for k, v in data.items() if k not in ("window", "rows", "hashes")})}{rows(data["window"])}{rows({f"{k} rows": v for k, v in data["rows"].items()})}{rows({f"{k} hash": v for k, v in data["hashes"].items()})}</table>
<h2>Code and run</h2><table>{rows(card["code"])}{rows(card["airflow"])}</table>
<h2>Decision: {esc(str(decision["status"]))}</h2><table>{rows({k: v for k, v in decision.items() if k != "reasons"})}</table><ul>{reasons}</ul>
<h2>Metrics on the holdout ({cell(evaluation.get("holdout_rows"))} rows), against champion {cell(evaluation.get("champion_version"))}</h2>
<table><tr><th>metric</th><th>this version</th><th>champion</th></tr>{metrics}</table><p>{interval}</p>
<h3>Slices</h3><table><tr><th>slice</th><th>this version</th><th>champion</th></tr>{slices}</table>
<h2>Validation</h2><table>{rows(card["validation"] or {"validation": None})}</table>
<h2>Drift</h2><table>{rows(card["drift"] or {"drift": None})}</table>
<h2>Review</h2><table>{rows(review)}</table>
<h2>Promotion</h2><table>{rows(promotion)}</table>
<h2>Reports</h2><ul>{links}</ul>
<h2>This card</h2><table>{rows(card["card"])}</table>
</body></html>"""
