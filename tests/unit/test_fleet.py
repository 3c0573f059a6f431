"""The fleet view from plain values: what each row says, sorting and filtering, the Model page, the path
checks on artifact names, and the hooks for what other issues will add (empty until their data exists)."""

from __future__ import annotations

import datetime as dt
import os
import time
from types import SimpleNamespace

import pytest

from retrain import fleet
from retrain.contracts import DriftResult, EvaluationResult, ValidationResult
from retrain.fleet import AirflowFacts, DagFacts, PendingApproval, RunFacts, SpecCatalog
from retrain.pipeline import producer
from retrain.registry import ModelVersion, RegisteredModelSummary, is_plain_file_name
from retrain.tags import Decision, Tag
from tests.support import write_spec

T0 = dt.datetime(2025, 5, 2, 2, 0, tzinfo=dt.UTC)
VALIDATE, DRIFT, EVALUATE = (producer(kind).task_id for kind in (ValidationResult, DriftResult, EvaluationResult))


def version(number: int, **tags: str) -> ModelVersion:
    return ModelVersion("churn", str(number), f"run{number}", "READY", tags=tags, created_at=T0)


def summary(
    champion: str | None = "1", previous: str | None = None, latest=None, **model_tags
) -> RegisteredModelSummary:
    aliases = {k: v for k, v in (("champion", champion), ("previous", previous)) if v}
    return RegisteredModelSummary("churn", aliases, model_tags, latest)


def entry(name: str = "churn", error: str | None = None) -> fleet.SpecEntry:
    return fleet.SpecEntry(f"{name}.yaml", name, f"retrain_{name}", error=error)


def run(state: str = "success", run_id: str = "manual__2", **outputs) -> RunFacts:
    return RunFacts("retrain_churn", run_id, state, T0, "manual", "rest_api", "ana", outputs=outputs)


def facts(last_run: RunFacts | None = None, **dag) -> AirflowFacts:
    dag_facts = DagFacts("retrain_churn", **{"is_paused": False, "tags": ("retrain",), **dag})
    return AirflowFacts({"retrain_churn": dag_facts}, {"retrain_churn": last_run} if last_run else {})


def evaluation(promote: bool, **changes) -> dict:
    fields = dict(
        model="churn", version="2", mlflow_run_id="r2", champion_version="1", already_champion=False,
        promote=promote, forced=False, reasons=("roc_auc 0.81 vs 0.80",), dry_run=False, window_end="2025-05-02",
        metric="roc_auc",
    )  # fmt: skip
    return EvaluationResult(**{**fields, **changes}).to_xcom()


# Specs


def test_a_broken_spec_is_an_entry_with_its_error_and_the_dag_id_airflow_gives_it(tmp_path):
    good = write_spec(tmp_path, "good_model")
    broken = tmp_path / "Bad-Model.yaml"
    broken.write_text("name: bad_model\nfoo: [")
    entries = {e.file: e for e in SpecCatalog(tmp_path).entries()}
    assert entries[good.name].spec is not None and entries[good.name].error is None
    assert entries[good.name].dag_id == "retrain_good_model"
    bad = entries["Bad-Model.yaml"]
    assert bad.spec is None and "not valid YAML" in bad.error and str(broken) in bad.error
    assert (bad.name, bad.dag_id) == ("Bad-Model", "retrain_bad_model")


def test_the_catalog_parses_a_file_again_only_when_it_changed_and_forgets_removed_files(tmp_path):
    path = write_spec(tmp_path, "cached")
    catalog = SpecCatalog(tmp_path)
    first = catalog.entries()[0]
    assert catalog.entries()[0] is first  # unchanged: the same parsed entry
    path.write_text(path.read_text().replace("lookback_days: 56", "lookback_days: 0"))
    os.utime(path, ns=(time.time_ns() + 10**9,) * 2)
    changed = catalog.entries()[0]
    assert changed is not first and "lookback_days" in changed.error
    path.unlink()
    assert catalog.entries() == []


# Rows


