"""Lineage: which datasets each step reads and writes, the code version of a git worktree, and the image build
that carries the commit into the images (there is no .git in them)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import shutil
import subprocess

import pytest

from retrain import pipeline
from retrain.contracts import ChampionResult, EvaluationResult, FeaturesResult, TrainingResult
from retrain.lineage import connection_ids, location, step_lineage
from retrain.settings import mlflow_ui_url, predictions_dir, redact_uri
from retrain.spec import OutputSpec, load_spec
from retrain.train import code_version, git_head
from retrain.window import Window
from tests.support import DEMO_SPEC, REPO

SPEC = load_spec(DEMO_SPEC)
WINDOW = Window.ending(dt.date(2025, 5, 1), SPEC.data)
STEPS = {step.task_id: step for step in pipeline.steps(SPEC)}
TRAINED = TrainingResult("run9", "7", {"roc_auc": 0.7}, False, "i" * 64)
FEATURES = FeaturesResult("/a/f", 100, 20, "t" * 64, "h" * 64, "i" * 64, WINDOW.to_dict())
URI = "http://ops:$MLFLOW_PASSWORD@mlflow.example:5000/?token=abc"  # userinfo, as a deployment may set it


def names(refs) -> list[str]:
    return [ref.name for ref in refs]


def test_the_train_step_reads_the_partition_and_writes_the_model_version_with_its_hash():
    found = step_lineage(SPEC, STEPS["train"], WINDOW, {TrainingResult: TRAINED}, URI)
    (partition,) = found.inputs
    assert partition.namespace == "file" and partition.name.endswith("churn/features/end_date=2025-05-01")
    assert set(partition.fields) == {*SPEC.features.columns, SPEC.target}
    (version,) = found.outputs
    assert (version.namespace, version.name) == ("http://mlflow.example:5000/", "churn/7")
    assert version.model_version == {"model": "churn", "version": "7", "input_hash": "i" * 64, "mlflow_run_id": "run9"}
    assert (found.model_version, found.input_hash) == ("7", "i" * 64)


def test_data_steps_read_the_source_and_build_features_writes_the_partition():
    for task in ("validate_data", "check_drift"):
        found = step_lineage(SPEC, STEPS[task], WINDOW, {}, URI)
        assert [ref.namespace for ref in found.inputs] == ["file"] and found.outputs == ()
        assert found.inputs[0].name == str(REPO / "include" / "data" / "demo")
    found = step_lineage(SPEC, STEPS["build_features"], WINDOW, {FeaturesResult: FEATURES}, URI)
    assert names(found.outputs) == [names(step_lineage(SPEC, STEPS["train"], WINDOW, {}, URI).inputs)[0]]
    assert found.input_hash == "i" * 64 and found.model_version is None


def test_evaluate_and_promote_read_the_model_version():
    evaluation = EvaluationResult("churn", "7", "run9", "6", False, True, False, (), False, "2025-05-01", "roc_auc")
    found = step_lineage(SPEC, STEPS["evaluate"], WINDOW, {TrainingResult: TRAINED, FeaturesResult: FEATURES}, URI)
    assert names(found.inputs)[-1] == "churn/7" and found.outputs == ()
    found = step_lineage(SPEC, STEPS["promote"], WINDOW, {EvaluationResult: evaluation}, URI)
    assert names(found.inputs) == ["churn/7"] and found.inputs[0].model_version["mlflow_run_id"] == "run9"


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("/data/events", ("file", "/data/events")),
        ("file:///data/events", ("file", "/data/events")),
        ("s3://bucket/events/2025/", ("s3://bucket", "events/2025/")),
        ("gs://ops:$KEY@bucket/x?sig=abc#frag", ("gs://bucket", "x")),
    ],
)
def test_dataset_names_follow_openlineage_naming_without_credentials(uri, expected):
    assert location(uri) == expected


def test_addresses_shown_to_people_carry_no_credentials():
    assert redact_uri(URI) == "http://mlflow.example:5000/"
    assert mlflow_ui_url(URI) == "http://mlflow.example:5000"
    assert mlflow_ui_url("sqlite:///tmp/mlflow.db") is None


def test_code_version_of_a_git_worktree_is_its_commit_not_the_gitdir_line(tmp_path, monkeypatch):
    """In a worktree `.git` is a file (`gitdir: ...`); the commit lives in the worktree's own HEAD and the
    common repository's refs (loose, then packed)."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    monkeypatch.delenv("RETRAIN_CODE_VERSION", raising=False)
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "-c", "init.defaultBranch=main"]

    def run(*args, cwd=tmp_path / "repo") -> str:
        return subprocess.run([*git, *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()

    (tmp_path / "repo").mkdir()
    run("init", "-q")
    (tmp_path / "repo" / "a.txt").write_text("a")
    run("add", "a.txt")
    run("commit", "-qm", "first")
    run("worktree", "add", "-q", str(tmp_path / "wt"), "-b", "feature")
    (tmp_path / "wt" / "b.txt").write_text("b")
    run("add", "b.txt", cwd=tmp_path / "wt")
    run("commit", "-qm", "second", cwd=tmp_path / "wt")
    assert (tmp_path / "wt" / ".git").is_file()
    assert code_version(tmp_path / "wt") == run("rev-parse", "HEAD", cwd=tmp_path / "wt")
    assert code_version(tmp_path / "repo") == run("rev-parse", "HEAD")
    run("pack-refs", "--all")  # refs only in packed-refs now
    assert git_head(tmp_path / "wt") == run("rev-parse", "HEAD", cwd=tmp_path / "wt")
    monkeypatch.setenv("RETRAIN_CODE_VERSION", "abc123")
    assert code_version(tmp_path / "wt") == "abc123"


DOCKERFILE = (REPO / "Dockerfile").read_text()


def test_the_image_build_takes_the_commit_and_both_images_carry_it():
    stages = dict(re.findall(r"^FROM (\S+) AS (\S+)$", DOCKERFILE, re.M))
    assert stages == {"${AIRFLOW_IMAGE}": "airflow", "airflow": "training"}, "training derives from airflow"
    airflow_stage = DOCKERFILE.split("FROM airflow AS training")[0].split(" AS airflow")[1]
    assert re.search(r"^ARG RETRAIN_CODE_VERSION$", airflow_stage, re.M), "declared inside the stage that uses it"
    assert re.search(r"^ENV RETRAIN_CODE_VERSION=\$\{RETRAIN_CODE_VERSION\}$", airflow_stage, re.M)
    # The stage refuses a build without it: run the instruction's shell command both ways.
    command = re.search(r"^RUN (test -n \"\$\{RETRAIN_CODE_VERSION\}\".*?)(?<!\\)$", airflow_stage, re.M | re.S)
    assert command, "a RUN instruction checks the build argument"
    shell = command.group(1).replace("\\\n", "")
    assert subprocess.run(["sh", "-c", shell], env={"RETRAIN_CODE_VERSION": ""}, capture_output=True).returncode == 1
    assert subprocess.run(["sh", "-c", shell], env={"RETRAIN_CODE_VERSION": "ab12"}, capture_output=True).returncode == 0


def test_the_readme_build_commands_pass_the_commit():
    readme = (REPO / "README.md").read_text()
    builds = re.findall(r"^docker build .*?(?:\\\n.*)*$", readme, re.M)
    assert {re.search(r"--target (\w+)", b).group(1) for b in builds} == {"airflow", "training"}
    for build in builds:
        assert "--build-arg RETRAIN_CODE_VERSION=$(git rev-parse HEAD)" in build


def test_operators_keep_openlineage_out_of_dag_parsing():
    """The provider's imports cost about a second: only inside the methods the provider calls."""
    for module in ("lineage.py", "base.py", "local_train.py", "pod_train.py"):
        source = (REPO / "plugins" / "retrain_operators" / module).read_text()
        top_level = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
        assert not [line for line in top_level if "openlineage" in line and "retrain_operators" not in line], module


def test_a_step_that_reads_no_partition_has_no_partition_input():
    step = dataclasses.replace(STEPS["promote"], needs=())
    assert step_lineage(SPEC, step, WINDOW, {}, URI).inputs == ()


def test_a_sql_source_is_its_table_or_query_in_the_database_of_its_connection():
    from retrain.lineage import source_dataset
    from retrain.model_card import source_location

    table = SPEC.model_copy(update={"data": SPEC.data.model_copy(update={"uri": None, "conn_id": "warehouse",
                                                                         "table": "analytics.events"})})  # fmt: skip
    found = source_dataset(table.data, "postgres://db.example:5432/analytics")
    assert (found.namespace, found.name) == ("postgres://db.example:5432/analytics", "analytics.events")
    assert source_dataset(table.data).namespace == "airflow-connection://warehouse"
    query = table.model_copy(update={"data": table.data.model_copy(update={"table": None, "query": "SELECT 1"})})
    assert source_dataset(query.data).name.startswith("query/") and "SELECT" not in source_dataset(query.data).name
    assert source_location(table) == "table analytics.events through connection warehouse"
    assert source_location(SPEC) == str(REPO / "include" / "data" / "demo")


def test_the_loop_steps_name_the_rows_labels_predictions_and_output_table_they_read_and_write():
    scoring = SPEC.scoring.model_copy(update={
        "input": SPEC.scoring.input.model_copy(update={"uri": None, "conn_id": "warehouse", "table": "ml.rows"}),
        "output": OutputSpec(conn_id="writer", table="ml.churn_predictions"),
    })  # fmt: skip
    spec = SPEC.model_copy(update={"scoring": scoring})
    databases = {"warehouse": "postgres://db.example:5432/ml", "writer": "postgres://ops:$PW@db.example:5432/ml"}
    steps = {step.task_id: step for name in ("score", "monitor") for step in pipeline.steps(spec, name)}
    champion = ChampionResult("churn", "7", "run9", "champion")
    predictions = ("file", str(predictions_dir("churn")))

    def found(task, outputs=None):
        lineage = step_lineage(spec, steps[task], WINDOW, outputs or {}, URI, databases)
        return [(ref.namespace, ref.name) for ref in lineage.inputs], [(ref.namespace, ref.name) for ref in lineage.outputs]

    rows = ("postgres://db.example:5432/ml", "ml.rows")
    assert found("validate_rows") == ([rows], [])
    inputs, outputs = found("predict", {ChampionResult: champion})
    assert inputs == [rows, ("http://mlflow.example:5000/", "churn/7")]
    assert outputs == [predictions, ("postgres://db.example:5432/ml", "ml.churn_predictions")]  # no credentials
    labels = location(str(REPO / "include" / "data" / "demo_labels"))
    assert found("join_labels") == ([labels, predictions], [])
    assert found("input_drift") == ([rows], [])
    assert found("report") == ([], []) and found("request_retraining") == ([], [])
    # Without scoring.output, predict writes the partition only.
    plain = SPEC.model_copy(update={"scoring": SPEC.scoring.model_copy(update={"output": None})})
    assert [ref.name for ref in step_lineage(plain, steps["predict"], WINDOW, {}, URI).outputs] == [predictions[1]]
    assert connection_ids(spec) == {"warehouse", "writer"} and connection_ids(SPEC) == set()
    assert connection_ids(spec, steps["validate_rows"].reads) == {"warehouse"}
    assert connection_ids(spec, [*steps["predict"].reads, *steps["predict"].writes]) == {"warehouse", "writer"}
    assert connection_ids(spec, steps["report"].reads) == set()
