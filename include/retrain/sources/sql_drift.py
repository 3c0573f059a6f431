"""Drift counted inside the database: the statistics of retrain.drift from aggregate queries, no rows moved.

One GROUP BY GROUPING SETS query scans the window once and returns, per column:
- numeric: the rows in each interval between thresholds, with how many equal the threshold opening it
  (PostgreSQL's width_bucket with the thresholds as an array parameter): the thresholds are the PSI bins'
  edges (the reference's quantiles) and up to KS_POINTS reference values. That gives the PSI bin counts
  and the window's empirical distribution at each of those values, from both sides: what retrain.drift's
  KS computes at every distinct reference value, so the statistic is exact when the reference has at
  most KS_POINTS distinct values and otherwise a binned approximation (a lower bound), said in the
  report; the p-value is scipy's asymptotic one, as for files. When the window is the smaller side (or
  both are small enough for scipy's exact p-value), its values are read instead: at most as many as the
  reference sample.
- categorical (and a classification label): the rows per value, for PSI and chi-square.

Other dialects (no width_bucket over an array) read the window's needed columns into the worker and compute
as for files; the report says which way it was computed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from retrain.drift import (
    KS_EXACT_MAX_ROWS,
    MISSING,
    ColumnDrift,
    DriftReport,
    _binned,
    _chi2,
    _edges,
    _ks,
    _psi_counts,
    _sorted_values,
    _text_counts,
    compute_drift,
)
from retrain.features import typed_frame
from retrain.sources import Drifted
from retrain.sources.sql import SqlSource
from retrain.window import Window

DOUBLES = postgresql.ARRAY(sa.Double)
# Reference values the KS statistic is evaluated at. width_bucket's cost grows with its array (measured on
# PostgreSQL 15: 1,000 values cost as little as 10; 50,000 made it 10x slower than the rest of the scan).
KS_POINTS = 1000
KS_BINNED = f"ks-binned-{KS_POINTS}"
IN_DATABASE = {
    "computed": "in the database: every count over the whole window (one GROUP BY GROUPING SETS scan)",
    "psi, chi2": "exact: the same counts as on the worker",
    "ks": f"binned approximation ({KS_BINNED}): the window's distribution counted at up to {KS_POINTS} reference"
    " values at evenly spaced quantiles; exact (test 'ks') when the reference has no more distinct values, else"
    " a lower bound of the statistic; p-value asymptotic (scipy's kstwo at the effective sample size). When the"
    " window is the smaller sample, its values are read and the test is exact",
    "plots": "a random sample of the window, as many rows as the reference sample",
}


def drift_in_database(source: SqlSource, reference: pd.DataFrame, window: Window) -> Drifted:
    """The window's drift against the reference sample, counted by the database."""
    spec = source.spec
    names = [*spec.features.columns, spec.target]
    if source.engine.dialect.name != "postgresql":
        current = typed_frame(source.read_window(window, names).frame, spec)
        method = {"computed": f"on the worker: the window's columns were read ({source.engine.dialect.name})"}
        return Drifted(compute_drift(reference, current, spec), current, method)
    source.input_columns(names)
    columns = [(c, "numeric", "feature") for c in spec.features.numeric]
    columns += [(c, "categorical", "feature") for c in spec.features.categorical]
    if spec.target in reference.columns:
        columns.append((spec.target, "categorical" if spec.task == "classification" else "numeric", "label"))
    plans = [
        _ColumnPlan(i, name, kind, role, reference[name], spec.drift.bins)
        for i, (name, kind, role) in enumerate(columns)
    ]
    counts = _grouped_counts(source, window, plans)
    window_rows = sum(next(iter(counts.values()), {}).values())  # every grouping set counts every row once
    results = tuple(plan.result(counts, window_rows, source, window) for plan in plans)
    report = DriftReport(spec.name, results, spec.drift.psi_threshold, spec.drift.p_value)
    drifted = [c.column for c in results if c.drifted]
    current = _sample(source, window, drifted, spec.drift.reference_sample_rows) if drifted else pd.DataFrame()
    return Drifted(report, current, IN_DATABASE)


