"""The pipeline definition and its contracts: steps in a consistent order, outputs that survive XCom,
steps that run without Airflow, run options parsed once."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest

from retrain import contracts, pipeline
from retrain.assets import data_asset, request_asset
from retrain.contracts import EvaluationResult, StepOutput
from retrain.errors import RetrainError, StepSkipped
from retrain.options import AssetEvent, Run, RunOptions, Trigger, event_end_date, resolve_run, trigger_of
from retrain.pipeline import StepContext
from retrain.policy import Decision as PolicyDecision
from retrain.registry import ModelVersion
from retrain.spec import load_spec
from retrain.steps import evaluate, promote
from retrain.tags import Decision, Tag
from tests.support import DEMO_SPEC, bare_run

SPEC = load_spec(DEMO_SPEC)

SAMPLES: list[StepOutput] = [
    contracts.ValidationResult(True, 10, {"end": "2025-05-01"}, 1, {"evaluated": 3}, ({"column": "x", "kwargs": {}},),
                               ("a.parquet",), None, {"validation_html": "/r/v.html"}),
    contracts.DriftResult(True, "3", True, ("monthly_spend",), False, 0.31, {"drift_json": "/r/d.json"}),
    contracts.FeaturesResult("/f", 100, 20, "t" * 64, "h" * 64, "i" * 64, {"end": "2025-05-01"}),
    contracts.TrainingResult("run1", "4", {"roc_auc": 0.7}, False, "i" * 64),
    EvaluationResult("churn", "4", "run1", "3", False, True, False, ("a", "b"), False, "2025-05-01", "roc_auc",
                     {"evaluation_html": "/r/e.html"}),
    contracts.PromotionResult("churn", "4", {"champion": "4", "previous": "3"}),
]  # fmt: skip


def test_steps_are_unique_and_each_reads_only_what_an_earlier_step_produced():
    steps = pipeline.steps(SPEC)
    assert len({s.task_id for s in steps}) == len(steps)
    produced: set[type] = set()
    for step in steps:
        assert set(step.needs) <= produced, f"{step.task_id} needs an output no earlier step produces"
        produced.add(step.output)
    assert {type(s) for s in SAMPLES} == {s.output for s in steps}, "a sample output per step"


def test_every_step_names_a_domain_function_except_the_training_job():
    for step in pipeline.steps(SPEC):
        if step.kind == "train":
            assert step.run is None
        else:
            assert callable(step.function()), step.task_id


@pytest.mark.parametrize("output", SAMPLES, ids=lambda o: type(o).__name__)
def test_each_output_survives_xcom_exactly(output):
    sent = json.loads(json.dumps(output.to_xcom()))  # XCom stores JSON
    assert type(output).from_xcom(sent) == output


def test_outputs_ignore_keys_they_do_not_know_so_an_older_reader_survives_a_newer_writer():
    data = {**SAMPLES[3].to_xcom(), "added_later": 1}
    assert contracts.TrainingResult.from_xcom(data) == SAMPLES[3]


def test_chain_markdown_lists_every_step_in_order():
    lines = pipeline.chain_markdown(SPEC).splitlines()
    assert [line.split("`")[1] for line in lines] == pipeline.task_ids(SPEC)


class NoRegistry:
    """A registry that must not be reached."""

    def __getattr__(self, name):
        raise AssertionError(f"the step reached the registry ({name}) although it had nothing to do")


def context(evaluation: EvaluationResult | None, **options) -> StepContext:
    return StepContext(
        spec=SPEC,
        run=bare_run(SPEC, dt.date(2025, 5, 1), **options),
        inputs={EvaluationResult: evaluation},
        registry_factory=NoRegistry,
    )


@pytest.mark.parametrize(
    ("change", "options", "reason"),
    [
        ({"promote": False}, {}, "policy declined version 4"),
        ({"already_champion": True}, {}, "already champion"),
        ({}, {"dry_run": True}, "dry run: would promote version 4"),
    ],
)
def test_promote_skips_without_touching_the_registry(change, options, reason):
    evaluation = dataclasses.replace(SAMPLES[4], **change)
    with pytest.raises(StepSkipped, match=reason):
        promote.run(context(evaluation, **options))


def test_promote_without_an_evaluation_fails_clearly():
    with pytest.raises(RetrainError, match="no evaluation result"):
        promote.run(context(None))


@pytest.mark.parametrize(
    ("promote_", "already", "dry", "expected"),
    [
        (True, False, False, Decision.APPROVED),
        (True, False, True, Decision.DRY_RUN),
        (False, False, False, Decision.DECLINED),
        (False, False, True, Decision.DECLINED),
        (True, True, False, Decision.CHAMPION),
        (False, True, True, Decision.CHAMPION),
    ],
)
def test_decision_tag_truth_table(promote_, already, dry, expected):
    decision = PolicyDecision(promote_, ("r",))
    assert evaluate.decision_tag(decision, already_champion=already, dry_run=dry) is expected


def test_metric_table_and_history_come_from_plain_values():
    comparison = {
        "metric": "roc_auc",
        "challenger": {"primary": 0.71, "secondary": {"neg_log_loss": -0.5}},
        "champion": {"primary": 0.7, "secondary": {"neg_log_loss": -0.52}},
        "baseline": 0.5,
    }
    assert evaluate.metric_table(comparison) == {
        "roc_auc": {"challenger": 0.71, "champion": 0.7},
        "neg_log_loss": {"challenger": -0.5, "champion": -0.52},
        "baseline (majority / mean)": {"challenger": 0.5, "champion": None},
    }
    versions = [
        ModelVersion("churn", "1", "r1", "READY", {Tag.CHALLENGER_SCORE: "0.7", Tag.WINDOW_END: "2025-05-01",
                                                    Tag.DECISION: "promoted"}),
        ModelVersion("churn", "2", "r2", "READY", {Tag.DECISION: "pending_evaluation"}),  # never evaluated
        ModelVersion("churn", "3", "r3", "READY", {Tag.CHALLENGER_SCORE: "0.69", Tag.CHAMPION_SCORE: "0.71"}),
    ]  # fmt: skip
    history = evaluate.metric_history(versions)
    assert [(h["version"], h["challenger"], h["champion"]) for h in history] == [("1", 0.7, None), ("3", 0.69, 0.71)]


def test_upstream_reports_gathers_every_report_whatever_the_step():
    assert evaluate.upstream_reports([*SAMPLES[:3], None]) == {
        "validation_html": "/r/v.html",
        "drift_json": "/r/d.json",
    }


def test_run_options_come_from_the_form_and_bad_values_are_named():
    run = resolve_run(
        SPEC, run_id="r", params={"end_date": "2025-05-01", "force": True, "estimator_params": {}},
        conf={}, interval_end=None, run_after=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    )  # fmt: skip
    assert run.options == RunOptions(end_date=dt.date(2025, 5, 1), force=True)
    assert run.window.end == dt.datetime(2025, 5, 1, tzinfo=dt.UTC)
    with pytest.raises(ValueError, match="param 'dry_run' must be true or false"):
        RunOptions.parse({"dry_run": "yes"})
    assert RunOptions.parse(run.options.to_dict()) == run.options


def test_the_trigger_says_why_a_run_started_and_an_event_can_set_the_window_end():
    def events(*items):
        return [AssetEvent(asset, extra) for asset, extra in items]

    data, request = data_asset("churn"), request_asset("churn")
    assert trigger_of("churn", "scheduled") == Trigger("schedule")
    assert trigger_of("churn", "backfill") == Trigger("schedule")
    assert trigger_of("churn", "manual") == Trigger("manual")
    assert trigger_of("churn", "asset_triggered", events((data, {}))) == Trigger("data")
    both = events((data, {"reason": "new export"}), (request, {"reason": "roc_auc 0.61 < floor 0.65"}))
    assert trigger_of("churn", "asset_triggered", both) == Trigger("monitoring", "roc_auc 0.61 < floor 0.65")
    run = resolve_run(
        SPEC, run_id="r", params={}, conf={}, interval_end=None, run_after=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        run_type="asset_triggered", events=events((data, {"end_date": "2025-07-01"}), (data, {"end_date": "2025-06-01"})),
    )  # fmt: skip
    assert run.window.end_date == dt.date(2025, 7, 1) and run.trigger.kind == "data"
    assert Run.from_dict(json.loads(json.dumps(run.to_dict()))) == run


def test_an_asset_event_is_untrusted_input():
    hostile = [AssetEvent(request_asset("churn"), {"reason": "x\n" * 1000 + "\x1b[31m", "end_date": "2025-13-40"})]
    with pytest.raises(ValueError, match="asset event on 'retrain_request_churn': extra 'end_date'"):
        event_end_date(hostile)
    reason = trigger_of("churn", "asset_triggered", hostile).reason
    assert len(reason) <= 500 and "\n" not in reason and "\x1b" not in reason
    assert trigger_of(
        "churn", "asset_triggered", [AssetEvent(data_asset("churn"), {"reason": ["not", "text"]})]
    ) == Trigger("data")
