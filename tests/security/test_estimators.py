"""The estimator and its parameters come from a spec and from the trigger form: only a scikit-learn
estimator of the spec's task, only known parameters of the right types within the size bounds, nothing
that names a file. Checked at parse time (no scikit-learn import), when the run starts (the first task
fails at once) and again in the training job."""

from __future__ import annotations

import copy
import datetime as dt
import json
import subprocess
import sys
from types import SimpleNamespace

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retrain.errors import FormValueError, SpecError
from retrain.estimator_params import SIZE_BOUNDS
from retrain.options import resolve_run
from retrain.spec import load_spec, parse_spec
from tests.support import DEMO_SPEC, REPO, TASKS, files_under, registry_snapshot, run_dag

pytestmark = pytest.mark.security

DEMO = yaml.safe_load(DEMO_SPEC.read_text())
SPEC = load_spec(DEMO_SPEC)
OUTSIDE = "tests.security.outside_estimators.FileCachingClassifier"


def with_model(estimator: str, **params) -> dict:
    document = copy.deepcopy(DEMO)
    document["model"] = {"estimator": estimator, "params": params}
    return document


@pytest.mark.parametrize(
    ("estimator", "reason"),
    [
        ("sklearn.utils._testing.MinimalClassifier", "not a public scikit-learn classifier or regressor"),
        ("sklearn.externals.array_api_compat.numpy.linalg", "not a public scikit-learn classifier or regressor"),
        ("sklearn.cluster.AgglomerativeClustering", "cluster estimator, not a classifier"),
        ("sklearn.ensemble.RandomForestRegressor", "is a regressor; this spec's task is classification"),
        ("sklearn.ensemble.StackingClassifier", "needs estimator objects"),
        ("sklearn.ensemble._forest.RandomForestClassifier", "did you mean sklearn.ensemble.RandomForestClassifier"),
    ],
)
def test_only_a_scikit_learn_estimator_of_the_spec_task_is_accepted(estimator, reason):
    with pytest.raises(SpecError) as refused:
        parse_spec(with_model(estimator), source="hostile.yaml")
    assert "field 'model.estimator'" in str(refused.value) and reason in str(refused.value)


def test_parsing_a_hostile_estimator_imports_nothing(tmp_path):
    """Parse time never imports the class it checks (nor scikit-learn): refusing it runs none of its code."""
    (tmp_path / "hostile.yaml").write_text(yaml.safe_dump({**with_model("sklearn.utils._testing.MinimalClassifier"), "name": "hostile"}))
    code = ("import sys, json\nfrom retrain.spec import load_spec\ntry: load_spec(sys.argv[1])\nexcept Exception as e: print(type(e).__name__)\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('sklearn'))))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "hostile.yaml")], capture_output=True, text=True,
                         check=True, env={"PYTHONPATH": str(REPO / "include"), "PATH": "/usr/bin"})  # fmt: skip
    assert out.stdout.splitlines() == ["SpecError", "[]"]


@pytest.mark.parametrize(
    ("params", "field", "reason"),
    [
        ({"max_iter": 10**12}, "max_iter", "size-like: at most 100000"),
        ({"max_iter": 1e12}, "max_iter", "size-like: at most 100000"),
        ({"max_leaf_nodes": "many"}, "max_leaf_nodes", "must be an integer >= 2 or null"),
        ({"n_trees": 5}, "n_trees", "not a parameter of sklearn.ensemble.HistGradientBoostingClassifier"),
        ({"loss": {"__class__": "x"}}, "loss", "must be one of 'log_loss'"),
        ({"scoring": None, "memory": "/tmp/cache"}, "memory", "names a place on disk"),
    ],
)
def test_spec_parameters_are_known_typed_and_bounded(params, field, reason):
    with pytest.raises(SpecError) as refused:
        parse_spec(with_model("sklearn.ensemble.HistGradientBoostingClassifier", **params), source="hostile.yaml")
    assert f"field 'model.params.{field}'" in str(refused.value) and reason in str(refused.value)


def test_an_estimator_outside_scikit_learn_still_works_with_its_prefix_and_cannot_write_files(tmp_path, monkeypatch):
    monkeypatch.setenv("RETRAIN_ALLOWED_ESTIMATOR_PREFIXES", "tests.security.outside_estimators.")
    assert parse_spec(with_model(OUTSIDE, n_estimators=3)).model.estimator == OUTSIDE
    for params, field in [({"memory": str(tmp_path / "c")}, "memory"), ({"store": str(tmp_path / "c")}, "store"),
                          ({"store": "../../escape"}, "store"), ({"n_estimators": 10**9}, "n_estimators")]:  # fmt: skip
        with pytest.raises(SpecError, match=f"field 'model.params.{field}'"):
            parse_spec(with_model(OUTSIDE, **params))
    # The deployment may allow a path parameter on purpose.
    monkeypatch.setenv("RETRAIN_ALLOWED_ESTIMATOR_PARAMS", f"{OUTSIDE}.memory")
    assert parse_spec(with_model(OUTSIDE, memory=str(tmp_path / "c"))).model.params["memory"]
    assert not (tmp_path / "c").exists()


