"""Governance, domain side: when a person is asked (the approval mode truth table), the evidence and the model
card built from hostile values, the champion history's "who was champion at T", and the spec's approval fields."""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import itertools
import json
import re

import pytest
from markdown_it import MarkdownIt

from retrain import approval, history, markdown, model_card, pipeline
from retrain.contracts import DriftResult, EvaluationResult, ReviewResult, ValidationResult
from retrain.errors import ApprovalMissingError, SpecError, StepSkipped
from retrain.options import Trigger
from retrain.pipeline import StepContext
from retrain.registry import TrackedRun
from retrain.spec import load_spec, parse_spec
from retrain.steps import promote
from retrain.tags import Decision, Tag
from tests.support import DEMO_SPEC, bare_run

SPEC = load_spec(DEMO_SPEC)
# What a hostile spec author, data producer or reviewer could put in a value that ends up in Markdown or HTML.
HOSTILE = [
    "[click](https://evil.example)",
    "![x](https://evil.example/x.png)",
    "<img src=x onerror=alert(1)>",
    "<script>alert(1)</script>",
    "**bold** _it_ ~~gone~~ `code`",
    "see https://evil.example or www.evil.example or bob@evil.example",
    "a | b\n| --- |\n# heading\n- item\n1. first",
    "\\[escaped\\] &amp; &#60;tag&#62;",
    "{{ dag_run.conf }} {% if 1 %}x{% endif %}",
]
RENDER = MarkdownIt("gfm-like")  # tables, strikethrough and bare-URL links, as GitHub-flavoured renderers do


def spec_with(**promotion):
    return SPEC.model_copy(update={"promotion": SPEC.promotion.model_copy(update=promotion)})


def evaluation(**change) -> EvaluationResult:
    base = EvaluationResult("churn", "4", "run1", "3", False, True, False, ("r1", "r2"), False, "2025-05-01", "roc_auc")
    return dataclasses.replace(base, **change)


# The approval mode truth table -------------------------------------------------------------------------------


def expected_action(mode: str, promote_: bool, already: bool, forced: bool, champion: str | None, dry: bool) -> str:
    """Written from the issue, independently of retrain.approval.gate."""
    if already or not promote_ or dry:
        return "skip"  # the policy decides first: nothing to approve, nobody is asked
    asks = {
        "never": False,
        "always": True,
        "when_forced": forced,
        "first_version": champion is None,
    }[mode]
    return "ask" if asks else "pass"


@pytest.mark.parametrize(
    ("mode", "promote_", "already", "forced", "champion", "dry"),
    list(itertools.product(["never", "always", "when_forced", "first_version"], [True, False], [True, False],
                           [True, False], [None, "3"], [True, False])),
)  # fmt: skip
def test_approval_mode_truth_table(mode, promote_, already, forced, champion, dry):
    found, reason = approval.gate(mode, evaluation(promote=promote_, already_champion=already, forced=forced,
                                                   champion_version=champion), dry)  # fmt: skip
    assert found == expected_action(mode, promote_, already, forced, champion, dry)
    assert reason


def test_the_approval_step_is_in_the_dag_only_when_the_spec_asks_and_promote_then_reads_its_answer():
    assert [s.task_id for s in pipeline.steps(SPEC)] == pipeline.task_ids()
    assert not pipeline.has_approval(SPEC)
    for mode in ("always", "when_forced", "first_version"):
        spec = spec_with(approval=mode)
        ids = pipeline.task_ids(spec)
        assert ids[ids.index("evaluate") + 1 :] == ["approve_promotion", "promote"]
        assert pipeline.has_approval(spec)
        assert pipeline.producer(ReviewResult, spec).kind == "approval"
        assert ReviewResult in pipeline.steps(spec)[-1].needs
        assert "approve_promotion" in pipeline.chain_markdown(spec)


class NoRegistry:
    def __getattr__(self, name):
        raise AssertionError(f"the step reached the registry ({name}) although it must refuse or skip first")


def context(spec, inputs, **options) -> StepContext:
    return StepContext(spec=spec, run=bare_run(spec, dt.date(2025, 5, 1), **options), inputs=inputs,
                       registry_factory=NoRegistry)  # fmt: skip


