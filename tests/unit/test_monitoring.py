"""Outcome monitoring's domain: the join of late labels to stored predictions, the daily live metric, and the
policy's truth table (floor, drop, k of N, the latest day, not enough labels)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss, roc_auc_score

from retrain.errors import DataError
from retrain.monitoring import (
    BREACH,
    INSUFFICIENT,
    LABEL,
    OK,
    PENDING,
    SUPERSEDED,
    UNDEFINED,
    DayFigures,
    Joined,
    breach_rule,
    champion_score,
    day_figures,
    decide,
    join_day,
    labels_frame,
    live_score,
    render_html,
    request_extra,
)
from retrain.spec import MonitorPolicySpec, load_spec
from tests.support import DEMO_SPEC

KEYS = ["customer_id"]
SPEC = load_spec(DEMO_SPEC)


def predictions(ids, probabilities=None) -> pd.DataFrame:
    probabilities = probabilities if probabilities is not None else np.linspace(0.1, 0.9, len(ids))
    return pd.DataFrame(
        {"customer_id": ids, "prediction": (np.asarray(probabilities) > 0.5).astype(int), "probability": probabilities,
         "model_version": "1", "run_id": "r"}
    )  # fmt: skip


def labels(ids, values) -> pd.DataFrame:
    return pd.DataFrame({"customer_id": ids, LABEL: np.asarray(values, dtype=float)})


# The join


def test_labels_that_arrived_are_joined_and_missing_ones_leave_the_row_unlabelled():
    joined = join_day(predictions([1, 2, 3, 4]), labels([2, 4], [1, 0]), KEYS)
    assert (joined.scored, joined.labelled) == (4, 2)
    assert joined.coverage == 0.5
    by_key = dict(zip(joined.frame["customer_id"], joined.frame[LABEL], strict=True))
    assert by_key[2] == 1 and by_key[4] == 0 and math.isnan(by_key[1]) and math.isnan(by_key[3])


def test_late_labels_count_once_they_land_and_labels_for_rows_never_scored_are_ignored():
    scored = predictions([1, 2, 3])
    first = join_day(scored, labels([1], [0]), KEYS)
    later = join_day(scored, labels([1, 2, 3, 99], [0, 1, 0, 1]), KEYS)  # the rest landed; 99 was never scored
    assert (first.labelled, later.labelled, later.scored) == (1, 3, 3)


def test_no_labels_at_all_gives_no_labelled_row_and_no_metric():
    joined = join_day(predictions([1, 2]), labels([], []), KEYS)
    assert joined.labelled == 0
    assert live_score(joined.frame, "roc_auc", "classification", (0, 1)) is None


def test_a_label_sent_twice_counts_once_and_conflicting_labels_are_left_out():
    feed = labels([1, 1, 2, 2, 3], [1, 1, 0, 1, 0])  # 1 repeated with the same value; 2 contradicts itself
    joined = join_day(predictions([1, 2, 3]), feed, KEYS)
    assert (joined.duplicate_labels, joined.conflicting_labels, joined.labelled) == (1, 1, 2)
    assert math.isnan(joined.frame.set_index("customer_id").loc[2, LABEL])


def test_predictions_with_a_repeated_key_are_refused_naming_the_file():
    with pytest.raises(DataError, match=r"preds.parquet: predictions repeat keys \[\{'customer_id': 1\}\]"):
        join_day(predictions([1, 1, 2]), labels([1], [1]), KEYS, source="preds.parquet")


def test_label_keys_of_another_type_are_matched_when_they_convert_and_refused_when_they_cannot():
    as_text = labels(["1", "2"], [1, 0])
    assert join_day(predictions([1, 2]), as_text, KEYS).labelled == 2
    with pytest.raises(DataError, match=r"label key 'customer_id'.*cannot be matched"):
        join_day(predictions([1, 2]), labels(["c-1", "c-2"], [1, 0]), KEYS)


def test_the_label_feed_must_have_the_key_and_whole_number_labels():
    raw = pd.DataFrame({"cust": [1, 2], "churned": [1, 0]})
    frame = labels_frame(raw, KEYS, ["cust"], "churned", "classification", "feed.csv")
    assert list(frame.columns) == ["customer_id", LABEL]  # the label key renamed to the prediction's
    with pytest.raises(DataError, match=r"feed.csv: labels lack column\(s\) \['customer_id'\]"):
        labels_frame(raw, KEYS, KEYS, "churned", "classification", "feed.csv")
    with pytest.raises(DataError, match=r"feed.csv: label column 'churned' holds values that are not a whole number.*'yes'"):
        labels_frame(raw.assign(churned=["yes", 0]), KEYS, ["cust"], "churned", "classification", "feed.csv")
    with pytest.raises(DataError, match=r"not a whole number.*0.5"):
        labels_frame(raw.assign(churned=[0.5, 1]), KEYS, ["cust"], "churned", "classification", "feed.csv")
    assert len(labels_frame(raw.assign(churned=[None, 1]), KEYS, ["cust"], "churned", "classification", "f")) == 1


# The daily metric


def test_the_daily_metric_is_the_scikit_learn_scorer_on_the_labelled_rows():
    rng = np.random.default_rng(3)
    p = rng.random(200)
    y = (rng.random(200) < p).astype(int)
    joined = join_day(predictions(np.arange(200), p), labels(np.arange(0, 200, 2), y[::2]), KEYS).frame
    assert live_score(joined, "roc_auc", "classification", (0, 1)) == pytest.approx(roc_auc_score(y[::2], p[::2]))
    assert live_score(joined, "neg_log_loss", "classification", (0, 1)) == pytest.approx(-log_loss(y[::2], p[::2]))
    assert live_score(joined, "accuracy", "classification", (0, 1)) == pytest.approx(np.mean((p[::2] > 0.5) == y[::2]))


def test_a_metric_undefined_on_the_day_is_none_not_an_error():
    joined = join_day(predictions([1, 2, 3]), labels([1, 2, 3], [1, 1, 1]), KEYS).frame
    assert live_score(joined, "roc_auc", "classification", (0, 1)) is None  # one class only


def test_regression_is_scored_from_the_prediction():
    frame = pd.DataFrame({"customer_id": [1, 2, 3], "prediction": [1.0, 2.0, 3.0], LABEL: [1.0, 2.0, 4.0]})
    assert live_score(frame, "neg_mean_absolute_error", "regression") == pytest.approx(-1 / 3)


def test_champion_score_comes_from_its_evaluation_tag_primary_or_secondary():
    tag = '{"challenger": {"primary": 0.71, "secondary": {"neg_log_loss": -0.28}}}'
    assert champion_score(tag, "roc_auc", "roc_auc") == 0.71
    assert champion_score(tag, "neg_log_loss", "roc_auc") == -0.28
    assert champion_score(None, "roc_auc", "roc_auc") is None
    assert champion_score("not json", "roc_auc", "roc_auc") is None


# A day's status and the policy's truth table

POLICY = MonitorPolicySpec(min_score=0.6, max_drop=0.05, breaches=2, days=3, min_labels=10)
CHAMPION = 0.75


def day(n: int, value: float | None = 0.74, labelled: int = 50, *, due: bool = True, current: bool = True) -> DayFigures:
    joined = Joined(pd.DataFrame(), scored=60, labelled=labelled)
    return day_figures(dt.date(2025, 6, n), joined, "1", value, due=due, current=current, policy=POLICY,
                       champion_score=CHAMPION, metric="roc_auc")  # fmt: skip


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0.74, ""), (0.70, "0.0500 below"), (0.69, "below the champion's 0.7500 > max_drop 0.05"), (0.55, "< floor min_score 0.6")],
)
def test_breach_rules_floor_and_drop(value, expected):
    rule = breach_rule(value, POLICY, CHAMPION, "roc_auc")
    assert (expected in rule) if expected else rule == ""


def test_the_drop_rule_needs_a_champion_score_and_the_floor_does_not():
    assert breach_rule(0.1, MonitorPolicySpec(max_drop=0.01), None, "m") == ""
    assert "floor" in breach_rule(0.1, MonitorPolicySpec(min_score=0.5), None, "m")


def test_a_day_is_pending_before_its_labels_are_due_then_judged():
    assert day(1, 0.5, due=False).status == PENDING
    assert day(1, 0.5, labelled=9).status == INSUFFICIENT
    assert day(1, None).status == UNDEFINED
    assert day(1, 0.74).status == OK
    assert day(1, 0.5).status == BREACH
    assert day(1, 0.5, current=False).status == SUPERSEDED


BAD, GOOD = 0.5, 0.74


@pytest.mark.parametrize(
    ("series", "request_", "kind"),
    [
        # k of N with the latest day among them
        ([day(1, BAD), day(2, BAD), day(3, BAD)], True, "request"),
        ([day(1, GOOD), day(2, BAD), day(3, BAD)], True, "request"),
        ([day(1, BAD), day(2, GOOD), day(3, BAD)], True, "request"),
        ([day(1, GOOD), day(2, GOOD), day(3, BAD)], False, "quiet"),  # 1 of 2 breaches
        ([day(1, BAD), day(2, BAD), day(3, GOOD)], False, "quiet"),  # the latest day is fine
        # only the last N calendar days count: day 1 is out of the 3-day window ending on day 4
        ([day(1, BAD), day(2, GOOD), day(3, GOOD), day(4, BAD)], False, "quiet"),
        ([day(1, BAD), day(3, BAD), day(4, BAD)], True, "request"),  # a day never scored is no day
        # the floor alone trips too
        ([day(1, 0.55), day(2, 0.59)], True, "request"),
        # not enough labels on the latest due day: says so, emits nothing, whatever came before
        ([day(1, BAD), day(2, BAD), day(3, BAD, labelled=3)], False, "not_enough_labels"),
        # a day not due yet is not the latest: the latest due day decides
        ([day(1, BAD), day(2, BAD), day(3, GOOD, due=False)], True, "request"),
        ([day(1, BAD), day(2, BAD, due=False), day(3, BAD, due=False)], False, "quiet"),  # 1 due breach of 2
        ([day(1, BAD, due=False), day(2, BAD, due=False)], False, "nothing_due"),
        # days scored by a version that is no longer champion are not held against it
        ([day(1, BAD, current=False), day(2, BAD, current=False), day(3, BAD)], False, "quiet"),
        ([day(1, BAD, current=False)], False, "nothing_due"),
        ([], False, "nothing_due"),
        ([day(1, BAD), day(2, None)], False, "undefined"),
    ],
)
def test_policy_truth_table(series, request_, kind):
    verdict = decide(list(reversed(series)), POLICY, "roc_auc")  # order does not matter
    assert (verdict.request, verdict.kind) == (request_, kind), verdict.reason


def test_a_request_says_why_in_words_with_the_days_and_the_champion():
    verdict = decide([day(1, GOOD), day(2, 0.68), day(3, 0.55)], POLICY, "roc_auc")
    assert verdict.request and verdict.latest_day == "2025-06-03"
    assert "breached on 2 of the last 3 days up to 2025-06-03 (2025-06-02 0.6800, 2025-06-03 0.5500)" in verdict.reason
    assert "floor min_score 0.6" in verdict.reason
    extra = request_extra(verdict, model="churn", metric="roc_auc", champion_version="4", champion_score=CHAMPION,
                          end_date=dt.date(2025, 6, 11), monitor_day=dt.date(2025, 6, 10))  # fmt: skip
    assert extra["reason"] == verdict.reason and extra["champion_version"] == "4" and extra["end_date"] == "2025-06-11"
    assert [d["day"] for d in extra["days"]] == ["2025-06-02", "2025-06-03"]
    assert len(extra["reason"]) < 500  # retrain.options keeps at most 500 characters of a reason


def test_not_enough_labels_says_how_many():
    verdict = decide([day(1, BAD, labelled=3)], POLICY, "roc_auc")
    assert verdict.reason.startswith("not enough labels on 2025-06-01: 3 of 60 scored rows labelled, the policy needs 10")


def test_the_report_escapes_what_comes_from_the_data():
    hostile = dataclasses.replace(day(1, BAD), version="<script>x</script>")
    page = render_html(SPEC, [hostile], [{"day": hostile.day, "psi": {"<b>f": 0.3}, "drifted": ["<b>f"]}],
                       decide([hostile], POLICY, "roc_auc"), champion_version="1", champion_score=CHAMPION,
                       monitor_day=dt.date(2025, 6, 8))  # fmt: skip
    assert "<script>x" not in page and "&lt;script&gt;x" in page and "&lt;b&gt;f" in page
    assert page.count("<img") == 2  # the live metric's trend and PSI per feature


def test_the_live_series_tag_keeps_the_last_days_of_the_live_metric_and_reads_back_only_what_it_wrote():
    import datetime as dt
    import json

    from retrain.registry.monitoring import LIVE_SERIES_DAYS, DayPoint, live_series_tag, parse_live_series

    start = dt.date(2025, 6, 1)
    days = [start + dt.timedelta(days=n) for n in range(LIVE_SERIES_DAYS + 5)]
    points = [DayPoint("live_roc_auc", day, 0.9 - n / 100) for n, day in enumerate(days)]
    points += [DayPoint("psi_plan", start, 0.5), DayPoint("live_roc_auc", start, float("nan"))]
    tag = live_series_tag("roc_auc", reversed(points))
    assert len(tag) < 5000  # an MLflow tag value
    assert json.loads(tag)["days"][0] == [days[5].isoformat(), 0.85]
    assert parse_live_series(tag) == tuple(round(0.9 - n / 100, 6) for n in range(5, LIVE_SERIES_DAYS + 5))
    for hostile in (None, "", "[]", '{"days": 3}', '{"days": [["d", "x"]]}', '{"days": [["d", 1e999]]}', "[" * 10000):
        assert parse_live_series(hostile) == ()
