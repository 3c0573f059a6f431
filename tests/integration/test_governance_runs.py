"""Governance with whole DAG runs (dag.test()) and a real MLflow server: the model card of every evaluated
version, the champion history after promotions and a rollback, a declined version that never reaches a
reviewer, and the lineage events of a real run through Airflow's OpenLineage provider.

Approvals answered by a person need the scheduler and the API server: tests/e2e/test_approvals.py.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from retrain import markdown
from retrain.errors import RollbackRefusedError
from retrain.history import champion_at
from retrain.model_card import CARD_HTML, CARD_JSON
from retrain.registry import CHAMPION_ALIAS, PREVIOUS_ALIAS
from retrain.tags import Decision, Tag
from tests.support import DEMO_SCORING, REPO, artifacts, run_dag, run_rollback, write_spec

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("airflow_db", "mlflow_server")]

NIGHT_1, NIGHT_2 = dt.date(2025, 5, 1), dt.date(2025, 5, 2)
SMALL_MODEL = {"max_iter": 30, "learning_rate": 0.1, "max_leaf_nodes": 15}
INTENDED_USE = "Ranks customers for the retention campaign; not for pricing or credit decisions."
# Three weeks of data, a small model, few resamples: what these runs record is under test, not the model.
QUICK = {"data.lookback_days": 21, "evaluation.bootstrap.resamples": 20, "model.params": SMALL_MODEL,
         "intended_use": INTENDED_USE}  # fmt: skip
# Every field a card has, whatever the decision (None where it does not apply, but present).
CARD_FIELDS = {
    "model": {"name", "version", "task", "description", "intended_use"},
    "estimator": {"class", "params", "random_state"},
    "data": {"source", "timestamp_column", "target", "features", "window", "rows", "hashes", "feature_partition"},
    "code": {"version"},
    "airflow": {"dag_id", "trained_by_run", "trained_by_trigger", "evaluated_by_run", "evaluated_by_trigger"},
    "evaluation": {"metric", "holdout_rows", "champion_version", "challenger", "champion", "baseline", "bootstrap"},
    "validation": {"success", "rows", "warnings", "statistics"},
    "drift": {"compared", "champion_version", "any_drift", "drifted_features", "label_drifted", "max_psi"},
    "decision": {"status", "promote", "forced", "reasons", "dry_run"},
    "review": {"mode", "status", "requested_at", "assigned_to", "by", "at", "comment", "timed_out", "reason"},
    "promotion": {"status", "kind", "at", "by_run", "previous", "message"},
    "reports": set(),
    "card": {"run_id", "experiment_id", "json", "html", "json_url", "html_url", "updated_at"},
}


def read_artifact(mlflow_client, version, path: str) -> str:
    return Path(mlflow_client.download_artifacts(version.run_id, path, tempfile.mkdtemp())).read_text()


def read_card(mlflow_client, version) -> dict:
    return json.loads(read_artifact(mlflow_client, version, CARD_JSON))


def assert_complete_card(card: dict, version, *, status: str) -> None:
    """Every field present, the facts equal to the version's own tags and run."""
    assert {k: set(v) for k, v in card.items() if isinstance(v, dict) and k != "reports"} == {
        k: v for k, v in CARD_FIELDS.items() if k != "reports"
    }
    tags = version.tags
    assert card["model"]["version"] == version.version
    assert card["model"]["intended_use"] == INTENDED_USE and card["model"]["description"]
    assert card["data"]["hashes"]["input"] == tags[Tag.INPUT_HASH], "the card's input hash is the version's tag"
    assert card["data"]["hashes"]["train"] == tags[Tag.TRAIN_HASH]
    assert card["data"]["hashes"]["holdout"] == tags[Tag.HOLDOUT_HASH]
    assert card["data"]["rows"]["train"] > 0 and card["data"]["rows"]["holdout"] > 0
    assert Path(card["data"]["feature_partition"]).is_dir()
    assert card["estimator"]["params"]["max_iter"] == str(SMALL_MODEL["max_iter"])
    assert card["code"]["version"] == tags[Tag.CODE_VERSION]
    assert card["airflow"]["trained_by_run"] == tags[Tag.RUN_ID]
    assert card["airflow"]["evaluated_by_trigger"]["kind"] == "manual"
    assert card["evaluation"]["challenger"]["primary"] == pytest.approx(float(tags[Tag.CHALLENGER_SCORE]))
    assert card["validation"]["success"] is True
    assert card["decision"]["status"] == status == tags[Tag.DECISION]
    assert card["decision"]["reasons"] == tags[Tag.REASONS].split(" | ")
    assert {"validation_html", "evaluation_html", "evaluation_json"} <= set(card["reports"])
    assert (card["card"]["json"], card["card"]["html"]) == (CARD_JSON, CARD_HTML)
    assert card["card"]["run_id"] == version.run_id and card["card"]["updated_at"]
    assert markdown.escape(f"runs:/{version.run_id}/{CARD_HTML}") in version.description
    assert version.description.startswith(f"{markdown.escape(version.model)} version {version.version}: ")


