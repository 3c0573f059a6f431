"""Hostile or careless specs end in a clear SpecError or a valid spec: never a crash, a hang or code execution."""

from __future__ import annotations

import copy

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retrain.errors import SpecError
from retrain.spec import ModelSpec, load_spec, parse_spec
from tests.support import REPO

DEMO = yaml.safe_load((REPO / "include" / "models" / "churn.yaml").read_text())

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=50), st.text(alphabet="ŝ💥\x00\n'\"{}[]", max_size=10), st.binary(max_size=10),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def _paths(document, prefix=()):
    if isinstance(document, dict):
        for key, value in document.items():
            yield (*prefix, key)
            yield from _paths(value, (*prefix, key))


DEMO_PATHS = list(_paths(DEMO))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(DEMO_PATHS), value=values)
def test_any_field_replaced_by_anything_gives_a_spec_or_a_named_error(path, value):
    document = copy.deepcopy(DEMO)
    node = document
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    try:
        spec = parse_spec(document, source="fuzz.yaml")
    except SpecError as error:
        message = str(error)
        assert message.startswith("fuzz.yaml: ")
        assert "field '" in message or "mapping" in message
    else:
        assert isinstance(spec, ModelSpec)


@settings(max_examples=100, deadline=None)
@given(document=values)
def test_any_document_gives_a_spec_or_a_named_error(document):
    try:
        parse_spec(document, source="fuzz.yaml")
    except SpecError as error:
        assert str(error).startswith("fuzz.yaml: ")


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=300))
def test_any_file_content_gives_a_spec_or_a_named_error(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fuzz") / "demo_model.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        load_spec(path)
    except SpecError as error:
        assert str(path) in str(error)


@settings(max_examples=50, deadline=None)
@given(estimator=st.from_regex(r"[a-z_]{1,10}(\.[A-Za-z_]{1,10}){1,3}", fullmatch=True))
def test_only_allowlisted_estimators_are_accepted(estimator):
    document = copy.deepcopy(DEMO)
    document["model"] = {"estimator": estimator}
    try:
        spec = parse_spec(document)
    except SpecError as error:
        assert "model.estimator" in str(error)
    else:
        assert spec.model.estimator.startswith("sklearn.")
