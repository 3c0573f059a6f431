"""The fleet page inside Airflow's own API server app (plugins folder loaded as the API server loads it),
on a real metadata DB holding a real night of a model run with dag.test(), and a real MLflow server.
Requests go through Airflow's auth manager with real JWTs: the bearer header and the UI's `_token` cookie."""

from __future__ import annotations

import datetime as dt
import os

import pytest

from retrain.tags import Tag
from tests.support import free_port, run_dag, write_spec

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MODEL, BROKEN = "fleet_it", "fleet_it_broken"


@pytest.fixture(scope="module")
def night(airflow_db, mlflow_server, tmp_path_factory):
    """One night of MODEL, and a broken spec next to it."""
    specs = tmp_path_factory.mktemp("fleet_specs")
    # A small night: half the window and few bootstrap resamples (what is tested is the page, not the model).
    path = write_spec(specs, MODEL, **{"schedule.tags": ["team-a"], "data.lookback_days": 28,
                                       "evaluation.bootstrap.resamples": 20})  # fmt: skip
    (specs / f"{BROKEN}.yaml").write_text(
        path.read_text().replace(f"name: {MODEL}", f"name: {BROKEN}") + "colour: red\n"
    )
    states, dag_run = run_dag(path, dt.date(2025, 5, 1))
    assert set(states.values()) == {"success"}, states
    return specs, dag_run.run_id


@pytest.fixture(scope="module")
def client(night):
    from airflow.api_fastapi.app import create_app, get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from fastapi.testclient import TestClient

    specs, _ = night
    previous = os.environ.get("RETRAIN_SPECS_DIR")
    os.environ["RETRAIN_SPECS_DIR"] = str(specs)
    try:
        client = TestClient(create_app("all"), base_url="http://127.0.0.1:8080")
        manager = get_auth_manager()
        client.tokens = {  # type: ignore[attr-defined]
            role or "nobody": manager.generate_jwt(SimpleAuthManagerUser(username=role or "nobody", role=role))
            for role in ("admin", "viewer", "")
        }
        yield client
    finally:
        os.environ["RETRAIN_SPECS_DIR"] = previous or ""


def get(client, path: str, user: str | None = "admin", cookie: bool = False, **kwargs):
    token = client.tokens.get(user, user)
    if token is None:
        return client.get(path, follow_redirects=False, **kwargs)
    if cookie:
        return client.get(path, cookies={"_token": token}, follow_redirects=False, **kwargs)
    return client.get(path, headers={"Authorization": f"Bearer {token}"}, follow_redirects=False, **kwargs)


def rows(client, user="admin") -> dict:
    response = get(client, "/retrain/api/models", user)
    assert response.status_code == 200, response.text
    return {row["name"]: row for row in response.json()["models"]}


def test_the_api_lists_the_model_with_its_champion_last_run_and_decision_and_the_broken_spec(client, night):
    _, run_id = night
    found = rows(client)
    row = found[MODEL]
    assert row["champion"]["version"] == "1" and row["champion"]["since"]  # age known from champion_since
    assert row["last_run"]["run_id"] == run_id and row["last_run"]["state"] == "success"
    assert row["decision"]["decision"] == "promoted" and row["decision"]["from_last_run"] is True
    assert row["decision"]["reasons"] and row["drift"]["status"] == "not_compared"
    assert "team-a" in row["tags"] and row["links"]["last_run"].endswith(run_id.replace(":", "%3A").replace("+", "%2B"))
    broken = found[BROKEN]
    assert "colour" in broken["error"] and broken["champion"] is None
    assert [r["name"] for r in get(client, "/retrain/api/models?tag=team-a").json()["models"]] == [MODEL]


def test_the_page_and_a_report_open_in_a_browser_session(client):
    page = get(client, "/retrain/", cookie=True)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src" not in page.headers["content-security-policy"]  # no script at all: default-src 'none'
    assert f'href="/retrain/models/{MODEL}"' in page.text and "invalid spec" in page.text
    detail = get(client, f"/retrain/api/models/{MODEL}").json()
    (v1,) = detail["versions"]
    reports = {r["name"]: r["url"] for r in v1["reports"]}
    assert {"evaluation.html", "validation.html", "validation.json"} <= set(reports)
    report = get(client, reports["evaluation.html"], cookie=True)
    assert report.status_code == 200 and report.headers["content-type"] == "text/html; charset=utf-8"
    assert report.headers["content-security-policy"].startswith("sandbox")
    assert f"<h1>{MODEL}: " in report.text and report.headers["x-content-type-options"] == "nosniff"
    data = get(client, reports["validation.json"])
    assert data.headers["content-type"] == "application/json" and data.json()["success"] is True
    model_page = get(client, f"/retrain/models/{MODEL}", cookie=True)
    assert reports["evaluation.html"] in model_page.text and "<h2>Metric history</h2><svg" in model_page.text


@pytest.mark.parametrize(
    "path",
    [
        "/retrain/api/models/no_such_model",
        "/retrain/models/no_such_model",
        f"/retrain/models/{MODEL}/versions/1/reports/nope.html",  # not among the run's artifacts
        f"/retrain/models/{MODEL}/versions/1/reports/%2E%2E",
        f"/retrain/models/{MODEL}/versions/1/reports/..%2Fmeta.yaml",
        f"/retrain/models/{MODEL}/versions/1/reports/%2Fetc%2Fpasswd",
        f"/retrain/models/{MODEL}/versions/1/reports/..%5C..%5Cmeta.yaml",
        f"/retrain/models/{MODEL}/versions/1/model/MLmodel",  # a folder the page does not serve
        f"/retrain/models/{MODEL}/versions/99/reports/evaluation.html",
        f"/retrain/models/{MODEL}/versions/1%2F..%2F2/reports/evaluation.html",
        f"/retrain/models/{BROKEN}/versions/1/reports/evaluation.html",
    ],
)
def test_bad_names_are_404(client, path):
    assert get(client, path).status_code == 404


