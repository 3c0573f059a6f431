"""A rerun reuses a trained version only when everything that shapes the model is the same: changing the
estimator class (RandomForest -> ExtraTrees, default parameters) and rerunning a date trains a new model."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys

import pytest

from retrain.spec import load_spec
from retrain.train import training_key
from tests.support import DEMO_SPEC, bare_run

pytestmark = pytest.mark.security

SPEC = load_spec(DEMO_SPEC)


def changed(**updates):
    """The demo spec with one model-shaping section replaced."""
    return SPEC.model_copy(update=updates)


@pytest.mark.parametrize(
    "variant",
    [
        changed(model=SPEC.model.model_copy(update={"estimator": "sklearn.ensemble.RandomForestClassifier"})),
        changed(model=SPEC.model.model_copy(update={"random_state": 8})),
        changed(features=SPEC.features.model_copy(update={"categorical": ("plan",)})),
        changed(target="tenure_months", task="regression"),
    ],
    ids=["estimator", "random_state", "features", "target-task"],
)
def test_the_training_key_changes_with_everything_that_shapes_the_model(variant):
    params = {"max_iter": 10}
    assert training_key(variant, params) != training_key(SPEC, params)
    assert training_key(SPEC, params) == training_key(SPEC.model_copy(), dict(params))  # and only with that


def test_two_estimator_classes_with_default_parameters_have_different_keys():
    forest = changed(model=SPEC.model.model_copy(update={"estimator": "sklearn.ensemble.RandomForestClassifier", "params": {}}))
    extra = changed(model=SPEC.model.model_copy(update={"estimator": "sklearn.ensemble.ExtraTreesClassifier", "params": {}}))
    assert training_key(forest, {"random_state": 7}) != training_key(extra, {"random_state": 7})


@pytest.mark.integration
def test_rerunning_a_date_with_another_estimator_trains_a_new_version(guarded_model, tmp_path):
    """The real job twice on one partition, RandomForest then ExtraTrees (same parameters): two versions."""
    from retrain.data import read_window
    from retrain.features import build_partition
    from retrain.invocation import training_invocation
    from retrain.tags import Tag
    from retrain.window import Window
    from tests.support import write_spec

    _, registry = guarded_model
    (tmp_path / "specs").mkdir()
    versions = []
    for estimator in ("RandomForestClassifier", "ExtraTreesClassifier"):
        spec = load_spec(write_spec(tmp_path / "specs", name="reuse_key", **{
            "model.estimator": f"sklearn.ensemble.{estimator}", "model.params": {"n_estimators": 20, "max_depth": 6}}))  # fmt: skip
        window = Window.ending(dt.date(2025, 5, 1), spec.data)
        partition = tmp_path / "features" / window.partition
        if not partition.exists():
            frame = read_window(spec, window, columns=[*spec.features.columns, spec.target]).frame
            build_partition(frame, spec, window, partition)
        result = tmp_path / f"{estimator}.json"
        invocation = training_invocation(spec, bare_run(spec, dt.date(2025, 5, 1), "manual__same_night"),
                                         task_id="train", features_dir=str(partition), result_path=str(result))  # fmt: skip
        env = {**os.environ, **invocation.env, "RETRAIN_CODE_VERSION": "same-code"}
        subprocess.run(invocation.command(sys.executable), env=env, check=True, capture_output=True, timeout=600)
        versions.append(json.loads(result.read_text()))
    forest, extra = versions
    assert extra["reused"] is False and extra["model_version"] != forest["model_version"]
    estimators = {v.version: v.tags[Tag.ESTIMATOR] for v in registry.versions("reuse_key")}
    assert estimators == {forest["model_version"]: "sklearn.ensemble.RandomForestClassifier",
                          extra["model_version"]: "sklearn.ensemble.ExtraTreesClassifier"}  # fmt: skip