def test_a_declined_challenger_never_reaches_a_reviewer():
    with pytest.raises(StepSkipped, match="the policy declined version 4, so nobody is asked: r1; r2"):
        approval.prepare(context(spec_with(approval="always"), {EvaluationResult: evaluation(promote=False)}))


def test_promote_refuses_without_a_recorded_approval_and_skips_a_rejection_before_touching_the_registry():
    spec = spec_with(approval="always")
    with pytest.raises(ApprovalMissingError, match="approve_promotion recorded no answer"):
        promote.run(context(spec, {EvaluationResult: evaluation(), ReviewResult: None}))
    other_version = ReviewResult("churn", "3", "approved", by="ops")
    with pytest.raises(ApprovalMissingError):
        promote.run(context(spec, {EvaluationResult: evaluation(), ReviewResult: other_version}))
    rejected = ReviewResult("churn", "4", "rejected", by="ops", reason="rejected by ops")
    with pytest.raises(StepSkipped, match="the reviewer declined version 4"):
        promote.run(context(spec, {EvaluationResult: evaluation(), ReviewResult: rejected}))


def test_review_tags_name_who_answered_when_and_their_comment():
    review = ReviewResult("churn", "4", "approved", by="ops", at="2025-06-01T10:00:00+00:00", comment="ok")
    assert approval.review_tags(review) == {
        Tag.REVIEW_ANSWER: "approve", Tag.REVIEWED_BY: "ops", Tag.REVIEWED_AT: "2025-06-01T10:00:00+00:00",
        Tag.REVIEW_COMMENT: "ok",
    }  # fmt: skip
    timed_out = ReviewResult("churn", "4", "rejected", at="2025-06-04T10:00:00+00:00", timed_out=True)
    assert approval.review_tags(timed_out)[Tag.REVIEW_ANSWER] == "timeout"
    assert approval.review_tags(timed_out)[Tag.REVIEWED_BY] == ""


# Markdown escaping ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", HOSTILE)
def test_escaped_values_render_as_their_own_text_with_no_link_image_or_markup(value):
    rendered = RENDER.render(f"Value: {markdown.escape(value)}")
    assert re.fullmatch(r"<p>[^<>]*</p>\n", rendered), rendered
    shown = html.unescape(rendered[3:-5]).replace(markdown.ZERO_WIDTH_SPACE, "")
    assert shown == "Value: " + re.sub(r"\s+", " ", value).strip()


def test_bare_addresses_stay_text_where_a_renderer_links_them_after_resolving_escapes():
    """Airflow's UI (remark-gfm) finds bare links in the text once backslash escapes are resolved, unlike
    markdown-it above: check that text with linkify-it, GFM's rule set (no bare domains)."""
    from linkify_it import LinkifyIt

    value = "see https://evil.com, HTTP://evil.com/x, www.evil.com and bob@evil.com"
    resolved = re.sub(r"\\(.)", r"\1", markdown.escape(value))
    assert resolved.replace(markdown.ZERO_WIDTH_SPACE, "") == value
    assert LinkifyIt(options={"fuzzy_link": False}).match(resolved) is None
    assert LinkifyIt(options={"fuzzy_link": False}).match(value), "the check itself finds links in the raw value"


@pytest.mark.parametrize("value", HOSTILE)
def test_escaped_values_stay_in_their_table_cell(value):
    table = markdown.table(["name", "score"], [[markdown.escape(value), markdown.number(0.5)]])
    rendered = RENDER.render(table)
    assert rendered.count("<td>") == 2 and rendered.count("<tr>") == 2
    assert "<a " not in rendered and "<img" not in rendered and "<script" not in rendered


def test_code_spans_and_numbers_carry_nothing_from_the_data():
    assert markdown.code("abc`) [x](y)") == "`abc') [x](y)`"
    assert RENDER.render(markdown.code("a`b")).count("<code>") == 1
    assert [markdown.number(v) for v in (0.12345, None, float("nan"), "0.5", True)] == ["0.1235", "—", "—", "—", "—"]


# The model card and the evidence --------------------------------------------------------------------------------


