"""The fleet page on the real stack, as its users reach it: the Airflow API server serving /retrain behind
Airflow's login, real nights of a model in MLflow, Debian's Chromium. Named to run after test_stack.py,
whose two nights of E2E_MODEL it reuses (it runs whichever night is missing when run alone)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from mlflow import MlflowClient

from retrain.registry import CHAMPION_ALIAS
from retrain.tags import Tag
from tests.e2e.conftest import ARTIFACTS, E2E_MODEL, EXTRA_USERS, INVALID_SPEC, signed_in_page, token_for
from tests.e2e.test_stack import trigger

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
NIGHTS = ("2025-05-01", "2025-05-02")
DAG_ID = f"retrain_{E2E_MODEL}"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def fetch(stack, path: str, token: str | None = None, accept: str = "application/json") -> tuple[int, dict, bytes]:
    """Status, headers and body of a GET, redirects not followed."""
    headers = {"Accept": accept, **({"Authorization": f"Bearer {token}"} if token else {})}
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(urllib.request.Request(f"{stack.api}{path}", headers=headers), timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def passwords(stack) -> dict[str, str]:
    return json.loads((stack.home / "simple_auth_manager_passwords.json.generated").read_text())


@pytest.fixture(scope="module")
def two_nights(stack) -> MlflowClient:
    """E2E_MODEL after two nights, each evaluated."""
    stack.wait_for_dags(DAG_ID, f"retrain_{INVALID_SPEC}", "retrain_rollback")
    client = MlflowClient(stack.mlflow)
    evaluated = {
        v.tags.get(Tag.WINDOW_END)
        for v in client.search_model_versions(f"name='{E2E_MODEL}'")
        if Tag.DECISION in v.tags
    }
    for night in NIGHTS:
        if night not in evaluated:
            run = stack.wait_for_run(DAG_ID, trigger(stack, DAG_ID, {"end_date": night}))
            assert run["state"] == "success", stack.task_states(DAG_ID, run["dag_run_id"])
    return client


def models(stack, token: str) -> dict[str, dict]:
    status, _, body = fetch(stack, "/retrain/api/models", token)
    assert status == 200, body[:500]
    return {row["name"]: row for row in json.loads(body)["models"]}


def test_after_two_nights_the_api_lists_the_model_with_its_champion_last_run_and_last_decision(stack, two_nights):
    row = models(stack, stack.token)[E2E_MODEL]
    champion = two_nights.get_model_version_by_alias(E2E_MODEL, CHAMPION_ALIAS)
    latest = max(two_nights.search_model_versions(f"name='{E2E_MODEL}'"), key=lambda v: int(v.version))
    (last,) = stack.request("GET", f"/api/v2/dags/{DAG_ID}/dagRuns?order_by=-run_after&limit=1")["dag_runs"]
    assert row["champion"]["version"] == champion.version and row["champion"]["since"]
    assert (row["last_run"]["run_id"], row["last_run"]["state"]) == (last["dag_run_id"], last["state"])
    assert row["decision"]["version"] == latest.version
    assert row["decision"]["decision"] == latest.tags[Tag.DECISION]
    assert " | ".join(row["decision"]["reasons"]) == latest.tags[Tag.REASONS]
    assert row["drift"]["status"] in {"drift", "none"}  # night 2 was compared with night 1's champion
    assert row["next_run"] is None  # manual-only DAG
    invalid = models(stack, stack.token)[INVALID_SPEC]
    assert "field 'colour'" in invalid["error"] and invalid["champion"] is None


def test_in_the_browser_the_page_report_and_trigger_form_open_from_the_models_entry(stack, two_nights):
    from playwright.sync_api import expect

    champion = two_nights.get_model_version_by_alias(E2E_MODEL, CHAMPION_ALIAS).version
    latest = max(two_nights.search_model_versions(f"name='{E2E_MODEL}'"), key=lambda v: int(v.version))
    with signed_in_page(stack, "/retrain/", then="**/retrain/", viewport=(1400, 900)) as page:
        row = page.get_by_role("row").filter(has=page.get_by_role("link", name=E2E_MODEL, exact=True))
        expect(row).to_contain_text(f"v{champion}")
        expect(row).to_contain_text(latest.tags[Tag.DECISION])
        broken = page.get_by_role("row").filter(has=page.get_by_role("link", name=INVALID_SPEC, exact=True))
        expect(broken).to_contain_text("invalid spec")
        expect(broken).to_contain_text("field 'colour'")
        page.screenshot(path=ARTIFACTS / "fleet-1-models.png", full_page=True)

        page.goto(f"{stack.api}/dags")  # the navigation entry, inside Airflow's UI
        page.get_by_role("link", name="Models").click()
        frame = page.frame_locator("iframe")
        expect(frame.get_by_role("heading", name="Models")).to_be_visible(timeout=30_000)
        expect(frame.get_by_role("link", name=E2E_MODEL, exact=True)).to_be_visible()
        page.screenshot(path=ARTIFACTS / "fleet-2-in-airflow.png")

        page.goto(f"{stack.api}/retrain/models/{E2E_MODEL}")
        expect(page.get_by_role("heading", name="Metric history")).to_be_visible()
        page.screenshot(path=ARTIFACTS / "fleet-3-model.png", full_page=True)
        with page.expect_popup() as popup:
            page.get_by_role("link", name="evaluation.html").first.click()
        report = popup.value
        report.wait_for_load_state()
        expect(report.get_by_role("heading", level=1)).to_contain_text(E2E_MODEL)
        assert report.evaluate("document.contentType") == "text/html"
        report.screenshot(path=ARTIFACTS / "fleet-4-report.png", full_page=True)
        report.close()

        page.goto(f"{stack.api}/retrain/")
        page.get_by_role("row").filter(has=page.get_by_role("link", name=E2E_MODEL, exact=True)).get_by_role(
            "link", name="Trigger…"
        ).click()
        page.wait_for_url(f"**/dags/{DAG_ID}", timeout=30_000)
        page.get_by_role("button", name="Trigger").first.click()
        dialog = page.get_by_role("dialog")
        expect(dialog).to_be_visible(timeout=30_000)
        expect(dialog).to_contain_text(DAG_ID)
        page.screenshot(path=ARTIFACTS / "fleet-5-trigger-form.png")
        page.keyboard.press("Escape")

        page.goto(f"{stack.api}/retrain/")
        page.get_by_role("row").filter(has=page.get_by_role("link", name=E2E_MODEL, exact=True)).get_by_role(
            "link", name="Roll back…"
        ).click()
        page.wait_for_url("**/dags/retrain_rollback", timeout=30_000)
        page.get_by_role("button", name="Trigger").first.click()
        expect(page.get_by_role("dialog")).to_contain_text("Model", timeout=30_000)
        page.screenshot(path=ARTIFACTS / "fleet-6-rollback-form.png")


def test_a_user_without_credentials_gets_401_or_the_login_page_and_one_without_access_sees_nothing(stack, two_nights):
    from playwright.sync_api import expect

    status, _, body = fetch(stack, "/retrain/api/models")
    assert (status, json.loads(body)) == (401, {"detail": "Not authenticated"})
    status, headers, _ = fetch(stack, "/retrain/", accept="text/html")
    assert status == 307 and headers["location"].startswith("/api/v2/auth/login?next=")

    assert set(EXTRA_USERS) == {"viewer", "outsider"}
    secret = passwords(stack)
    outsider = token_for(stack.api, "outsider", secret["outsider"])
    assert models(stack, outsider) == {}
    for path in (f"/retrain/api/models/{E2E_MODEL}", f"/retrain/models/{E2E_MODEL}/versions/1/reports/evaluation.html"):
        assert fetch(stack, path, outsider)[0] == 404
    viewer = token_for(stack.api, "viewer", secret["viewer"])
    assert E2E_MODEL in models(stack, viewer)
    _, _, page = fetch(stack, "/retrain/", viewer, accept="text/html")
    assert b"Trigger\xe2\x80\xa6" not in page and b"Roll back" not in page  # a viewer may not create runs

    def login_page_shown(page) -> None:
        expect(page.get_by_role("button", name="Sign in")).to_be_visible(timeout=30_000)
        page.screenshot(path=ARTIFACTS / "fleet-7-login.png")

    with signed_in_page(
        stack, f"/retrain/models/{E2E_MODEL}", then="**/retrain/models/**", viewport=(1200, 700),
        user="outsider", password=secret["outsider"], on_login_page=login_page_shown,
    ) as page:  # fmt: skip
        expect(page.get_by_role("heading", name="Not found")).to_be_visible()
        page.goto(f"{stack.api}/retrain/")
        expect(page.get_by_text("No model you may see")).to_be_visible()
        page.screenshot(path=ARTIFACTS / "fleet-8-outsider.png")


@pytest.mark.parametrize(
    "path",
    [
        "/retrain/api/models/no_such_model",
        f"/retrain/models/{E2E_MODEL}/versions/1/reports/%2E%2E",
        f"/retrain/models/{E2E_MODEL}/versions/1/reports/..%2F..%2Fmeta.yaml",
        f"/retrain/models/{E2E_MODEL}/versions/1/reports/%2Fetc%2Fpasswd",
        f"/retrain/models/{E2E_MODEL}/versions/1/reports/not_a_report.html",
    ],
)
def test_bad_names_are_404_on_the_real_server(stack, two_nights, path):
    assert fetch(stack, path, stack.token)[0] == 404