class _ColumnPlan:
    """What one column needs counted, and its statistics from the counts."""

    def __init__(self, index: int, name: str, kind: str, role: str, reference: pd.Series, bins: int) -> None:
        self.index, self.name, self.kind, self.role, self.reference = index, name, kind, role, reference
        self.label = f"c{index}"
        if kind == "numeric":
            self.ref, self.ref_missing = _sorted_values(reference.astype("float64"))
            self.edges = _edges(self.ref, bins)
            self.points = np.unique(self.ref)
            if self.points.size > KS_POINTS:  # reference values at evenly spaced quantiles: the binned approximation
                quantiles = np.quantile(self.ref, np.linspace(0, 1, KS_POINTS), method="inverted_cdf")
                self.points = np.unique(quantiles)
            self.ks_exact = self.points.size == np.unique(self.ref).size
            # One set of thresholds for both statistics: the PSI bins' inner edges and the KS points.
            self.thresholds = np.unique(np.concatenate([self.points, self.edges[1:-1]]))

    def key(self, value: sa.ColumnElement) -> sa.ColumnElement:
        """What this column is grouped on: the value (categorical), or for a number the interval between two
        thresholds it falls in, twice, plus one when it equals the threshold opening the interval."""
        if self.kind == "categorical":
            return value
        index = self.index
        x = sa.func.nullif(sa.cast(value, sa.Double), sa.bindparam(f"nan{index}", float("nan"), type_=sa.Double))
        if not self.thresholds.size:
            return sa.case((x.is_(None), None), else_=0)
        # Interval i holds thresholds[i-1] <= x < thresholds[i]; against the next doubles up, x == thresholds[i-1]
        # falls one interval lower, so 2 * at + (at - past) = 3 * at - past tells both.
        at = sa.func.width_bucket(x, sa.bindparam(f"at{index}", self.thresholds.tolist(), type_=DOUBLES))
        above = np.nextafter(self.thresholds, np.inf).tolist()
        past = sa.func.width_bucket(x, sa.bindparam(f"past{index}", above, type_=DOUBLES))
        return at * 3 - past

    def result(self, counts: dict[str, dict], window_rows: int, source: SqlSource, window: Window) -> ColumnDrift:
        """The column's PSI, test and verdict, as retrain.drift.column_drift gives them for the same rows."""
        spec = source.spec
        current = counts.get(self.label, {})
        if self.kind == "categorical":
            by_text = pd.Series({MISSING if key is None else str(key): n for key, n in current.items()}, dtype="int64")
            cur_text = by_text.groupby(level=0).sum()  # 1 and "1" are one category, as for files
            ref_text = _text_counts(self.reference)
            categories = sorted(set(ref_text.index) | set(cur_text.index))
            ref = ref_text.reindex(categories, fill_value=0).to_numpy()
            cur = cur_text.reindex(categories, fill_value=0).to_numpy()
            value, (statistic, p_value), test = _psi_counts(ref, cur), _chi2(ref, cur), "chi2"
        else:
            within = np.zeros(self.thresholds.size + 1, dtype=np.int64)
            equal = np.zeros(self.thresholds.size + 1, dtype=np.int64)
            for key, n in current.items():
                if key is None:  # a missing value: in no interval
                    continue
                interval, is_equal = divmod(key, 2)
                within[interval] += n
                equal[interval] += n * is_equal
            below = np.cumsum(within)  # below[t]: rows < thresholds[t]; below[-1]: every present row
            present = int(below[-1])
            edges_at = np.searchsorted(self.thresholds, self.edges[1:-1])
            cur_binned = np.diff(np.concatenate([[0], below[edges_at], [present]]))
            cur_binned = np.append(cur_binned, window_rows - present)
            value = _psi_counts(_binned(self.ref, self.ref_missing, self.edges), cur_binned)
            points_at = np.searchsorted(self.thresholds, self.points)
            (statistic, p_value), test = self._ks(
                below[points_at], below[points_at] + equal[points_at + 1], present, source, window
            )
        drifted = bool(
            window_rows > 0
            and value > spec.drift.psi_threshold
            and p_value is not None
            and p_value < spec.drift.p_value
        )
        return ColumnDrift(
            self.name, self.kind, self.role, value, test, statistic, p_value, drifted, len(self.reference), window_rows
        )

    def _ks(self, below: np.ndarray, at_or_below: np.ndarray, present: int, source: SqlSource, window: Window):
        """retrain.drift's KS from the window's rows below and at-or-below each KS point (or its values)."""
        ref = self.ref
        if ref.size == 0 or present == 0:
            return (None, None), "ks"
        if present <= ref.size or max(ref.size, present) <= KS_EXACT_MAX_ROWS:
            # The window is the smaller sample (or scipy's exact p-value applies): its values, at most as many
            # as the reference's, are read and compared exactly as for files.
            return _ks(ref, _values(source, window, self.name)), "ks"
        d = 0.0
        for side, counts in (("right", at_or_below), ("left", below)):
            diffs = np.searchsorted(ref, self.points, side=side) / ref.size - counts / present
            d = max(d, float(np.abs(diffs).max()))
        from scipy.stats import distributions

        m, n = float(present), float(ref.size)
        p_value = float(np.clip(distributions.kstwo.sf(d, np.round(m * n / (m + n))), 0, 1))
        return (d, p_value), "ks" if self.ks_exact else KS_BINNED