def test_champion_history_after_promote_forced_promote_and_rollback_and_the_cards(spec_dir, registry, mlflow_client):
    # The second night cannot beat the first by 0.5: promoting it needs force_promote.
    spec_path = write_spec(spec_dir, **QUICK, **{"promotion.min_improvement": 0.5})
    name = spec_path.stem
    moments = [dt.datetime.now(dt.UTC)]
    states, first = run_dag(spec_path, NIGHT_1)
    assert states["promote"] == "success"
    moments.append(dt.datetime.now(dt.UTC))
    states, second = run_dag(spec_path, NIGHT_2, force_promote=True)
    assert states["promote"] == "success"
    moments.append(dt.datetime.now(dt.UTC))
    assert run_rollback(spec_dir, model_name=name, reason="v2 mislabels premium customers") == {"rollback": "success"}
    moments.append(dt.datetime.now(dt.UTC))
    assert registry.aliases(name) == {CHAMPION_ALIAS: "1", PREVIOUS_ALIAS: "2"}

    moves = registry.champion_history(name)
    assert [(m.kind, m.from_version, m.to_version) for m in moves] == [
        ("promotion", None, "1"), ("forced_promotion", "1", "2"), ("rollback", "2", "1"),
    ]  # fmt: skip
    for move, (start, end) in zip(moves, itertools.pairwise(moments), strict=True):
        assert start <= move.at <= end, f"{move.kind} recorded at {move.at}, outside [{start}, {end}]"
    assert moves[0].by == f"run {first.run_id}" and moves[1].run_id == second.run_id
    assert moves[1].reason.startswith("forced by the trigger's force_promote")
    assert moves[2].by == "dag_test" and moves[2].reason == "v2 mislabels premium customers"

    # Who was champion at T, for T before, at, between and after the moves.
    expected = [(moves[0].at - dt.timedelta(seconds=1), None)]
    for move, after in zip(moves, [*moves[1:], None], strict=True):
        expected.append((move.at, move.to_version))
        end = after.at if after else move.at + dt.timedelta(days=365)
        expected.append((move.at + (end - move.at) / 2, move.to_version))
    for when, version in expected:
        found = champion_at(moves, when)
        assert (found and found.to_version) == version, f"champion at {when}"

    cli = [sys.executable, "-m", "retrain.history", name]
    between = moves[1].at + (moves[2].at - moves[1].at) / 2
    out = subprocess.run([*cli, "--at", between.isoformat()], capture_output=True, text=True, check=True).stdout
    assert f"version 2 was champion at {between.isoformat(timespec='seconds')}" in out
    out = subprocess.run(cli, capture_output=True, text=True, check=True).stdout
    assert "3 champion moves" in out and "none -> v1" in out and "v2 -> v1  rollback by dag_test" in out

    v1, v2 = registry.version(name, "1"), registry.version(name, "2")
    card1, card2 = read_card(mlflow_client, v1), read_card(mlflow_client, v2)
    assert_complete_card(card1, v1, status=Decision.PROMOTED)
    assert_complete_card(card2, v2, status=Decision.PROMOTED)
    assert card1["promotion"]["status"] == "promoted" and card1["promotion"]["kind"] == "promotion"
    assert card1["evaluation"]["champion_version"] is None and card1["drift"]["compared"] is False
    assert card2["promotion"] == {**card2["promotion"], "status": "promoted", "kind": "forced_promotion",
                                  "by_run": second.run_id, "previous": "1"}  # fmt: skip
    assert card2["decision"]["forced"] is True and card2["evaluation"]["champion_version"] == "1"
    assert card2["evaluation"]["bootstrap"]["resamples"] > 0 and card2["drift"]["compared"] is True
    assert card2["review"]["mode"] == "never" and card2["review"]["status"] == "not_asked"
    page = read_artifact(mlflow_client, v2, CARD_HTML)
    assert "forced_promotion" in page and v2.tags[Tag.INPUT_HASH] in page and INTENDED_USE in page


