"""approve_promotion: a person approves the promotion the policy allowed, on the evidence, before `promote` runs.

The spec's `promotion.approval` says when a person is asked: `always`, `when_forced` (a promotion forced past
the comparison), `first_version` (the model's first champion) or `never` (no gate in the DAG). The policy
decides first: a version it declined (or a dry run, or the champion itself) is never put to a reviewer, the
task is skipped. Asking is Airflow's ApprovalOperator (plugins/retrain_operators/approval.py); this module
decides whether to ask, writes the request (a subject and the evidence in Markdown, every value escaped) and
records the answer on the version and its model card.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

from retrain import markdown, model_card
from retrain.contracts import EvaluationResult, ReviewResult
from retrain.errors import RetrainError, StepSkipped
from retrain.pipeline import StepContext
from retrain.tags import Decision, Tag

Action = Literal["skip", "ask", "pass"]
COMMENT_LIMIT = 2000
# Characters a link destination keeps as they are; everything else (spaces, brackets, quotes) is encoded.
URL_SAFE = ":/#?&=%@.-_~!$*+,;"


@dataclass(frozen=True)
class ApprovalRequest:
    """What the reviewer sees: a one-line subject and the evidence (Markdown)."""

    subject: str
    body: str


def gate(mode: str, evaluation: EvaluationResult, dry_run: bool) -> tuple[Action, str]:
    """Whether this run asks a person: "skip" (nothing to approve: the task is skipped, and `promote` with
    it), "ask", or "pass" (the mode does not ask for this promotion: `promote` runs). With the reason."""
    version = evaluation.version
    if evaluation.already_champion:
        return "skip", f"version {version} is already champion: nothing to approve"
    if not evaluation.promote:
        return "skip", f"the policy declined version {version}, so nobody is asked: {'; '.join(evaluation.reasons)}"
    if dry_run:
        return "skip", f"dry run: the policy would promote version {version}; nobody is asked, no alias moves"
    if mode == "always":
        return "ask", "promotion.approval is 'always'"
    if mode == "when_forced":
        if evaluation.forced:
            return "ask", "the promotion is forced past the comparison (promotion.approval: when_forced)"
        return "pass", "the promotion is not forced: promotion.approval 'when_forced' asks nobody"
    if mode == "first_version":
        if evaluation.champion_version is None:
            return "ask", "the version would be the model's first champion (promotion.approval: first_version)"
        return "pass", f"a champion exists (version {evaluation.champion_version}): 'first_version' asks nobody"
    return "pass", f"promotion.approval is {mode!r}"


def prepare(ctx: StepContext) -> ReviewResult | ApprovalRequest:
    """The approval task's first half: skip (StepSkipped), pass (a "not_required" review, recorded on the
    card), or the request to put to a person once the champion is checked unmoved (PromotionConflictError)."""
    spec, evaluation = ctx.spec, _evaluation(ctx)
    action, reason = gate(spec.promotion.approval, evaluation, ctx.run.options.dry_run)
    if action == "skip":
        raise StepSkipped(reason)
    registry = ctx.registry
    if action == "pass":
        review = ReviewResult(spec.name, evaluation.version, "not_required", reason=reason)
        _update_card(ctx, evaluation, lambda card: model_card.with_review(card, review, Decision.APPROVED))
        ctx.log.info("no approval needed for %s version %s: %s", spec.name, evaluation.version, reason)
        return review
    # The same guard `promote` applies: do not ask a person to approve against a champion that has moved.
    registry.check_champion(spec.name, evaluation.champion_version)
    requested_at = _now()
    awaiting = ReviewResult(spec.name, evaluation.version, "awaiting", reason=reason)
    card = _update_card(
        ctx,
        evaluation,
        lambda card: model_card.with_review(card, awaiting, Decision.AWAITING_REVIEW, requested_at=requested_at),
    )
    registry.set_tags(
        spec.name, evaluation.version, {Tag.DECISION: Decision.AWAITING_REVIEW, Tag.REVIEW_REQUESTED_AT: requested_at}
    )
    deadline = dt.datetime.fromisoformat(requested_at) + dt.timedelta(minutes=spec.promotion.approval_timeout_minutes)
    ctx.log.info("asking %s to approve %s version %s: %s", list(spec.promotion.approvers) or "anyone allowed",
                 spec.name, evaluation.version, reason)  # fmt: skip
    return ApprovalRequest(subject(card), evidence(card, reason=reason, deadline=deadline))


def record(
    ctx: StepContext, *, approved: bool, by: str | None, at: str | None, comment: str = "", timed_out: bool = False
) -> ReviewResult:
    """The answer (or the timeout, a rejection) on the version's tags and its model card."""
    spec, evaluation = ctx.spec, _evaluation(ctx)
    if timed_out:
        reason = f"no answer within promotion.approval_timeout_minutes ({spec.promotion.approval_timeout_minutes:g}): rejected"
    else:
        reason = f"{'approved' if approved else 'rejected'} by {by or 'an unknown user'}"
    review = ReviewResult(
        spec.name, evaluation.version, "approved" if approved else "rejected",
        by=by, at=at, comment=(comment or "").strip()[:COMMENT_LIMIT], timed_out=timed_out, reason=reason,
    )  # fmt: skip
    status = Decision.APPROVED if approved else Decision.DECLINED_BY_REVIEWER
    ctx.registry.set_tags(spec.name, evaluation.version, {**review_tags(review), Tag.DECISION: status})
    _update_card(ctx, evaluation, lambda card: model_card.with_review(card, review, status))
    ctx.log.info("%s version %s: %s%s", spec.name, evaluation.version, reason,
                 f" ({review.comment})" if review.comment else "")  # fmt: skip
    return review


