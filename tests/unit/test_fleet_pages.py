"""The fleet pages as HTML, and who may see and do what: every value from a spec, the registry or Airflow
is escaped; links are Airflow's own pages with encoded path segments; the auth decisions are asked of
Airflow's real simple auth manager."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from retrain import fleet
from retrain.fleet import Champion, DriftStatus, LastRun, ModelRow, PendingApproval, VersionDecision
from retrain_ui import pages

NOW = dt.datetime(2025, 5, 3, 12, 0, tzinfo=dt.UTC)
HOSTILE = '<script>alert("x")</script>'
CTX = pages.PageContext(
    base="/retrain", airflow="", user=HOSTILE, can_trigger=frozenset({"retrain_churn"}),
    rollback_dag_id="retrain_rollback", now=NOW,
)  # fmt: skip


def full_row(**changes) -> ModelRow:
    row = ModelRow(
        name="churn", dag_id="retrain_churn", file="churn.yaml", tags=(HOSTILE, "retrain"), in_airflow=True,
        paused=False, next_run=NOW + dt.timedelta(hours=14), champion=Champion("3", NOW - dt.timedelta(days=2, hours=3), None),
        previous="2", last_run=LastRun("manual__2025-05-02T02:00:00+00:00", "success", NOW - dt.timedelta(hours=10),
                                       f"manual by {HOSTILE}", outcome=f"version 3 promoted {HOSTILE}"),
        decision=VersionDecision("3", "promoted", (HOSTILE, "beats the baseline"), "2025-05-02", "r", True),
        drift=DriftStatus("drift", (HOSTILE, "monthly_spend"), True, 0.5),
    )  # fmt: skip
    return fleet.dataclasses.replace(row, **changes)


def assert_escaped(page: str) -> None:
    assert "<script" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page


def test_the_models_page_escapes_every_value_from_data():
    broken = ModelRow("bad", "retrain_bad", "bad.yaml", error=f"bad.yaml: invalid model spec {HOSTILE}")
    page = pages.models_page(
        [full_row(), broken], CTX, tags=[HOSTILE], sort="name", descending=False, tag=HOSTILE, registry_error=HOSTILE
    )
    assert_escaped(page)
    assert (
        page.count("&lt;script&gt;") >= 8
    )  # user, tag option, row tags, trigger, outcome, reason, drift, error, banner


def test_a_row_shows_champion_age_previous_last_run_decision_drift_and_next_run():
    page = pages.models_page([full_row()], CTX, tags=[], sort="name", descending=False, tag=None, registry_error=None)
    cells = re.findall(r"<td>(.*?)</td>", page.split("<tbody>")[1])
    assert cells[1:4] == ["v3", '<span class="nowrap">2 d 3 h</span>', "v2"]
    assert 'href="/dags/retrain_churn/runs/manual__2025-05-02T02%3A00%3A00%2B00%3A00"' in page
    assert "2025-05-03 02:00 UTC" in page  # the last run, and the next run:
    assert "2025-05-04 02:00 UTC" in page
    assert "promoted" in page and "beats the baseline" in page and "+ label" in page
    assert 'role="alert"' not in page


def test_a_broken_spec_is_a_row_with_its_error():
    broken = ModelRow("bad", "retrain_bad", "bad.yaml", error="bad.yaml: invalid model spec\n  - field 'x': nope")
    page = pages.models_page([broken], CTX, tags=[], sort="name", descending=False, tag=None, registry_error=None)
    row = page.split("<tbody>")[1]
    assert 'class="broken"' in row and "field &#x27;x&#x27;: nope" in row and 'href="/retrain/models/bad"' in row


def test_the_registry_being_down_is_said_and_the_rows_stay():
    row = full_row(champion=None, previous=None, decision=None)
    page = pages.models_page([row], CTX, tags=[], sort="name", descending=False, tag=None, registry_error="refused")
    assert "The model registry is unreachable: refused" in page and 'href="/retrain/models/churn"' in page


def test_approval_and_trend_columns_show_only_once_some_row_has_their_data():
    def page(rows):
        return pages.models_page(rows, CTX, tags=[], sort="name", descending=False, tag=None, registry_error=None)

    row = full_row()
    without = page([row])
    assert "<th>Trend</th>" not in without and "<th>Approval</th>" not in without and "<svg" not in without
    approval = PendingApproval("retrain_churn", "r 1", "approve_promotion", f"Promote {HOSTILE}?", NOW)
    with_data = page([fleet.dataclasses.replace(row, approval=approval, live_metric=(0.8, 0.7)), full_row(name="b")])
    assert "<th>Trend</th>" in with_data and "<th>Approval</th>" in with_data
    assert "<svg" in with_data and "awaiting approval" in with_data and "<script" not in with_data
    assert 'href="/dags/retrain_churn/runs/r%201/tasks/approve_promotion/required_actions"' in with_data
    body = with_data.split("<tbody>")[1]
    assert all(tr.count("<td>") == len(pages.COLUMNS) for tr in body.split("</tr>")[:-1])


def test_actions_link_into_airflows_own_forms_only_for_users_who_may_use_them():
    row = full_row()
    assert pages.actions(row, CTX).count("<a ") == 3  # DAG, Trigger…, Roll back…
    viewer = pages.PageContext(base="/retrain", airflow="", user="vic", now=NOW)
    links = pages.actions(row, viewer)
    assert links.count("<a ") == 1 and "Trigger" not in links and "Roll back" not in links
    assert "Roll back" not in pages.actions(full_row(champion=None), CTX)
    prefixed = pages.PageContext(
        base="/airflow/retrain", airflow="/airflow", user="x", can_trigger=frozenset({"retrain_churn"})
    )
    assert 'href="/airflow/dags/retrain_churn"' in pages.actions(row, prefixed)


def test_column_headers_sort_and_keep_the_tag_filter():
    page = pages.models_page([], CTX, tags=["team-a"], sort="age", descending=False, tag="team-a", registry_error=None)
    assert 'href="/retrain/?sort=age&amp;order=desc&amp;tag=team-a">Age ▲' in page
    assert 'href="/retrain/?sort=name&amp;order=asc&amp;tag=team-a">Model<' in page
    assert '<option value="team-a" selected>' in page and "No model you may see with tag team-a" in page


def test_the_model_page_shows_history_plot_versions_reports_and_hooks_only_with_data():
    v = fleet.ModelVersion("churn", "3", "run3", "READY", created_at=NOW, tags={
        "retrain.decision": "promoted", "retrain.challenger_score": "0.81", "retrain.metric": "roc_auc",
        "retrain.reasons": HOSTILE, "retrain.report.evaluation_html": "/w/x/evaluation.html"})  # fmt: skip
    detail = fleet.build_detail(full_row(), [v], {"champion": "3"})
    page = pages.model_page(detail, CTX)
    assert_escaped(page)
    assert 'href="/retrain/models/churn/versions/3/reports/evaluation.html"' in page
    assert "<h2>Metric history</h2><svg" in page and "<td>0.8100</td>" in page
    assert "Champion history" not in page and "Model card" not in page
    history = [{"at": "2025-05-02T02:10:00", "from_version": "2", "to_version": "3", "reason": HOSTILE, "by": "ana",
                "kind": "promotion"}]  # fmt: skip
    detail = fleet.build_detail(full_row(), [v], {"champion": "3"}, champion_history=history, model_card=["card.html"])
    page = pages.model_page(detail, CTX, registry_error=None)
    assert "<h2>Champion history</h2>" in page and "2 → 3" in page
    assert 'href="/retrain/models/churn/versions/3/model_card/card.html"' in page
    assert_escaped(page)


@pytest.mark.parametrize(
    ("since", "text"),
    [(None, "—"), (NOW, "0 s"), (NOW - dt.timedelta(seconds=40), "40 s"), (NOW - dt.timedelta(minutes=62), "1 h 2 min"),
     (NOW - dt.timedelta(days=400, minutes=5), "400 d 5 min")],
)  # fmt: skip
def test_ages_read_in_two_units(since, text):
    assert pages.age(since, NOW) == text


# Who may see and do what, asked of Airflow's simple auth manager itself


@pytest.fixture(scope="module")
def auth():
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    def user(role: str, teams=None):
        return SimpleAuthManagerUser(username=role or "nobody", role=role, teams=teams)

    return SimpleAuthManager(), user


def test_a_user_sees_the_models_whose_dag_they_may_read(auth):
    from retrain_ui.app import visible_dag_ids

    manager, user = auth
    dags = {"retrain_a", "retrain_b"}
    assert visible_dag_ids(manager, user("admin"), dags, {}) == dags
    assert visible_dag_ids(manager, user("viewer"), dags, {}) == dags
    assert visible_dag_ids(manager, user(""), dags, {}) == set()  # a user with no role reads no DAG
    teams = {"retrain_b": "fraud"}  # a DAG of another team's bundle
    assert visible_dag_ids(manager, user("viewer", ["churn"]), dags, teams) == {"retrain_a"}
    assert visible_dag_ids(manager, user("viewer", ["fraud"]), dags, teams) == dags


def test_only_users_who_may_create_runs_get_the_trigger_and_rollback_links(auth):
    from retrain_ui.app import may_trigger

    manager, user = auth
    assert may_trigger(manager, user("user"), "retrain_a") and may_trigger(manager, user("admin"), "retrain_a")
    assert not may_trigger(manager, user("viewer"), "retrain_a") and not may_trigger(manager, user(""), "retrain_a")


def test_a_registry_error_shown_on_the_page_carries_no_credentials_and_fits_one_line():
    from retrain_ui.app import error_line

    error = ConnectionError("API request to https://ana:<password>@mlflow.example:443/api/2.0/x failed\n  retries exceeded")
    assert error_line(error) == "API request to https://***@mlflow.example:443/api/2.0/x failed retries exceeded"
    assert len(error_line(ValueError("x" * 1000))) == 300