def hostile_card(**card_changes) -> dict:
    spec = SPEC.model_copy(update={"description": HOSTILE[0] + " " + HOSTILE[2], "intended_use": HOSTILE[4]})
    run = dataclasses.replace(bare_run(spec, dt.date(2025, 5, 1), "manual__<b>x</b>"), trigger=Trigger("data", HOSTILE[5]))
    comparison = {
        "metric": "roc_auc", "holdout_rows": 2100, "baseline": 0.5,
        "challenger": {"primary": 0.71, "secondary": {"average_precision": 0.2}, "slices": {"plan": {HOSTILE[1]: 0.7}}},
        "champion": {"primary": 0.7, "secondary": {"average_precision": 0.19}, "slices": {"plan": {HOSTILE[1]: 0.69}}},
        "bootstrap": {"mean_difference": 0.01, "low": -0.002, "high": 0.02, "confidence": 0.95, "resamples": 50},
    }  # fmt: skip
    card = model_card.build(
        spec, run, version="4",
        tracked=TrackedRun("abc123", "7", {"model.max_iter": "150", "estimator": "x"},
                           {Tag.CODE_VERSION: "deadbeef", Tag.RUN_ID: "manual__train", Tag.TRIGGER: "manual"}),
        partition={"path": "/a/features/end_date=2025-05-01", "train_rows": 100, "holdout_rows": 20,
                   "input_hash": "i" * 64, "train_hash": "t" * 64, "holdout_hash": "h" * 64},
        validation=ValidationResult(True, 120, {}, 1, {"evaluated_expectations": 9}),
        drift=DriftResult(True, "3", True, (HOSTILE[6],), False, 0.31),
        comparison=comparison, champion_version="3",
        policy={"promote": True, "forced": False, "reasons": [HOSTILE[3], "roc_auc 0.7100 vs champion 0.7000"]},
        status=Decision.APPROVED,
        reports={"evaluation_html": "/r/evaluation.html", "validation_html": "/r/validation.html"},
        ui_base="https://mlflow.example",
    )  # fmt: skip
    return {**card, **card_changes}


def test_the_card_holds_every_field_the_issue_lists_from_the_values_it_was_given():
    card = hostile_card()
    assert card["schema"] == model_card.SCHEMA
    assert card["model"] == {"name": "churn", "version": "4", "task": "classification",
                             "description": HOSTILE[0] + " " + HOSTILE[2], "intended_use": HOSTILE[4]}  # fmt: skip
    assert card["estimator"] == {"class": SPEC.model.estimator, "params": {"max_iter": "150"}, "random_state": 7}
    assert card["data"]["hashes"] == {"input": "i" * 64, "train": "t" * 64, "holdout": "h" * 64}
    assert card["data"]["rows"] == {"train": 100, "holdout": 20}
    assert card["data"]["window"]["end"].startswith("2025-05-01")
    assert card["code"] == {"version": "deadbeef"}
    assert card["airflow"]["trained_by_run"] == "manual__train"
    assert card["airflow"]["evaluated_by_trigger"] == {"kind": "data", "reason": HOSTILE[5]}
    assert card["evaluation"]["bootstrap"]["low"] == -0.002 and card["evaluation"]["champion_version"] == "3"
    assert card["validation"]["success"] is True and card["drift"]["max_psi"] == 0.31
    assert card["decision"]["status"] == Decision.APPROVED and card["decision"]["reasons"][0] == HOSTILE[3]
    assert card["review"]["status"] == "not_asked" and card["promotion"]["status"] == "not_promoted"
    assert card["reports"]["evaluation_html"] == {
        "artifact": "reports/evaluation.html",
        "url": "https://mlflow.example/#/experiments/7/runs/abc123/artifactPath/reports/evaluation.html",
    }
    assert (card["card"]["json"], card["card"]["html"]) == ("model_card/card.json", "model_card/card.html")
    json.dumps(card)  # a JSON document, nothing else


def test_review_and_promotion_complete_the_card():
    review = ReviewResult("churn", "4", "rejected", by="ops", at="2025-06-01T10:00:00+00:00", comment=HOSTILE[2],
                          reason="rejected by ops")  # fmt: skip
    card = model_card.with_review(hostile_card(), review, Decision.DECLINED_BY_REVIEWER, requested_at="2025-06-01")
    assert card["review"] == {**card["review"], "status": "rejected", "by": "ops", "comment": HOSTILE[2],
                              "requested_at": "2025-06-01", "timed_out": False}  # fmt: skip
    assert card["decision"]["status"] == Decision.DECLINED_BY_REVIEWER
    promoted = model_card.with_promotion(hostile_card(), "promoted", kind="promotion", at="t", by_run="r", previous="3")
    assert promoted["promotion"] == {"status": "promoted", "kind": "promotion", "at": "t", "by_run": "r",
                                     "previous": "3", "message": None}  # fmt: skip