def test_a_row_shows_the_champion_its_age_previous_the_last_run_and_its_decision():
    promoted_at = "2025-05-02T02:10:00+00:00"
    latest = version(2, **{Tag.DECISION: Decision.PROMOTED, Tag.REASONS: "a | b", Tag.EVALUATED_BY_RUN: "manual__2",
                           Tag.WINDOW_END: "2025-05-02", Tag.PROMOTED_AT: promoted_at})  # fmt: skip
    models = {"churn": summary("2", "1", latest, **{Tag.CHAMPION_SINCE: f"2@{promoted_at}"})}
    last = run(
        **{EVALUATE: evaluation(True), DRIFT: DriftResult(True, "1", True, ("monthly_spend",), False, 0.4).to_xcom()}
    )
    (row,) = fleet.build_rows([entry()], facts(last, next_run=T0 + dt.timedelta(days=1)), models)
    assert row.champion == fleet.Champion("2", dt.datetime.fromisoformat(promoted_at), "2025-05-02")
    assert row.previous == "1"
    assert (row.last_run.state, row.last_run.trigger, row.last_run.outcome) == (
        "success",
        "manual by ana",
        "version 2 promoted",
    )
    assert row.decision == fleet.VersionDecision("2", "promoted", ("a", "b"), "2025-05-02", "manual__2", True)
    assert row.drift == fleet.DriftStatus("drift", ("monthly_spend",), False, 0.4)
    assert row.next_run == T0 + dt.timedelta(days=1) and row.paused is False and row.in_airflow


def test_champion_age_comes_from_the_model_tag_only_when_it_names_the_champion():
    stale_mark = {Tag.CHAMPION_SINCE: "1@2025-05-01T00:00:00+00:00"}  # champion moved by hand since
    assert fleet.champion_of(summary("3", **stale_mark)) == fleet.Champion("3", None, None)
    latest = version(3, **{Tag.ROLLED_BACK_TO_AT: "2025-06-01T00:00:00+00:00", Tag.PROMOTED_AT: "2025-05-01T00:00:00"})
    assert fleet.champion_of(summary("3", latest=latest, **stale_mark)).since == dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
    assert fleet.champion_of(summary(None)) is None
    assert fleet.champion_of(summary("3", **{Tag.CHAMPION_SINCE: "3@not a time"})).since is None


def test_a_decision_from_an_earlier_run_is_marked_so():
    latest = version(2, **{Tag.DECISION: Decision.DECLINED, Tag.EVALUATED_BY_RUN: "manual__1"})
    last = run("failed", "manual__2", **{VALIDATE: ValidationResult(False, 0, {}, error="no data").to_xcom()})
    row = fleet.build_row(entry(), facts(last), summary("1", latest=latest))
    assert row.decision.decision == "declined" and row.decision.from_last_run is False
    assert row.last_run.outcome == "stopped by validation: no data"


def test_without_the_registry_the_row_still_tells_the_run_and_the_decision_from_its_evaluation():
    last = run(**{EVALUATE: evaluation(False)})
    (row,) = fleet.build_rows([entry()], facts(last), None)
    assert row.champion is None and row.previous is None
    assert row.decision == fleet.VersionDecision(
        "2", Decision.DECLINED, ("roc_auc 0.81 vs 0.80",), "2025-05-02", "manual__2", True
    )
    assert row.last_run.outcome == "version 2 declined"


@pytest.mark.parametrize(
    ("state", "outputs", "failed", "outcome"),
    [
        ("running", {}, (), ""),
        ("failed", {VALIDATE: ValidationResult(False, 9, {}, statistics={"failed": 3},
                                               failed=({"type": "expect_x", "column": "churned"},)).to_xcom()},
         ("validate_data",), "stopped by validation: 3 failed expectation(s): expect_x(churned)"),
        ("failed", {}, ("train",), "failed at train"),
        ("success", {DRIFT: DriftResult(True, "1", False).to_xcom()}, (), "no drift: nothing retrained"),
        ("success", {EVALUATE: evaluation(True, **{"already_champion": True})}, (), "version 2 already champion"),
        ("success", {EVALUATE: {"not": "an evaluation"}}, (), "finished without a decision"),
    ],
)  # fmt: skip
def test_the_last_run_outcome_in_one_sentence(state, outputs, failed, outcome):
    facts_ = RunFacts("retrain_churn", "r", state, T0, failed_tasks=failed, outputs=outputs)
    assert fleet.outcome_of(facts_) == outcome


