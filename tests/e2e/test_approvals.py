"""The approval gate on the real stack: runs wait at approve_promotion (read with the REST API's HITL endpoints),
people answer through the REST API and in the Airflow UI's required-actions page (Chromium), a timeout is a
rejection, a champion moved meanwhile refuses the promotion. Assertions on task states, the HITL records and
the registry (tags, aliases, the champion history, the model card).

Three first nights start together (answered through the API, in the browser, never); the tests then run in
order, and the API model's second night starts as soon as its first is rejected.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from retrain.model_card import CARD_JSON
from retrain.registry import CHAMPION_ALIAS, Registry
from retrain.tags import Decision, Tag
from tests.e2e.conftest import (
    ARTIFACTS,
    GOV_BROWSER_MODEL,
    GOV_DESCRIPTION,
    GOV_MODEL,
    GOV_TIMEOUT_MODEL,
    GOV_UNKNOWN_APPROVER_MODEL,
    signed_in_page,
)
from tests.e2e.test_stack import trigger

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
DAG = f"retrain_{GOV_MODEL}"
BROWSER_DAG = f"retrain_{GOV_BROWSER_MODEL}"
TIMEOUT_DAG = f"retrain_{GOV_TIMEOUT_MODEL}"
APPROVAL = "approve_promotion"
# An answer sent while the worker that parked the task is still being reaped can fail the resumed task
# (/work/notes/airflow.md §3): answer a few seconds after the task reports awaiting_input.
SETTLE_SECONDS = 6


def hitl_path(dag_id: str, run_id: str) -> str:
    return f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{APPROVAL}/-1/hitlDetails"


def wait_for_approval_request(stack, dag_id: str, run_id: str, timeout: float = 600) -> dict:
    """The run's approval request, once the task waits in awaiting_input (fails if the run ends first)."""
    deadline = time.monotonic() + timeout
    while True:
        states = stack.task_states(dag_id, run_id)
        if states.get(APPROVAL) == "awaiting_input":
            time.sleep(SETTLE_SECONDS)
            return stack.request("GET", hitl_path(dag_id, run_id))
        assert "failed" not in states.values() and states.get(APPROVAL) != "skipped", states
        assert time.monotonic() < deadline, f"{APPROVAL} not awaiting input after {timeout}s: {states}"
        time.sleep(3)


def answer(stack, dag_id: str, run_id: str, option: str, comment: str) -> dict:
    return stack.request(
        "PATCH", hitl_path(dag_id, run_id), {"chosen_options": [option], "params_input": {"comment": comment}}
    )


def registry(stack) -> Registry:
    return Registry(stack.mlflow)


def card_of(stack, version) -> dict:
    local = MlflowClient(stack.mlflow).download_artifacts(version.run_id, CARD_JSON, tempfile.mkdtemp())
    return json.loads(Path(local).read_text())


@pytest.fixture(scope="module")
def runs(stack) -> dict[str, str]:
    """The first night of each governed model, started together so that they run side by side."""
    stack.wait_for_dags(DAG, BROWSER_DAG, TIMEOUT_DAG)
    return {
        "reject": trigger(stack, DAG, {"end_date": "2025-05-01"}),
        "browser": trigger(stack, BROWSER_DAG, {"end_date": "2025-05-01"}),
        "timeout": trigger(stack, TIMEOUT_DAG, {"end_date": "2025-05-01"}),
    }


def test_an_unknown_approver_makes_the_spec_an_invalid_spec_dag_naming_the_field(stack, runs):
    dag_id = f"retrain_{GOV_UNKNOWN_APPROVER_MODEL}"
    dags = stack.wait_for_dags(dag_id)
    assert "invalid-spec" in {tag["name"] for tag in dags[dag_id]["tags"]}
    doc = stack.request("GET", f"/api/v2/dags/{dag_id}/details")["doc_md"]
    assert f"{GOV_UNKNOWN_APPROVER_MODEL}.yaml" in doc and "field 'promotion.approvers'" in doc
    assert "unknown assigned user(s) ['mallory']" in doc