def test_the_card_page_escapes_every_value():
    page = model_card.render_html(hostile_card())
    assert "<script>" not in page and "<img src=x" not in page and 'href="https://evil' not in page
    assert html.escape(HOSTILE[3]) in page and html.escape(HOSTILE[0]) in page
    assert page.count("<a href=") == 2  # the two report links our code built, nothing from the values
    assert f"<p>churn version 4: a {SPEC.model.estimator} classification model" in page, "plain text, not Markdown"


def test_the_description_is_one_escaped_paragraph_naming_the_card():
    text = model_card.description(hostile_card())
    assert "\n" not in text and len(text) < 5000
    assert text.endswith(f"Model card: {markdown.escape('runs:/abc123/model_card/card.html')} (JSON: "
                         f"{markdown.escape('model_card/card.json')}).")  # fmt: skip
    rendered = RENDER.render(text)
    assert re.fullmatch(r"<p>[^<>]*</p>\n", rendered), rendered


def test_the_evidence_has_the_decision_metrics_interval_slices_drift_trigger_and_links_and_nothing_injected():
    body = approval.evidence(hostile_card(), reason="promotion.approval is 'always'",
                             deadline=dt.datetime(2025, 6, 4, 10, tzinfo=dt.UTC))  # fmt: skip
    rendered = RENDER.render(body)
    links = re.findall(r'<a href="([^"]*)"', rendered)
    assert links and all(link.startswith("https://mlflow.example/#/experiments/7/runs/abc123/") for link in links)
    assert "<img" not in rendered and "<script" not in rendered and "<strong>bold" not in rendered
    text = html.unescape(re.sub(r"<[^>]+>", " ", rendered)).replace(markdown.ZERO_WIDTH_SPACE, "")
    for expected in (HOSTILE[0], HOSTILE[3], "roc_auc 0.7100 vs champion 0.7000", "0.7100", "0.7000",
                     "average_precision", "[-0.0020, 0.0200]", "95% bootstrap interval", "50 resamples",
                     "plan = " + HOSTILE[1], "max PSI 0.310", "started by data: " + HOSTILE[5],
                     "card.html", "card.json", "evaluation_html", "2025-06-04T10:00+00:00"):  # fmt: skip
        assert expected in text, expected
    assert rendered.count("<table>") == 2  # metrics and slices, each still one table
    assert approval.subject(hostile_card()) == "Promote churn version 4 to champion, replacing version 3?"


# The champion history -------------------------------------------------------------------------------------------

T0 = dt.datetime(2025, 6, 1, 2, 0, tzinfo=dt.UTC)


def move(hours: float, source: str | None, target: str, kind: str = "promotion") -> history.ChampionMove:
    return history.ChampionMove(T0 + dt.timedelta(hours=hours), source, target, "why", "run r", kind, "r")


MOVES = [move(0, None, "1"), move(24, "1", "2", "forced_promotion"), move(48, "2", "1", "rollback")]


@pytest.mark.parametrize(
    ("hours", "champion"),
    [(-1, None), (0, "1"), (12, "1"), (23.99, "1"), (24, "2"), (30, "2"), (48, "1"), (1000, "1")],
)
def test_who_was_champion_at_t(hours, champion):
    found = history.champion_at(MOVES, T0 + dt.timedelta(hours=hours))
    assert (found and found.to_version) == champion


def test_entries_round_trip_and_a_hand_edited_tag_is_left_out():
    entries = [history.HistoryEntry(f"k{i}", m) for i, m in enumerate(MOVES)]
    tags = {Tag.history_entry(e.key): history.encode(e) for e in reversed(entries)}
    tags |= {Tag.history_entry("broken"): "{not json", Tag.DECISION: "promoted", "other": "{}"}
    assert history.entries_from_tags(tags) == entries
    assert len(history.encode(dataclasses.replace(entries[0], move=history.new_move(
        "rollback", "1", "2", "x" * 10_000, "y" * 1000, "r")))) < 5000  # fmt: skip