def form_context(**estimator_params) -> dict:
    return {
        "params": {"end_date": "2025-05-01", "estimator_params": estimator_params},
        "dag_run": SimpleNamespace(conf={}, run_after=dt.datetime(2025, 5, 1, tzinfo=dt.UTC)),
        "run_id": "manual__hostile",
    }


def resolve(**estimator_params):
    return resolve_run(SPEC, run_id="manual__hostile", params={"estimator_params": estimator_params}, conf={},
                       interval_end=None, run_after=dt.datetime(2025, 5, 1, tzinfo=dt.UTC))  # fmt: skip


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"n_estimators": 1e12}, "estimator_params.n_estimators: is size-like: at most 10000"),
        ({"max_iter": 1_000_000_000_000}, "estimator_params.max_iter: is size-like: at most 100000"),
        ({"max_iter": 1e12}, "estimator_params.max_iter: is size-like"),
        ({"learning_rate": "fast"}, "estimator_params.learning_rate: must be a number > 0"),
        ({"memory": "/tmp/x"}, "estimator_params.memory: names a place on disk"),
        ({"random_state": -1}, "estimator_params.random_state: must be an integer in [0, 2**32 - 1]"),
    ],
)
def test_form_values_are_refused_when_the_run_starts(overrides, reason):
    with pytest.raises(FormValueError) as refused:
        resolve(**overrides)
    assert reason in str(refused.value) and "refused before anything ran" in str(refused.value)


def test_a_refused_form_value_fails_the_first_task_at_once_before_its_step_runs(tmp_path, monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException

    from retrain.pipeline import steps
    from retrain_operators.base import StepOperator

    monkeypatch.setenv("RETRAIN_ARTIFACTS_ROOT", str(tmp_path))
    first = StepOperator(spec=SPEC, step=steps(SPEC)[0])
    ti = SimpleNamespace(xcom_push=lambda **_: pytest.fail("nothing is recorded"), xcom_pull=lambda **_: None)
    with pytest.raises(AirflowFailException, match="FormValueError: refused before anything ran"):
        first.execute({**form_context(max_iter=10**12), "ti": ti})
    assert files_under(tmp_path) == set(), "the step never ran: no report, no partition"


def test_the_training_job_checks_the_parameters_again(tmp_path, monkeypatch):
    """Defence in depth: a run whose form values bypassed the first check still trains nothing."""
    from retrain.train import main

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # nothing listens: any call would fail loudly
    run = {"dag_id": SPEC.dag_id, "run_id": "manual__hostile", "user": None,
           "options": {"estimator_params": {"max_iter": 10**12}},
           "window": {"start": "2025-03-06T00:00:00+00:00", "holdout_start": "2025-04-24T00:00:00+00:00",
                      "end": "2025-05-01T00:00:00+00:00"}}  # fmt: skip
    result = tmp_path / "return.json"
    code = main(["--spec-json", SPEC.model_dump_json(), "--run-json", json.dumps(run), "--task-id", "train",
                 "--features-dir", str(tmp_path / "none"), "--result-path", str(result)])  # fmt: skip
    assert code == 1 and not result.exists()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
param_names = st.sampled_from([*SIZE_BOUNDS, "learning_rate", "max_bins", "loss", "early_stopping", "scoring",
                               "class_weight", "categorical_features", "memory", "l2_regularization", "tol"])  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(overrides=st.dictionaries(param_names | st.text(max_size=10), json_values, max_size=4))
def test_any_form_value_is_refused_or_accepted_by_scikit_learn_itself(overrides):
    """Whatever the form holds: a FormValueError, or values scikit-learn's own validation accepts."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    try:
        resolve(**overrides)
    except FormValueError as refused:
        assert "param estimator_params." in str(refused)
        return
    HistGradientBoostingClassifier(**{**SPEC.model.params, **overrides})._validate_params()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(params=st.dictionaries(param_names, json_values, max_size=4))
def test_any_spec_params_give_a_named_error_or_a_model_scikit_learn_accepts(params):
    from sklearn.ensemble import HistGradientBoostingClassifier

    try:
        spec = parse_spec(with_model("sklearn.ensemble.HistGradientBoostingClassifier", **params), source="fuzz.yaml")
    except SpecError as error:
        assert "field 'model.params." in str(error)
        return
    HistGradientBoostingClassifier(**spec.model.params)._validate_params()


@pytest.mark.integration
def test_a_run_with_an_oversized_form_value_fails_its_first_task_and_changes_nothing(guarded_model):
    from tests.support import artifacts

    spec_path, registry = guarded_model
    before, written = registry_snapshot(registry, "guarded"), files_under(artifacts("guarded"))
    states, _ = run_dag(spec_path, dt.date(2025, 5, 3), estimator_params={"max_iter": 10**12})
    assert states == {TASKS[0]: "failed", **dict.fromkeys(TASKS[1:], "upstream_failed")}
    assert registry_snapshot(registry, "guarded") == before
    assert files_under(artifacts("guarded")) == written