def test_a_run_waits_for_approval_with_the_champion_unchanged_and_a_reject_skips_promote(stack, runs):
    run_id = runs["reject"]
    request = wait_for_approval_request(stack, DAG, run_id)
    assert request["subject"] == f"Promote {GOV_MODEL} version 1 to champion, its first champion?"
    assert request["assigned_users"] == [{"id": "admin", "name": "admin"}]
    assert request["options"] == ["Approve", "Reject"] and request["defaults"] == ["Reject"]
    assert request["response_received"] is False
    for section in ("#### Decision and reasons", "#### Metrics on the same holdout", "#### Slices (roc\\_auc)",
                    "#### Drift and validation", "started by manual", "card.html", "evaluation\\_html"):  # fmt: skip
        assert section in request["body"], section
    pending = stack.request("GET", "/api/v2/dags/~/dagRuns/~/hitlDetails?response_received=false")
    assert run_id in {item["task_instance"]["dag_run_id"] for item in pending["hitl_details"]}

    # While it waits, nothing moved: no champion, the version says it awaits a review.
    time.sleep(5)
    assert registry(stack).aliases(GOV_MODEL)[CHAMPION_ALIAS] is None
    assert registry(stack).version(GOV_MODEL, "1").tags[Tag.DECISION] == Decision.AWAITING_REVIEW
    assert stack.task_states(DAG, run_id)[APPROVAL] == "awaiting_input"

    answer(stack, DAG, run_id, "Reject", "Premium slice too weak | see **card**")
    runs["approve"] = trigger(stack, DAG, {"end_date": "2025-05-02"})  # starts when this one ends
    run = stack.wait_for_run(DAG, run_id)
    states = stack.task_states(DAG, run_id)
    assert run["state"] == "success" and states[APPROVAL] == "success" and states["promote"] == "skipped"
    assert registry(stack).aliases(GOV_MODEL)[CHAMPION_ALIAS] is None
    assert registry(stack).champion_history(GOV_MODEL) == []
    version = registry(stack).version(GOV_MODEL, "1")
    assert version.tags[Tag.DECISION] == Decision.DECLINED_BY_REVIEWER
    assert version.tags[Tag.REVIEW_ANSWER] == "reject" and version.tags[Tag.REVIEWED_BY] == "admin"
    assert version.tags[Tag.REVIEW_COMMENT] == "Premium slice too weak | see **card**"
    assert version.tags[Tag.REVIEWED_AT].startswith(stack.request("GET", hitl_path(DAG, run_id))["responded_at"][:19])
    card = card_of(stack, version)
    assert card["review"]["status"] == "rejected" and card["review"]["by"] == "admin"
    assert card["decision"]["status"] == Decision.DECLINED_BY_REVIEWER and card["promotion"]["status"] == "not_promoted"


def test_the_pending_approval_is_answered_in_the_browser_and_a_champion_moved_meanwhile_refuses_it(stack, runs):
    from playwright.sync_api import expect

    run_id = runs["browser"]
    request = wait_for_approval_request(stack, BROWSER_DAG, run_id)
    subject = request["subject"]
    assert subject == f"Promote {GOV_BROWSER_MODEL} version 1 to champion, its first champion?"
    with signed_in_page(
        stack, "/required_actions?response_received=false", then="**/required_actions**", viewport=(1400, 1100)
    ) as page:
        row = page.get_by_role("row").filter(has_text=subject)
        expect(row).to_be_visible(timeout=30_000)
        expect(row.get_by_text("Approval Required")).to_be_visible()
        page.screenshot(path=ARTIFACTS / "gov-1-required-actions.png", full_page=True)

        row.get_by_role("link", name=subject).click()
        page.wait_for_url(f"**/tasks/{APPROVAL}/required_actions**", timeout=30_000)
        expect(page.get_by_role("heading", name="Decision and reasons")).to_be_visible(timeout=30_000)
        # The spec's hostile description shows as text: no link, no image, no bold from it.
        expect(page.get_by_text(GOV_DESCRIPTION.split(" | ")[0], exact=False)).to_be_visible()
        assert page.locator("a[href*='evil.example']").count() == 0
        assert page.locator("img[src='x']").count() == 0
        assert page.locator("strong", has_text="bold").count() == 0
        page.screenshot(path=ARTIFACTS / "gov-2-approval-request.png", full_page=True)

        # Meanwhile someone registers a model by hand in MLflow and makes it champion: the approval must not
        # promote over it.
        client = MlflowClient(stack.mlflow)
        by_hand = client.create_model_version(GOV_BROWSER_MODEL, source="s3://example-bucket/by-hand/model")
        client.set_registered_model_alias(GOV_BROWSER_MODEL, CHAMPION_ALIAS, by_hand.version)
        page.get_by_role("group").filter(has_text="Comment").get_by_role("textbox").fill("Approved in the UI")
        page.get_by_role("button", name="Approve").click()
        expect(page.get_by_text(f"{APPROVAL} response successful")).to_be_visible(timeout=30_000)
        page.screenshot(path=ARTIFACTS / "gov-3-answered.png", full_page=True)

    answered = stack.request("GET", hitl_path(BROWSER_DAG, run_id))
    assert answered["chosen_options"] == ["Approve"] and answered["responded_by_user"]["id"] == "admin"
    run = stack.wait_for_run(BROWSER_DAG, run_id)
    states = stack.task_states(BROWSER_DAG, run_id)
    assert run["state"] == "failed" and states[APPROVAL] == "success" and states["promote"] == "failed"
    assert registry(stack).aliases(GOV_BROWSER_MODEL)[CHAMPION_ALIAS] == "2", "the guard refused: the champion stays"
    assert registry(stack).champion_history(GOV_BROWSER_MODEL) == [], "a refused promotion is no move"
    version = registry(stack).version(GOV_BROWSER_MODEL, "1")
    assert version.tags[Tag.REVIEWED_BY] == "admin" and version.tags[Tag.REVIEW_COMMENT] == "Approved in the UI"
    assert version.tags[Tag.DECISION] == Decision.APPROVED
    card = card_of(stack, version)
    assert card["promotion"]["status"] == "refused"
    assert "points to version 2 but evaluation compared against version None" in card["promotion"]["message"]
    log = stack.request(
        "GET", f"/api/v2/dags/{BROWSER_DAG}/dagRuns/{run_id}/taskInstances/promote/logs/1?full_content=true"
    )
    assert "PromotionConflictError" in json.dumps(log)