def review_tags(review: ReviewResult) -> dict[str, str]:
    """Who answered, when, what, and their comment, as version tags."""
    answer = "timeout" if review.timed_out else ("approve" if review.outcome == "approved" else "reject")
    return {
        Tag.REVIEW_ANSWER: answer,
        Tag.REVIEWED_BY: review.by or "",
        Tag.REVIEWED_AT: review.at or "",
        Tag.REVIEW_COMMENT: review.comment,
    }


def subject(card: Mapping[str, Any]) -> str:
    """One line naming the model and the versions (names and versions are [a-z0-9_] and digits by the spec)."""
    model, evaluation = card["model"], card["evaluation"]
    champion = evaluation.get("champion_version")
    replaces = f"replacing version {champion}" if champion else "its first champion"
    forced = " (forced past the comparison)" if card["decision"].get("forced") else ""
    return f"Promote {model['name']} version {model['version']} to champion, {replaces}?{forced}"


def evidence(card: Mapping[str, Any], *, reason: str, deadline: dt.datetime) -> str:
    """The evidence as Markdown: the decision and its reasons, the metric table with the bootstrap interval,
    slices, drift, validation, the run's trigger, links to the reports and the model card. Every value that
    comes from the spec or the data is escaped (retrain.markdown)."""
    e, n = markdown.escape, markdown.number
    model, data, evaluation = card["model"], card["data"], card["evaluation"]
    decision, airflow, review = card["decision"], card["airflow"], card["review"]
    champion_version = evaluation.get("champion_version")
    challenger, champion = evaluation.get("challenger") or {}, evaluation.get("champion") or {}
    trigger = airflow["evaluated_by_trigger"]
    lines = [
        f"### {e(model['name'])} version {e(model['version'])}: the promotion policy says promote"
        + (" (forced)" if decision.get("forced") else ""),
        "",
        e(model["description"]) if model["description"] else "",
        "",
        f"Why a person is asked: {e(reason)}.",
        "",
        f"- **Run**: {e(airflow['evaluated_by_run'])} of {e(airflow['dag_id'])}, started by"
        f" {e(trigger['kind'])}{': ' + e(trigger['reason']) if trigger['reason'] else ''}",
        f"- **Champion now**: {'version ' + e(champion_version) if champion_version else 'none (this would be the first)'}",
        f"- **Data**: {e(data['source'], 300)}, window {e(data['window']['start'][:10])} to {e(data['window']['end'][:10])},"
        f" {e(data['rows']['train'])} training and {e(data['rows']['holdout'])} holdout rows,"
        f" input hash {markdown.code(str(data['hashes']['input'])[:16])}",
        f"- **Code**: {markdown.code(card['code']['version'], 40)}",
        "",
        "#### Decision and reasons",
        "",
        *[f"- {e(r, 500)}" for r in decision["reasons"]],
        "",
        f"#### Metrics on the same holdout ({e(evaluation.get('holdout_rows'))} rows)",
        "",
        markdown.table(
            ["metric", f"version {e(model['version'])}", f"champion {e(champion_version)}" if champion_version else "champion"],
            [
                [e(evaluation.get("metric")), n(challenger.get("primary")), n(champion.get("primary"))],
                *[
                    [e(name), n(value), n((champion.get("secondary") or {}).get(name))]
                    for name, value in (challenger.get("secondary") or {}).items()
                ],
                ["baseline \\(prior / mean\\)", n(evaluation.get("baseline")), "—"],
            ],
        ),
        "",
        _interval(evaluation),
        "",
        *_slices(evaluation),
        "#### Drift and validation",
        "",
        f"- {_drift(card['drift'])}",
        f"- {_validation(card['validation'])}",
        "",
        "#### Evidence",
        "",
        f"- Model card: {_link('card.html', card['card'].get('html_url'))} ({_link('card.json', card['card'].get('json_url'))}),"
        f" artifacts {markdown.code(card['card']['html'])} and {markdown.code(card['card']['json'])} of MLflow run"
        f" {markdown.code(card['card']['run_id'])}",
        *[f"- {e(name)}: {_link(item['artifact'], item.get('url'))}" for name, item in card["reports"].items()],
        "",
        f"**Approve** promotes version {e(model['version'])}; **Reject** keeps the champion. No answer by"
        f" {deadline.isoformat(timespec='minutes')} counts as a rejection."
        + (f" Assigned to: {', '.join(e(user) for user in review['assigned_to'])}." if review["assigned_to"] else ""),
    ]
    return "\n".join(lines).strip() + "\n"


