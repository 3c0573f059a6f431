"""Reports show data and spec values as text: every value is HTML-escaped, and plot labels are drawn as
text (a `$...$` category value crashed the drift step through matplotlib's math parser)."""

from __future__ import annotations

import copy
import datetime as dt
import html.parser

import numpy as np
import pandas as pd
import pytest
import yaml

from retrain.drift import compute_drift, render_html
from retrain.report import history_plot, render_run_report
from retrain.spec import parse_spec
from retrain.validation import ExpectationResult, ValidationOutcome
from retrain.validation import render_html as validation_html
from tests.support import DEMO_SPEC

pytestmark = pytest.mark.security

SCRIPT = "<script>alert(1)</script>"
IMAGE = '"><img src=x onerror=alert(2)>'
MATH = r"$\notacommand$"


class Elements(html.parser.HTMLParser):
    """Every element of a page, with its attributes."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.found: list[tuple[str, dict]] = []
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, dict(attrs)))


def assert_inert(page: str) -> None:
    """No script, no event handler, and every image is one of our own PNGs."""
    for tag, attrs in Elements(page).found:
        assert tag != "script", page
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        if tag == "img":
            assert attrs["src"].startswith("data:image/png;base64,"), attrs


def hostile_spec():
    document = copy.deepcopy(yaml.safe_load(DEMO_SPEC.read_text()))
    document["features"] = {"numeric": [SCRIPT], "categorical": [IMAGE]}
    document["evaluation"]["slices"] = []
    return parse_spec(document)


def hostile_frames(spec):
    rng = np.random.default_rng(0)
    numeric, category = spec.features.numeric[0], spec.features.categorical[0]
    reference = pd.DataFrame({numeric: rng.normal(0, 1, 2000), category: rng.choice(["a", "b"], 2000),
                              spec.target: rng.integers(0, 2, 2000)})  # fmt: skip
    current = pd.DataFrame({numeric: rng.normal(3, 1, 2000), category: rng.choice([MATH, SCRIPT, "a$b$c"], 2000),
                            spec.target: rng.integers(0, 2, 2000)})  # fmt: skip
    return reference, current


def test_the_drift_report_escapes_column_names_and_values_and_draws_math_as_text():
    spec = hostile_spec()
    reference, current = hostile_frames(spec)
    report = compute_drift(reference, current, spec)
    assert set(report.drifted_features) == {SCRIPT, IMAGE}
    page = render_html(report, reference, current, f"window {SCRIPT}", f"v{IMAGE}")  # the plots are drawn here
    assert_inert(page)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # shown, as text, in the summary and the table
    assert sum(tag == "img" for tag, _ in Elements(page).found) == 2


def test_a_drift_plot_shows_a_bounded_number_of_categories():
    spec = hostile_spec()
    reference, current = hostile_frames(spec)
    current[spec.features.categorical[0]] = [f"c{i}" for i in range(len(current))]  # 2000 distinct values
    report = compute_drift(reference, current, spec)
    assert_inert(render_html(report, reference, current, "w", "1"))


def test_the_validation_report_escapes_what_the_data_and_the_spec_say():
    result = ExpectationResult(
        type="expect_column_values_to_be_in_set", column=SCRIPT, kwargs={"column": SCRIPT, "value_set": [IMAGE]},
        severity="fail", source=f"spec {IMAGE}", success=False, errored=False, unexpected_count=1, element_count=2,
        unexpected_examples=[SCRIPT, MATH],
    )  # fmt: skip
    outcome = ValidationOutcome(model="m", window="w", rows=2, success=False, results=(result,))
    page = validation_html(outcome, files=[f"/data/{SCRIPT}.csv"])
    assert_inert(page)
    assert SCRIPT not in page and IMAGE not in page


def test_the_run_report_escapes_reasons_and_tags_and_its_plot_draws_math_as_text():
    history = [{"version": "1", "window_end": MATH, "challenger": 0.7, "champion": None, "decision": "promoted"},
               {"version": "2", "window_end": f"{SCRIPT}$\\x$", "challenger": 0.6, "champion": 0.7, "decision": "declined"}]  # fmt: skip
    assert history_plot(history, MATH).startswith("data:image/png;base64,")
    summary = {
        "model": SCRIPT, "decision": {"promote": False, "reasons": [IMAGE], "forced": False},
        "metric_table": {SCRIPT: {"challenger": 0.5, "champion": IMAGE}}, "metric": MATH, "challenger_version": IMAGE,
        "champion_version": SCRIPT, "window": IMAGE, "run_id": SCRIPT, "reports": {SCRIPT: IMAGE},
    }  # fmt: skip
    page = render_run_report(summary, history)
    assert_inert(page)
    assert SCRIPT not in page and IMAGE not in page


@pytest.mark.integration
def test_the_drift_step_reports_hostile_categories_as_text_and_changes_nothing(guarded_model, tmp_path, monkeypatch):
    """The real drift step against the guarded champion, on a window whose `plan` values are hostile text."""
    from retrain.pipeline import StepContext
    from retrain.spec import load_spec
    from retrain.steps.drift import run as drift_step
    from tests.support import DEMO_DATA, bare_run, registry_snapshot, write_spec

    _, registry = guarded_model
    data = tmp_path / "data"
    data.mkdir()
    for path in sorted(DEMO_DATA.glob("*.parquet")):
        frame = pd.read_parquet(path)
        frame["plan"] = np.where(np.arange(len(frame)) % 2 == 0, MATH, SCRIPT)
        frame.to_parquet(data / path.name, index=False)
    (tmp_path / "specs").mkdir()
    spec = load_spec(write_spec(tmp_path / "specs", name="guarded", **{"data.uri": str(data)}))
    monkeypatch.setenv("RETRAIN_ARTIFACTS_ROOT", str(tmp_path / "artifacts"))
    before = registry_snapshot(registry, "guarded")
    ctx = StepContext(spec=spec, run=bare_run(spec, dt.date(2025, 5, 2)), registry_factory=lambda: registry)
    result = drift_step(ctx)
    assert "plan" in result.drifted_features
    page = open(result.reports["drift_html"], encoding="utf-8").read()
    assert_inert(page)
    assert registry_snapshot(registry, "guarded") == before