def test_drift_status_of_the_last_run():
    assert fleet.drift_of(None) == fleet.DriftStatus("unknown")
    assert fleet.drift_of(run(**{DRIFT: DriftResult(False).to_xcom()})).status == "not_compared"
    assert fleet.drift_of(run(**{DRIFT: DriftResult(True, "1", False, max_psi=0.01).to_xcom()})).status == "none"


def test_a_spec_that_airflow_has_not_parsed_and_a_broken_spec_are_rows_too():
    rows = fleet.build_rows([entry("fresh"), entry("bad", error="bad.yaml: invalid model spec")], AirflowFacts(), {})
    assert [(r.name, r.in_airflow, r.paused, r.error) for r in rows] == [
        ("fresh", False, None, None), ("bad", False, None, "bad.yaml: invalid model spec")
    ]  # fmt: skip


def test_a_paused_dag_has_no_next_run_and_tags_join_the_dags_and_the_specs(tmp_path):
    spec_entry = fleet.read_spec_entry(write_spec(tmp_path, "churn", **{"schedule.tags": ["team-a"]}))
    row = fleet.build_row(spec_entry, facts(is_paused=True, next_run=T0, tags=("retrain", "model:churn")), None)
    assert row.next_run is None and row.paused is True
    assert row.tags == ("model:churn", "retrain", "team-a")


# Hooks for the work of issues 16 and 17: nothing shows until their data exists


def test_the_oldest_pending_approval_is_shown_and_none_when_there_is_none():
    older = PendingApproval("retrain_churn", "r1", "approve_promotion", "Promote v2?", T0)
    newer = PendingApproval("retrain_churn", "r2", "approve_promotion", "Promote v3?", T0 + dt.timedelta(hours=1))
    with_approvals = AirflowFacts(facts().dags, {}, {"retrain_churn": (newer, older)})
    assert fleet.build_row(entry(), with_approvals, None).approval == older
    assert fleet.build_row(entry(), facts(), None).approval is None


def test_the_live_metric_trend_needs_two_points_and_draws_nothing_otherwise():
    rows = fleet.build_rows([entry()], facts(), None, live_metrics={"churn": [0.8]})
    assert rows[0].live_metric == () and fleet.sparkline_svg(rows[0].live_metric) == ""
    (row,) = fleet.build_rows([entry()], facts(), None, live_metrics={"churn": [0.8, 0.78, float("nan"), 0.75]})
    svg = fleet.sparkline_svg(row.live_metric)
    assert svg.startswith("<svg") and "polyline" in svg and "last 0.75" in svg


def test_the_champion_history_is_read_from_mappings_or_objects_and_empty_without_one():
    assert fleet.build_detail(fleet.build_row(entry(), facts(), None)).champion_history == ()
    at = dt.datetime(2025, 7, 1, tzinfo=dt.UTC)
    entries = [
        {"at": at, "from_version": 1, "to_version": 2, "reason": "better", "by": "promote", "kind": "promotion"},
        SimpleNamespace(at="2025-07-02", from_version="2", to_version="1", reason="bad", by="ana", kind="rollback"),
    ]
    history = fleet.build_detail(fleet.build_row(entry(), facts(), None), champion_history=entries).champion_history
    assert history == (
        fleet.ChampionChange(at.isoformat(), "1", "2", "better", "promote", "promotion"),
        fleet.ChampionChange("2025-07-02", "2", "1", "bad", "ana", "rollback"),
    )


def test_model_card_files_are_kept_only_as_plain_names():
    detail = fleet.build_detail(fleet.build_row(entry(), facts(), None), model_card=["card.html", "../x", "card.json"])
    assert detail.model_card == ("card.html", "card.json")


# Sorting and filtering


def test_rows_sort_by_any_column_with_empty_values_last_either_way():
    def row(name, since):
        return fleet.ModelRow(name, f"retrain_{name}", f"{name}.yaml", champion=since and fleet.Champion("1", since, None))

    rows = [row("b", T0), row("a", None), row("c", T0 - dt.timedelta(days=3))]
    assert [r.name for r in fleet.sort_rows(rows, "age")] == ["c", "b", "a"]
    assert [r.name for r in fleet.sort_rows(rows, "age", descending=True)] == ["b", "c", "a"]
    assert [r.name for r in fleet.sort_rows(rows, "no such column")] == ["a", "b", "c"]
    assert [r.name for r in fleet.sort_rows(rows, "name", descending=True)] == ["c", "b", "a"]


