"""One bad file in the specs folder never takes the other models down, and never reaches what it should
not: each case below is parsed by a real DagBag next to a good spec, which must still load as a real
retraining DAG. Reading is bounded (regular files inside the folder, a byte cap, no YAML aliases)."""

from __future__ import annotations

import copy
import os
import time

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from retrain.errors import SpecError
from retrain.spec import MAX_SPEC_BYTES, dag_id_of_file, load_spec
from tests.support import DEMO_SPEC, TASKS
from tests.unit import test_hostile_specs as hostile_specs

pytestmark = pytest.mark.security

DEMO = yaml.safe_load(DEMO_SPEC.read_text())
LONG_NAME = "m" * 240 + ".yaml"  # 245 characters
OUTSIDE_MARKER = "CONTENT-OF-A-FILE-OUTSIDE-THE-SPECS-FOLDER"
BREAKOUT = "x```\n\n<img src=x onerror=alert(1)>\n# injected heading"


def spec_text(name: str, **changes) -> str:
    document = yaml.safe_load(DEMO_SPEC.read_text())
    document["name"] = name
    for dotted, value in changes.items():
        node = document
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node[key]
        node[leaf] = value
    return yaml.safe_dump(document, sort_keys=False)


def alias_bomb() -> str:
    """About 800 bytes that expand to 9**9 nodes, inside training.affinity (as in the report)."""
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    return spec_text("bomb", **{"training.affinity": "BOMB"}).replace("affinity: BOMB", "affinity: {" + ", ".join(levels) + "}")


@pytest.fixture(scope="module")
def hostile_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile-specs")
    outside = tmp_path_factory.mktemp("outside") / "secret.yaml"
    outside.write_text(f"name: {OUTSIDE_MARKER}\npassword: {OUTSIDE_MARKER}\n")
    (folder / "good.yaml").write_text(spec_text("good"))
    (folder / LONG_NAME).write_text(spec_text("long"))
    (folder / "long_tag.yaml").write_text(spec_text("long_tag", **{"schedule.tags": ["t" * 101]}))
    (folder / "slow_retry.yaml").write_text(spec_text("slow_retry", **{"schedule.retry_delay_minutes": 10**13}))
    (folder / "bad_cron.yaml").write_text(spec_text("bad_cron", **{"schedule.cron": "every night at 2"}))
    (folder / "bomb.yaml").write_text(alias_bomb())
    (folder / "huge.yaml").write_text(spec_text("huge") + "#" * MAX_SPEC_BYTES)
    (folder / "breakout.yaml").write_text(spec_text("breakout", **{"evaluation.metric": BREAKOUT}))
    os.symlink("/dev/zero", folder / "zero.yaml")
    os.symlink(outside, folder / "secret.yaml")
    os.mkfifo(folder / "fifo.yaml")
    (folder / "churn.yaml").write_text(spec_text("churn"))
    (folder / "churn.yml").write_text(spec_text("churn"))
    (folder / "Twin-Name.yaml").write_text(spec_text("twin_name"))
    (folder / "twin_name.yaml").write_text(spec_text("twin_name"))
    return folder


@pytest.fixture(scope="module")
def bag(hostile_folder):
    from tests.dags.test_dag_integrity import dagbag

    started = time.monotonic()
    parsed = dagbag(hostile_folder)
    parsed.seconds = time.monotonic() - started
    return parsed


def placeholder(bag, dag_id: str):
    dag = bag.dags[dag_id]
    assert "invalid-spec" in dag.tags and dag.schedule is None, dag_id
    assert [t.task_id for t in dag.tasks] == ["spec_error"]
    return dag


def test_the_folder_loads_without_import_errors_and_the_good_model_is_a_real_dag(bag):
    assert bag.import_errors == {}
    good = bag.dags["retrain_good"]
    assert "invalid-spec" not in good.tags and [t.task_id for t in good.topological_sort()] == TASKS
    assert "retrain_rollback" in bag.dag_ids
    assert bag.seconds < 60, "parsing is bounded: no file may hold the parser"


def test_a_245_character_file_name_gets_its_own_placeholder_with_a_short_dag_id(bag):
    (dag_id,) = [d for d in bag.dag_ids if d.startswith("retrain_mmmm")]
    assert len(dag_id) <= 110
    assert "field 'name'" in placeholder(bag, dag_id).doc_md


def test_a_tag_over_100_characters_is_a_spec_error(bag):
    assert "field 'schedule.tags.0'" in placeholder(bag, "retrain_long_tag").doc_md


def test_an_absurd_retry_delay_is_a_spec_error(bag):
    assert "field 'schedule.retry_delay_minutes'" in placeholder(bag, "retrain_slow_retry").doc_md


