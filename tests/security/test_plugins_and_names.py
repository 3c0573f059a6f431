"""What reaches Airflow's plugin loader, folder names and templates from a run or a spec: the plugins folder
shadows no package, a run id is always one safe folder name, and a value from a run is never rendered as
a template a second time."""

from __future__ import annotations

import datetime as dt
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retrain.settings import report_dir, run_slug
from retrain.spec import load_spec
from retrain.window import Window
from tests.support import DEMO_SPEC, REPO
from tests.unit import test_boundaries

pytestmark = pytest.mark.security

SPEC = load_spec(DEMO_SPEC)


def test_the_plugins_folder_loads_no_operator_module_as_a_top_level_package():
    """Covered where it lives (tests/unit/test_boundaries.py), run again in this layer."""
    test_boundaries.test_loading_the_plugins_folder_logs_no_import_error_and_shadows_no_package()
    ignored = [line for line in (REPO / "plugins" / ".airflowignore").read_text().splitlines() if not line.startswith("#")]
    assert "retrain_operators/" in ignored  # the one form both loaders (core: glob or regexp; Task SDK: glob) honour


@settings(max_examples=300, deadline=None)
@given(run_id=st.text(min_size=0, max_size=300) | st.sampled_from(["..", ".", "../../etc", "a/../../b", "/abs", "\x00"]))
def test_any_run_id_is_one_folder_inside_the_reports_of_its_window(tmp_path_factory, run_id):
    root = tmp_path_factory.getbasetemp() / "artifacts"
    os.environ["RETRAIN_ARTIFACTS_ROOT"] = str(root)
    try:
        window = Window.ending(dt.date(2025, 5, 1), SPEC.data)
        folder = report_dir(SPEC.name, window, run_id)
        parent = root / SPEC.name / "reports" / window.partition
        assert folder.parent == parent and os.path.normpath(folder) == str(folder)
        assert run_slug(run_id) not in ("", ".", "..") and len(run_slug(run_id)) <= 200
    finally:
        os.environ.pop("RETRAIN_ARTIFACTS_ROOT", None)


def test_a_run_value_in_a_notification_is_text_not_a_second_template():
    """The notifiers' messages are the package's own templates; a run id that holds Jinja is inserted as text,
    with the sandboxed environment Airflow renders with."""
    from retrain_operators.dag_factory import build_retrain_dag
    from retrain_operators.notify import failure_notifiers

    dag = build_retrain_dag(SPEC, DEMO_SPEC)
    notifier = failure_notifiers()[0]
    hostile = "{{ conn.mlflow_default.password }}{% for x in range(10**9) %}{% endfor %}"
    context = {"ti": dag.get_task("train"), "dag": dag, "run_id": hostile}
    notifier.render_template_fields(context, dag.get_template_env())
    assert hostile in notifier.message