def _grouped_counts(source: SqlSource, window: Window, plans: list[_ColumnPlan]) -> dict[str, dict]:
    """{key label: {key value: rows}} for every plan's keys, from one scan of the window."""
    relation = source.window_select(window, [source.spec.data.timestamp_column, *[p.name for p in plans]]).subquery()
    # The keys are computed in a subquery, once per row; the grouping sets then group on plain columns.
    computed = sa.select(*[plan.key(relation.c[plan.name]).label(plan.label) for plan in plans]).subquery("keys")
    keys = [(plan.label, computed.c[plan.label]) for plan in plans]
    select = sa.select(
        *[column for _, column in keys], *[sa.func.grouping(column) for _, column in keys], sa.func.count()
    ).group_by(sa.func.grouping_sets(*[sa.tuple_(column) for _, column in keys]))
    counts: dict[str, dict] = {label: {} for label, _ in keys}
    with source.errors(), source.engine.connect() as connection:
        result = connection.execution_options(stream_results=True).execute(select)
        for rows in result.partitions(10_000):
            for row in rows:
                values, groupings, n = row[: len(keys)], row[len(keys) : 2 * len(keys)], row[-1]
                position = groupings.index(0)
                counts[keys[position][0]][values[position]] = n
    return counts


def _values(source: SqlSource, window: Window, name: str) -> np.ndarray:
    """The window's non-missing values of a numeric column, sorted (only called when they are few)."""
    relation = source.window_select(window, [source.spec.data.timestamp_column, name]).subquery()
    x = sa.cast(relation.c[name], sa.Double)
    select = sa.select(x).where(x.is_not(None), x != float("nan")).order_by(x)
    with source.errors(), source.engine.connect() as connection:
        return np.array(connection.execute(select).scalars().all(), dtype=float)


def _sample(source: SqlSource, window: Window, names: list[str], rows: int) -> pd.DataFrame:
    """A random sample of the window's named columns, for the report's plots."""
    relation = source.window_select(window, [source.spec.data.timestamp_column, *names]).subquery()
    select = sa.select(*[relation.c[name] for name in names]).order_by(sa.func.random()).limit(rows)
    with source.errors(), source.engine.connect() as connection:
        result = connection.execute(select)
        frame = source.frame(result.all(), list(result.keys()))
    return typed_frame_columns(frame, source.spec)


def typed_frame_columns(frame: pd.DataFrame, spec) -> pd.DataFrame:
    """The sample's columns with the dtypes the drift statistics use (numbers as float, categories as text)."""
    out = {}
    for name in frame.columns:
        if name in spec.features.categorical:
            out[name] = frame[name].astype("str")
        else:
            out[name] = pd.to_numeric(frame[name], errors="coerce")
    return pd.DataFrame(out)