def test_the_tag_filter_keeps_rows_with_that_tag():
    rows = [fleet.ModelRow("a", "retrain_a", "a.yaml", tags=("team-a",)), fleet.ModelRow("b", "retrain_b", "b.yaml")]
    assert [r.name for r in fleet.filter_rows(rows, "team-a")] == ["a"]
    assert [r.name for r in fleet.filter_rows(rows, None)] == ["a", "b"]
    assert fleet.all_tags(rows) == ["team-a"]


# The Model page


def test_the_model_page_lists_versions_newest_first_with_aliases_reports_and_the_metric_history():
    v1 = version(1, **{Tag.DECISION: "promoted", Tag.CHALLENGER_SCORE: "0.8", Tag.METRIC: "roc_auc",
                       Tag.report("evaluation_html"): "/w/reports/r1/evaluation.html",
                       Tag.report("validation_json"): "/w/reports/r1/validation.json"})  # fmt: skip
    v2 = version(2, **{Tag.DECISION: "declined", Tag.CHALLENGER_SCORE: "0.7", Tag.CHAMPION_SCORE: "0.8",
                       Tag.REASONS: "worse", Tag.report("evil"): "/w/..", Tag.report("empty"): ""})  # fmt: skip
    detail = fleet.build_detail(fleet.build_row(entry(), facts(), None), [v2, v1], {"champion": "1", "previous": "1"})
    assert [v.version for v in detail.versions] == ["2", "1"]
    assert detail.versions[1].aliases == ("champion", "previous") and detail.versions[0].aliases == ()
    assert detail.versions[1].reports == ("evaluation.html", "validation.json")
    assert detail.versions[0].reports == () and detail.versions[0].reasons == ("worse",)
    assert [(h["version"], h["challenger"], h["champion"]) for h in detail.history] == [
        ("1", 0.8, None),
        ("2", 0.7, 0.8),
    ]
    assert detail.metric == "roc_auc"
    svg = fleet.history_svg(detail.history, "<b>roc_auc</b>")
    assert "<b>" not in svg and "&lt;b&gt;roc_auc&lt;/b&gt;" in svg and svg.count("<circle") == 2


def test_a_score_tag_edited_into_nonsense_leaves_that_version_out_of_the_plot_not_the_page():
    bad = version(1, **{Tag.CHALLENGER_SCORE: "n/a"})
    assert fleet.build_detail(fleet.build_row(entry(), facts(), None), [bad]).history == ()
    assert fleet.history_svg([], "roc_auc") == ""


def test_rows_and_details_become_json_values():
    row = fleet.build_row(entry(), facts(run()), summary("1", **{Tag.CHAMPION_SINCE: "1@2025-05-01T02:00:00+00:00"}))
    data = fleet.to_json(row)
    assert data["champion"] == {"version": "1", "since": "2025-05-01T02:00:00+00:00", "window_end": None}
    assert data["last_run"]["when"] == T0.isoformat() and data["tags"] == ["retrain"]


# Artifact names: the only names that reach the artifact store


@pytest.mark.parametrize("name", ["evaluation.html", "drift.json", "card.html", "a b.txt", ".hidden", "x..y"])
def test_plain_file_names_pass(name):
    assert is_plain_file_name(name)


@pytest.mark.parametrize(
    "name",
    ["", ".", "..", "../x", "..\\x", "/etc/passwd", "reports/evaluation.html", "C:x", "a\x00b", "a\nb", "x" * 256],
)
def test_anything_that_could_leave_the_folder_is_refused(name):
    assert not is_plain_file_name(name)


@pytest.mark.parametrize(
    ("name", "kind", "inline"),
    [("evaluation.html", "text/html; charset=utf-8", True), ("drift.JSON", "application/json", True),
     ("model.pkl", "application/octet-stream", False), ("noext", "application/octet-stream", False)],
)  # fmt: skip
def test_artifacts_are_served_with_their_content_type_and_unknown_ones_as_downloads(name, kind, inline):
    assert fleet.media_type(name) == (kind, inline)