def run_with_lineage(script: str, spec_path: Path, tmp_path: Path) -> tuple[dict, list[dict]]:
    """Runs `script` (argv: the spec, the file to write its states to) in its own process with Airflow's
    OpenLineage provider writing events to a file (its settings are read once per process); returns the
    states the script wrote and the events."""
    events_file, states_file = tmp_path / "openlineage.jsonl", tmp_path / "states.json"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(str(REPO / p) for p in ("include", "plugins", "dags", ".")),
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps({"type": "file", "log_file_path": str(events_file), "append": True}),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "retrain-tests",
    }
    done = subprocess.run([sys.executable, "-c", script, str(spec_path), str(states_file)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=400)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    events = [json.loads(line) for line in events_file.read_text().splitlines()]
    return json.loads(states_file.read_text()), events


LINEAGE_RUN = """
import datetime as dt, json, sys
from pathlib import Path
from tests.support import run_dag
states, dag_run = run_dag(Path(sys.argv[1]), dt.date(2025, 5, 1))
Path(sys.argv[2]).write_text(json.dumps(states))
"""


def test_a_declined_version_never_reaches_a_reviewer_and_its_card_and_lineage_are_complete(
    spec_dir, tmp_path, registry, mlflow_client
):
    """One run in its own process with Airflow's OpenLineage provider writing to a file (its settings are read
    once per process): the policy declines, so approve_promotion is skipped without asking anyone."""
    spec_path = write_spec(spec_dir, **QUICK, **{"promotion.approval": "always", "promotion.min_score": 0.99})
    name = spec_path.stem
    # Had it asked, dag.test() would wait for an answer until run_with_lineage's timeout.
    states, events = run_with_lineage(LINEAGE_RUN, spec_path, tmp_path)
    assert states["evaluate"] == "success"
    assert states["approve_promotion"] == "skipped" and states["promote"] == "skipped"

    version = registry.version(name, "1")
    assert version.tags[Tag.DECISION] == Decision.DECLINED
    assert Tag.REVIEW_REQUESTED_AT not in version.tags and Tag.REVIEWED_BY not in version.tags
    assert registry.aliases(name) == {CHAMPION_ALIAS: None, PREVIOUS_ALIAS: None}
    assert registry.champion_history(name) == []
    card = read_card(mlflow_client, version)
    assert_complete_card(card, version, status=Decision.DECLINED)
    assert card["review"] == {**card["review"], "mode": "always", "status": "not_asked", "by": None}
    assert card["promotion"]["status"] == "not_promoted"
    assert any("floor min_score 0.99" in reason for reason in card["decision"]["reasons"])

    train = [e for e in events if e["eventType"] == "COMPLETE" and e["job"]["name"] == f"retrain_{name}.train"]
    assert len(train) == 1, [(e["eventType"], e["job"]["name"]) for e in events]
    (complete,) = train
    partition = str(artifacts(name) / "features" / "end_date=2025-05-01")
    assert [(d["namespace"], d["name"]) for d in complete["inputs"]] == [("file", partition)]
    assert {f["name"] for f in complete["inputs"][0]["facets"]["schema"]["fields"]} >= {"monthly_spend", "churned"}
    (output,) = complete["outputs"]
    assert (output["namespace"], output["name"]) == (os.environ["MLFLOW_TRACKING_URI"], f"{name}/1")
    facet = output["facets"]["retrain_model_version"]
    assert (facet["version"], facet["input_hash"], facet["mlflow_run_id"]) == (
        "1", version.tags[Tag.INPUT_HASH], version.run_id,
    )  # fmt: skip
    assert complete["run"]["facets"]["retrain"]["model_version"] == "1"
    assert complete["run"]["facets"]["retrain"]["input_hash"] == version.tags[Tag.INPUT_HASH]
    features = next(e for e in events if e["eventType"] == "COMPLETE" and e["job"]["name"].endswith(".build_features"))
    assert [d["name"] for d in features["outputs"]] == [partition]
    assert features["inputs"][0]["name"] == str(REPO / "include" / "data" / "demo")


LOOP_LINEAGE_RUN = """
import datetime as dt, json, sys
from pathlib import Path
from tests.support import run_dag
night, _ = run_dag(Path(sys.argv[1]), dt.date(2025, 5, 1))
day, _ = run_dag(Path(sys.argv[1]), dt.date(2025, 5, 29), pipeline="score", date="2025-05-29")
Path(sys.argv[2]).write_text(json.dumps({"retrain": night, "score": day}))
"""


def test_the_scoring_tasks_report_the_rows_the_champion_and_the_predictions_as_lineage(spec_dir, tmp_path, registry):
    """A night promotes v1, then score_<name> scores a day, in one process with the provider writing to a file."""
    spec_path = write_spec(spec_dir, loop=True, **QUICK)
    name = spec_path.stem
    states, events = run_with_lineage(LOOP_LINEAGE_RUN, spec_path, tmp_path)
    assert states["retrain"]["promote"] == "success" and set(states["score"].values()) == {"success"}
    assert registry.champion(name).version == "1"

    def completed(task: str) -> dict:
        (event,) = [e for e in events if e["eventType"] == "COMPLETE" and e["job"]["name"] == f"score_{name}.{task}"]
        return event

    rows = ("file", str(DEMO_SCORING))
    assert [(d["namespace"], d["name"]) for d in completed("validate_rows")["inputs"]] == [rows]
    predict = completed("predict")
    assert [(d["namespace"], d["name"]) for d in predict["inputs"]] == [
        rows, (os.environ["MLFLOW_TRACKING_URI"], f"{name}/1")
    ]  # fmt: skip
    assert [(d["namespace"], d["name"]) for d in predict["outputs"]] == [("file", str(artifacts(name) / "predictions"))]
    assert predict["run"]["facets"]["retrain"]["model_version"] == "1"


def test_rollback_never_restores_a_version_a_reviewer_declined_or_has_not_answered(registry, mlflow_client):
    name = "rollback_reviewed"
    mlflow_client.create_registered_model(name)
    for _ in range(3):
        mlflow_client.create_model_version(name, source="s3://example-bucket/models/rollback_reviewed")
    assert registry.champion_history(name) == [] and registry.champion_history("no_such_model") == []
    registry.promote(name, "3", expected_champion=None, run_id="manual__3")
    for version, decision in (("1", Decision.DECLINED_BY_REVIEWER), ("2", Decision.AWAITING_REVIEW)):
        registry.set_tags(name, version, {Tag.PASSED_EVALUATION: "true", Tag.DECISION: decision})
        with pytest.raises(RollbackRefusedError, match=f"version {version} is {decision}"):
            registry.rollback(name, version, "try it", "ops", run_id=f"manual__rollback_{version}")
    assert registry.aliases(name) == {CHAMPION_ALIAS: "3", PREVIOUS_ALIAS: None}
    assert [m.to_version for m in registry.champion_history(name)] == ["3"]