def test_without_credentials_the_api_says_401_and_a_page_goes_to_airflows_login(client):
    assert get(client, "/retrain/api/models", None).status_code == 401
    assert get(client, "/retrain/api/models", "not-a-jwt").status_code == 403
    for user in (None, "not-a-jwt"):
        page = get(client, f"/retrain/models/{MODEL}", user, cookie=user is not None)
        assert page.status_code == 307
        assert page.headers["location"] == (
            f"/api/v2/auth/login?next=http%3A%2F%2F127.0.0.1%3A8080%2Fretrain%2Fmodels%2F{MODEL}"
        )
    report = get(client, f"/retrain/models/{MODEL}/versions/1/reports/evaluation.html", None)
    assert report.status_code == 307 and "Set-Cookie" not in report.headers


def test_a_user_sees_a_model_only_when_they_may_read_its_dag_and_actions_only_when_they_may_trigger(client):
    assert set(rows(client, "viewer")) == {MODEL, BROKEN}
    viewer_page = get(client, "/retrain/", "viewer").text
    assert "Trigger…" not in viewer_page and "Trigger…" in get(client, "/retrain/").text
    assert rows(client, "nobody") == {}
    for path in (f"/retrain/api/models/{MODEL}", f"/retrain/models/{MODEL}",
                 f"/retrain/models/{MODEL}/versions/1/reports/evaluation.html"):  # fmt: skip
        assert get(client, path, "nobody").status_code == 404


def test_with_mlflow_down_the_page_says_so_and_still_lists_the_dags(client, monkeypatch, night):
    _, run_id = night
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    body = get(client, "/retrain/api/models").json()
    assert body["registry"]["reachable"] is False and body["registry"]["error"]
    row = {r["name"]: r for r in body["models"]}[MODEL]
    assert row["champion"] is None and row["last_run"]["run_id"] == run_id
    assert row["decision"]["decision"] == "approved"  # from the run's evaluation output; `promoted` is MLflow's word
    page = get(client, "/retrain/", cookie=True)
    assert page.status_code == 200 and "The model registry is unreachable" in page.text and MODEL in page.text
    detail = get(client, f"/retrain/models/{MODEL}", cookie=True)
    assert detail.status_code == 200 and "The model registry is unreachable" in detail.text
    report = get(client, f"/retrain/models/{MODEL}/versions/1/reports/evaluation.html")
    assert report.status_code == 503


def test_a_pending_approval_shows_with_a_link_to_its_required_action_and_goes_once_answered(client, night):
    """The request row as Airflow's execution API writes it for an ApprovalOperator (issue 17's gate),
    on a task of the real run; the task parked as `awaiting_input`."""
    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    _, run_id = night
    with create_session() as session:
        ti = session.scalars(
            select(TaskInstance).where(TaskInstance.dag_id == f"retrain_{MODEL}", TaskInstance.run_id == run_id,
                                       TaskInstance.task_id == "promote")
        ).one()  # fmt: skip
        state, ti_id = ti.state, ti.id
        ti.state = "awaiting_input"
        session.add(HITLDetail(ti_id=ti_id, options=["Approve", "Reject"], subject="Promote <v1>?", params={}))
    try:
        approval = rows(client)[MODEL]["approval"]
        assert (approval["task_id"], approval["subject"]) == ("promote", "Promote <v1>?")
        assert rows(client)[MODEL]["links"]["approval"].endswith("/tasks/promote/required_actions")
        assert "Promote &lt;v1&gt;?" in get(client, "/retrain/", cookie=True).text
        with create_session() as session:
            session.get(HITLDetail, ti_id).responded_at = dt.datetime.now(dt.UTC)
        assert rows(client)[MODEL]["approval"] is None
    finally:
        with create_session() as session:
            session.delete(session.get(HITLDetail, ti_id))
            session.get(TaskInstance, ti_id).state = state


def test_a_monitoring_run_gives_the_row_its_trend_through_the_one_search(client, registry):
    from retrain.registry.monitoring import DayPoint

    days = [dt.date(2025, 6, 1) + dt.timedelta(days=n) for n in range(4)]
    values = [0.81, 0.79, 0.74, 0.7]
    points = [DayPoint("live_roc_auc", day, value) for day, value in zip(days, values, strict=True)]
    registry.log_monitoring(MODEL, "trend", {Tag.LIVE_METRIC: "roc_auc"}, points)
    assert rows(client)[MODEL]["live_metric"] == values
    page = get(client, "/retrain/", cookie=True, headers={"accept": "text/html"}).text
    assert "Trend" in page and "<svg" in page


def test_promotion_records_on_the_registered_model_since_when_the_champion_holds_the_alias(night, registry):
    assert registry.summaries([MODEL])[MODEL].tags[Tag.CHAMPION_SINCE].startswith("1@")


@pytest.mark.parametrize("name", ["nope.html", "..", "../meta.yaml", "/etc/passwd", "evaluation.html/..", ""])
def test_the_registry_reads_only_a_plain_name_listed_in_the_runs_folder(night, registry, name):
    from retrain.registry import ArtifactNotFound

    run_id = registry.version(MODEL, "1").run_id
    assert "evaluation.html" in registry.artifact_names(run_id, "reports")
    assert registry.read_artifact(run_id, "reports", "evaluation.html").startswith(b"<!doctype html>")
    with pytest.raises(ArtifactNotFound):
        registry.read_artifact(run_id, "reports", name)