def _interval(evaluation: Mapping[str, Any]) -> str:
    boot = evaluation.get("bootstrap")
    if not boot:
        return "No bootstrap interval: there is no champion to compare with."
    return (
        f"Improvement of {markdown.escape(evaluation.get('metric'))} over the champion:"
        f" {markdown.number(boot.get('mean_difference'))}, {boot.get('confidence', 0):.0%} bootstrap interval"
        f" \\[{markdown.number(boot.get('low'))}, {markdown.number(boot.get('high'))}\\]"
        f" over {markdown.escape(boot.get('resamples'))} resamples."
    )


def _slices(evaluation: Mapping[str, Any]) -> list[str]:
    e, n = markdown.escape, markdown.number
    challenger, champion = evaluation.get("challenger") or {}, evaluation.get("champion") or {}
    rows = [
        [f"{e(column)} = {e(value)}", n(score), n(((champion.get("slices") or {}).get(column) or {}).get(value))]
        for column, values in (challenger.get("slices") or {}).items()
        for value, score in values.items()
    ]
    if not rows:
        return []
    title = f"#### Slices ({e(evaluation.get('metric'))})"
    return [title, "", markdown.table(["slice", "this version", "champion"], rows), ""]


def _drift(drift: Mapping[str, Any] | None) -> str:
    if not drift or not drift.get("compared"):
        return "Drift: not compared (no champion's training data to compare with)."
    drifted = ", ".join(markdown.escape(f) for f in drift.get("drifted_features") or []) or "none"
    return (
        f"Drift against champion version {markdown.escape(drift.get('champion_version'))}: drifted features {drifted};"
        f" max PSI {markdown.number(drift.get('max_psi'), 3)}; label drift {'yes' if drift.get('label_drifted') else 'no'}."
    )


def _validation(validation: Mapping[str, Any] | None) -> str:
    if not validation:
        return "Validation: no result recorded."
    verdict = "passed" if validation.get("success") else "failed"
    return f"Validation {verdict} on {markdown.escape(validation.get('rows'))} rows, {markdown.escape(validation.get('warnings'))} warnings."


def _link(text: str, url: str | None) -> str:
    """A link to an http(s) MLflow address our code built, with anything that could end the link encoded; or
    the escaped text alone."""
    if not url:
        return markdown.escape(text)
    return f"[{markdown.escape(text)}]({quote(url, safe=URL_SAFE)})"


def _evaluation(ctx: StepContext) -> EvaluationResult:
    evaluation = ctx.input(EvaluationResult)
    if evaluation is None:
        raise RetrainError("no evaluation result from the evaluate step; rerun the evaluate task")
    return evaluation


def _update_card(ctx: StepContext, evaluation: EvaluationResult, change) -> dict[str, Any]:
    return model_card.update(ctx.registry, ctx.spec.name, evaluation.mlflow_run_id, change)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