def test_an_invalid_cron_is_a_spec_error(bag):
    assert "field 'schedule.cron'" in placeholder(bag, "retrain_bad_cron").doc_md


def test_a_symlink_to_dev_zero_is_not_read(bag):
    assert "resolves outside" in placeholder(bag, "retrain_zero").doc_md


def test_a_fifo_named_like_a_spec_is_not_opened_for_a_blocking_read(bag):
    assert "is a FIFO, not a regular file" in placeholder(bag, "retrain_fifo").doc_md


def test_a_symlink_out_of_the_folder_is_not_read_and_its_content_never_shown(bag):
    dag = placeholder(bag, "retrain_secret")
    assert "resolves outside" in dag.doc_md
    for text in (dag.doc_md, dag.description, dag.get_task("spec_error").message):
        assert OUTSIDE_MARKER not in text


def test_a_file_over_the_size_cap_is_not_parsed(bag):
    assert f"more than the limit of {MAX_SPEC_BYTES}" in placeholder(bag, "retrain_huge").doc_md


def test_a_yaml_alias_bomb_is_refused(bag):
    assert "YAML alias '*a0'" in placeholder(bag, "retrain_bomb").doc_md


@pytest.mark.parametrize(("dag_id", "files"), [("retrain_churn", ("churn.yaml", "churn.yml")),
                                               ("retrain_twin_name", ("Twin-Name.yaml", "twin_name.yaml"))])  # fmt: skip
def test_two_files_that_claim_one_dag_id_are_an_error_shown_on_both(bag, hostile_folder, dag_id, files):
    dag = placeholder(bag, dag_id)
    assert "2 spec files claim the DAG id" in dag.doc_md
    for name in files:
        assert str(hostile_folder / name) in dag.doc_md


def test_error_text_cannot_break_out_of_its_code_block(bag):
    dag = placeholder(bag, "retrain_breakout")
    html = MarkdownIt("commonmark").render(dag.doc_md)
    assert "<img" not in html and "<h1>" not in html
    (code,) = [block for block in html.split("<pre>")[1:]]
    assert "onerror=alert(1)" in code.split("</pre>")[0], "the hostile text is shown, inside the code block"


def test_a_spec_description_is_shown_as_text_in_the_dag_docs(tmp_path):
    from retrain_operators.dag_factory import build_model_dags

    hostile = "[click](javascript:alert(1)) <script>alert(1)</script> ![x](http://tracker.example/x.png) # h"
    (tmp_path / "described.yaml").write_text(spec_text("described", description=hostile))
    dag = build_model_dags([tmp_path / "described.yaml"])["retrain_described"]
    html = MarkdownIt("commonmark").render(dag.doc_md)
    assert "<script" not in html and "<a " not in html and "<img" not in html
    assert "javascript:alert(1)" in html  # shown, as text


def test_a_symlink_that_stays_inside_the_folder_is_read(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "target.yaml").write_text(spec_text("inside"))
    os.symlink("real/target.yaml", tmp_path / "inside.yaml")
    assert load_spec(tmp_path / "inside.yaml").name == "inside"


def test_the_alias_check_costs_a_normal_spec_nothing_and_refuses_the_bomb_fast(tmp_path):
    (tmp_path / "bomb.yaml").write_text(alias_bomb())
    assert len(alias_bomb().encode()) < 3000
    started = time.monotonic()
    with pytest.raises(SpecError, match="YAML alias"):
        load_spec(tmp_path / "bomb.yaml")
    assert time.monotonic() - started < 1.0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(hostile_specs.DEMO_PATHS), value=hostile_specs.values)
def test_any_field_replaced_by_anything_gives_that_file_one_dag_and_leaves_the_other_alone(tmp_path, path, value):
    from retrain_operators.dag_factory import build_model_dags

    document = copy.deepcopy(DEMO)
    node = document
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    (tmp_path / "good.yaml").write_text(spec_text("good"))
    try:
        (tmp_path / "fuzz.yaml").write_text(yaml.safe_dump({**document, "name": document.get("name", "fuzz")}))
    except yaml.YAMLError:
        return  # not writable as YAML (bytes keys and the like): no file, nothing to parse
    dags = build_model_dags([tmp_path / "fuzz.yaml", tmp_path / "good.yaml"])
    good = {f"{chain}_good" for chain in ("retrain", "score", "monitor")}  # the demo spec closes the loop
    assert set(dags) == good | {dag_id_of_file(tmp_path / "fuzz.yaml")}
    assert not any("invalid-spec" in dags[dag_id].tags for dag_id in good)