def test_a_pending_entry_counts_only_when_its_move_happened():
    done = [history.HistoryEntry(f"k{i}", m) for i, m in enumerate(MOVES[:2])]
    failed = history.HistoryEntry("f", move(30, "2", "3"), history.PENDING)  # its alias write failed
    later = history.HistoryEntry("k2", MOVES[2])
    assert history.settle([*done, failed, later], "1") == MOVES
    confirmed_by_next = history.HistoryEntry("p", move(30, "2", "3"), history.PENDING)
    after = history.HistoryEntry("n", move(40, "3", "1", "rollback"))
    assert [m.to_version for m in history.settle([*done, confirmed_by_next, after], "1")] == ["1", "2", "3", "1"]
    assert history.settle([*done, failed], "2") == MOVES[:2], "newest pending, champion elsewhere: it failed"
    assert history.settle([*done, failed], "3")[-1].to_version == "3", "newest pending, champion there: it moved"


def test_entry_keys_repeat_for_a_retry_of_the_same_move_only():
    key = history.entry_key("churn", "promotion", "1", "2", "run_a")
    assert key == history.entry_key("churn", "promotion", "1", "2", "run_a")
    assert key != history.entry_key("churn", "promotion", "1", "2", "run_b")
    assert history.entry_key("churn", "rollback", "2", "1", None) != history.entry_key("churn", "rollback", "2", "1", None)


def test_the_command_reports_the_champion_at_a_time_or_the_whole_history():
    assert history.report("churn", MOVES, history.parse_when("2025-06-02")).startswith(
        "churn: version 1 was champion at 2025-06-02T00:00:00+00:00 (since 2025-06-01T02:00:00+00:00  none -> v1"
    ), "a date is midnight UTC"
    assert history.report("churn", MOVES, history.parse_when("2025-06-02T03:00")).startswith(
        "churn: version 2 was champion at 2025-06-02T03:00:00+00:00 (since 2025-06-02T02:00:00+00:00  v1 -> v2"
    )
    assert history.report("churn", MOVES, history.parse_when("2025-05-01")) == (
        "churn: no champion at 2025-05-01T00:00:00+00:00"
    )
    whole = history.report("churn", MOVES).splitlines()
    assert whole[0] == "churn: 3 champion moves" and "v2 -> v1  rollback by run r: why" in whole[-1]
    with pytest.raises(ValueError, match="--at 'yesterday' is not an ISO date"):
        history.parse_when("yesterday")


# The spec's approval fields -------------------------------------------------------------------------------------


def document(**promotion) -> dict:
    import yaml

    doc = yaml.safe_load(DEMO_SPEC.read_text())
    doc["promotion"] = {**doc["promotion"], **promotion}
    return doc


def test_an_unknown_assigned_user_is_a_spec_error_on_the_field_when_the_users_are_known():
    doc = document(approval="always", approvers=["ops", "mallory"])
    with pytest.raises(SpecError) as error:
        parse_spec(doc, "churn.yaml", known_users={"ops", "vic"})
    message = str(error.value)
    assert "churn.yaml" in message and "field 'promotion.approvers'" in message and "['mallory']" in message
    assert parse_spec(doc, "churn.yaml", known_users={"ops", "mallory"}).promotion.approvers == ("ops", "mallory")
    assert parse_spec(doc, "churn.yaml", known_users=None).promotion.approvers == ("ops", "mallory")  # cannot tell


@pytest.mark.parametrize(
    ("promotion", "field", "reason"),
    [
        ({"approval": "sometimes"}, "promotion.approval", "Input should be 'never', 'always'"),
        ({"approval": "never", "approvers": ["ops"]}, "promotion.approvers", "nobody is asked"),
        ({"approval": "always", "approvers": ["ops", "ops"]}, "promotion.approvers", "listed twice"),
        ({"approval": "always", "approvers": ["o\nps"]}, "promotion.approvers.0", "match pattern"),
        ({"approval": "always", "approval_timeout_minutes": 0}, "promotion.approval_timeout_minutes", "greater than 0"),
    ],
)
def test_bad_approval_settings_name_the_field(promotion, field, reason):
    with pytest.raises(SpecError) as error:
        parse_spec(document(**promotion), "churn.yaml")
    assert f"field '{field}'" in str(error.value) and reason in str(error.value)