def test_a_second_run_approved_through_the_api_moves_champion_and_records_the_approval(stack, runs):
    run_id = runs["approve"]  # the second night of the model whose first version the reviewer rejected
    request = wait_for_approval_request(stack, DAG, run_id)
    assert request["subject"] == f"Promote {GOV_MODEL} version 2 to champion, its first champion?"
    assert registry(stack).aliases(GOV_MODEL)[CHAMPION_ALIAS] is None
    answer(stack, DAG, run_id, "Approve", "Checked the slices and the drift report")
    run = stack.wait_for_run(DAG, run_id)
    assert run["state"] == "success", stack.task_states(DAG, run_id)
    assert stack.task_states(DAG, run_id)["promote"] == "success"
    assert registry(stack).aliases(GOV_MODEL)[CHAMPION_ALIAS] == "2"
    version = registry(stack).version(GOV_MODEL, "2")
    assert version.tags[Tag.DECISION] == Decision.PROMOTED
    assert version.tags[Tag.REVIEW_ANSWER] == "approve" and version.tags[Tag.REVIEWED_BY] == "admin"
    assert version.tags[Tag.REVIEW_COMMENT] == "Checked the slices and the drift report"
    (move,) = registry(stack).champion_history(GOV_MODEL)
    assert (move.kind, move.from_version, move.to_version, move.by, move.run_id) == ("promotion", None, "2", "admin", run_id)
    card = card_of(stack, version)
    assert card["review"]["status"] == "approved" and card["promotion"]["status"] == "promoted"


def test_no_answer_by_the_approval_timeout_is_a_rejection(stack, runs):
    run = stack.wait_for_run(TIMEOUT_DAG, runs["timeout"])
    states = stack.task_states(TIMEOUT_DAG, runs["timeout"])
    assert run["state"] == "success" and states[APPROVAL] == "success" and states["promote"] == "skipped"
    request = stack.request("GET", hitl_path(TIMEOUT_DAG, runs["timeout"]))
    assert request["chosen_options"] == ["Reject"] and request["responded_by_user"] is None
    version = registry(stack).version(GOV_TIMEOUT_MODEL, "1")
    assert version.tags[Tag.REVIEW_ANSWER] == "timeout" and version.tags[Tag.REVIEWED_BY] == ""
    assert version.tags[Tag.DECISION] == Decision.DECLINED_BY_REVIEWER
    assert registry(stack).aliases(GOV_TIMEOUT_MODEL)[CHAMPION_ALIAS] is None
    card = card_of(stack, version)
    assert card["review"]["timed_out"] is True and card["review"]["status"] == "rejected"
    assert "no answer within promotion.approval_timeout_minutes (0.2)" in card["review"]["reason"]
