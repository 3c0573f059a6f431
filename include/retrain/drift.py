"""Drift between the champion's training data (its reference sample) and the new window.

Per feature and for the label: the Population Stability Index and a two-sample test
(Kolmogorov-Smirnov for numeric columns, chi-square for categorical ones).

Decision rule: a column drifts when PSI > drift.psi_threshold AND the test's p-value < drift.p_value.
Each alone misleads: on tens of thousands of rows the tests flag shifts far too small to matter,
and on small samples PSI is noisy. Requiring both keeps "drift" meaning a shift that is large and real.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from retrain.plots import png_data_uri, text_figure
from retrain.spec import ModelSpec

# Empty bins would make PSI infinite; a floor of 1e-4 (0.01%) caps each bin's contribution.
EPSILON = 1e-4
MISSING = "<missing>"


def _proportions(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    if total == 0:
        return np.full(len(counts), EPSILON)
    return np.maximum(counts / total, EPSILON)


def psi_from_proportions(reference: np.ndarray, current: np.ndarray) -> float:
    reference, current = np.asarray(reference, float), np.asarray(current, float)
    return float(np.sum((current - reference) * np.log(current / reference)))


def numeric_bins(reference: pd.Series, bins: int) -> np.ndarray:
    return _edges(reference.dropna().to_numpy(dtype=float), bins)


def _edges(values: np.ndarray, bins: int) -> np.ndarray:
    if values.size == 0:
        return np.array([-np.inf, np.inf])
    edges = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1]))
    return np.concatenate([[-np.inf], edges, [np.inf]])


def _sorted_values(values: pd.Series) -> tuple[np.ndarray, int]:
    """The column's non-missing values, sorted once for both PSI and the KS test, and how many are missing."""
    data = values.to_numpy(dtype=float)
    missing = np.isnan(data)
    return np.sort(data[~missing]), int(missing.sum())


def _binned(sorted_values: np.ndarray, missing: int, edges: np.ndarray) -> np.ndarray:
    """np.histogram's counts for these edges (the last bin closed), read off sorted values; then the missing."""
    inner = np.searchsorted(sorted_values, edges[1:-1], side="left")
    return np.append(np.diff(np.concatenate([[0], inner, [sorted_values.size]])), missing)


def psi(reference: pd.Series, current: pd.Series, bins: int = 10) -> float:
    (ref, ref_missing), (cur, cur_missing) = _sorted_values(reference), _sorted_values(current)
    return _numeric_psi(ref, ref_missing, cur, cur_missing, bins)


def _numeric_psi(ref: np.ndarray, ref_missing: int, cur: np.ndarray, cur_missing: int, bins: int) -> float:
    edges = _edges(ref, bins)
    return _psi_counts(_binned(ref, ref_missing, edges), _binned(cur, cur_missing, edges))


def _text_counts(values: pd.Series) -> pd.Series:
    """Rows per category, keyed by its text (missing values under MISSING).

    Counted on the column as it is, then only the distinct keys are turned into text: no Python object
    per row. Keys with the same text (1 and "1", or a literal MISSING) are one category, and so are 1 and 1.0:
    an integer column that gains one missing value becomes float, and must not look like new categories.
    """
    counts = values.value_counts(dropna=False)
    labels = [MISSING if pd.isna(key) else _category_text(key) for key in counts.index]
    return counts.groupby(labels).sum()


def _category_text(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _category_counts(reference: pd.Series, current: pd.Series) -> tuple[list[str], np.ndarray, np.ndarray]:
    ref, cur = _text_counts(reference), _text_counts(current)
    categories = sorted(set(ref.index) | set(cur.index))
    return (
        categories,
        ref.reindex(categories, fill_value=0).to_numpy(),
        cur.reindex(categories, fill_value=0).to_numpy(),
    )


def psi_categorical(reference: pd.Series, current: pd.Series) -> float:
    _, ref, cur = _category_counts(reference, current)
    return _psi_counts(ref, cur)


def _psi_counts(reference: np.ndarray, current: np.ndarray) -> float:
    return psi_from_proportions(_proportions(reference), _proportions(current))


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    kind: str  # numeric | categorical
    role: str  # feature | label
    psi: float
    test: str
    statistic: float | None
    p_value: float | None
    drifted: bool
    reference_rows: int
    current_rows: int


# Up to this many rows on the larger side, scipy computes the KS p-value exactly: it is called as it is.
KS_EXACT_MAX_ROWS = 10_000


def _ks(ref: np.ndarray, cur: np.ndarray) -> tuple[float | None, float | None]:
    """scipy's two-sided `ks_2samp` (method "auto") on sorted samples, in O(k log n) for k distinct values
    on the smaller side instead of O(n log n): the same statistic and p-value, bit for bit
    (tests/unit/test_drift.py compares them).

    Both ECDFs are right-continuous steps, so |F_ref - F_cur| over the pooled points is largest at a value
    of the smaller sample or at the pooled point just before one; scipy evaluates every pooled point.
    """
    from scipy.stats import distributions, ks_2samp

    if ref.size == 0 or cur.size == 0:
        return None, None
    if max(ref.size, cur.size) <= KS_EXACT_MAX_ROWS:
        result = ks_2samp(ref, cur)
        return float(result.statistic), float(result.pvalue)
    small, large = (ref, cur) if ref.size <= cur.size else (cur, ref)
    points = np.unique(small)
    d = 0.0
    for side in ("right", "left"):  # at each point, then just before it
        diffs = (
            np.searchsorted(small, points, side=side) / small.size
            - np.searchsorted(large, points, side=side) / large.size
        )
        d = max(d, float(np.abs(diffs).max()))
    m, n = float(large.size), float(small.size)
    # scipy's asymptotic branch: Smirnov's distribution at the effective sample size.
    p_value = float(np.clip(distributions.kstwo.sf(d, np.round(m * n / (m + n))), 0, 1))
    return d, p_value


def _chi2(ref: np.ndarray, cur: np.ndarray) -> tuple[float | None, float | None]:
    from scipy.stats import chi2_contingency

    table = np.vstack([ref, cur])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0  # one category overall, or an empty side: nothing a test can tell apart
    result = chi2_contingency(table)
    return float(result.statistic), float(result.pvalue)


def column_drift(
    name: str, reference: pd.Series, current: pd.Series, kind: str, role: str, spec: ModelSpec
) -> ColumnDrift:
    if kind == "numeric":  # sorted once, for both PSI and the test
        (ref, ref_missing), (cur, cur_missing) = _sorted_values(reference), _sorted_values(current)
        value = _numeric_psi(ref, ref_missing, cur, cur_missing, spec.drift.bins)
        (statistic, p_value), test = _ks(ref, cur), "ks"
    else:  # counted once, for both PSI and the test
        _, ref, cur = _category_counts(reference, current)
        value, (statistic, p_value), test = _psi_counts(ref, cur), _chi2(ref, cur), "chi2"
    drifted = bool(
        len(current) > 0 and value > spec.drift.psi_threshold and p_value is not None and p_value < spec.drift.p_value
    )
    return ColumnDrift(name, kind, role, value, test, statistic, p_value, drifted, len(reference), len(current))


@dataclass(frozen=True)
class DriftReport:
    model: str
    columns: tuple[ColumnDrift, ...]
    psi_threshold: float
    p_value_threshold: float

    @property
    def drifted_features(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted and c.role == "feature"]

    @property
    def label_drifted(self) -> bool:
        return any(c.drifted for c in self.columns if c.role == "label")

    @property
    def any_drift(self) -> bool:
        return any(c.drifted for c in self.columns)

    @property
    def max_psi(self) -> float:
        return max((c.psi for c in self.columns), default=0.0)

    def to_dict(self) -> dict:
        def clean(value):
            return None if isinstance(value, float) and not math.isfinite(value) else value

        return {
            "model": self.model,
            "any_drift": self.any_drift,
            "drifted_features": self.drifted_features,
            "label_drifted": self.label_drifted,
            "max_psi": clean(self.max_psi),
            "psi_threshold": self.psi_threshold,
            "p_value_threshold": self.p_value_threshold,
            "columns": [{k: clean(v) for k, v in asdict(c).items()} for c in self.columns],
        }


def compute_drift(reference: pd.DataFrame, current: pd.DataFrame, spec: ModelSpec) -> DriftReport:
    columns = [(c, "numeric", "feature") for c in spec.features.numeric]
    columns += [(c, "categorical", "feature") for c in spec.features.categorical]
    label_kind = "categorical" if spec.task == "classification" else "numeric"
    if spec.target in reference.columns and spec.target in current.columns:
        columns.append((spec.target, label_kind, "label"))
    results = tuple(
        column_drift(name, reference[name], current[name], kind, role, spec) for name, kind, role in columns
    )
    return DriftReport(spec.name, results, spec.drift.psi_threshold, spec.drift.p_value)


def should_skip(report: DriftReport | None, spec: ModelSpec, force: bool) -> str | None:
    """Why this run can stop early, or None when it must train."""
    if report is None or spec.drift.retrain == "always" or force or report.any_drift:
        return None
    return (
        f"no drift against the champion (max PSI {report.max_psi:.3f} <= {spec.drift.psi_threshold} or tests not"
        " significant): retrain policy is on_drift, nothing to do; trigger with force=true to retrain anyway"
    )


# A drift plot shows at most this many categories (the most frequent): a column of a million distinct values
# would otherwise draw a million bars.
MAX_PLOTTED_CATEGORIES = 40


def _plot(reference: pd.Series, current: pd.Series, column: ColumnDrift) -> str:
    with text_figure((4.5, 2.4), 80) as (fig, ax):
        if column.kind == "numeric":
            edges = numeric_bins(reference, 20)
            finite = edges[np.isfinite(edges)]
            bins = finite if finite.size > 1 else 20
            ax.hist(reference.dropna(), bins=bins, density=True, alpha=0.5, label="reference")
            ax.hist(current.dropna(), bins=bins, density=True, alpha=0.5, label="current")
        else:
            categories, ref, cur = _category_counts(reference, current)
            shown = np.sort(np.argsort(-(ref + cur), kind="stable")[:MAX_PLOTTED_CATEGORIES])
            x = np.arange(len(shown))
            ax.bar(x - 0.2, ref[shown] / max(ref.sum(), 1), 0.4, label="reference")
            ax.bar(x + 0.2, cur[shown] / max(cur.sum(), 1), 0.4, label="current")
            ax.set_xticks(x, [categories[i][:40] for i in shown], fontsize=7, rotation=30)
        ax.set_title(f"{column.column[:60]}: PSI {column.psi:.3f}", fontsize=9)
        ax.legend(fontsize=7)
        return png_data_uri(fig)


def render_html(
    report: DriftReport,
    reference: pd.DataFrame,
    current: pd.DataFrame,
    window: str,
    champion_version: str,
    method: Mapping[str, str] | None = None,
) -> str:
    """The drift report as one HTML page: the table of columns, a plot per drifted one, how it was computed."""
    esc = html.escape
    computed = "".join(f"<li>{esc(k)}: {esc(v)}</li>" for k, v in (method or {}).items())
    rows = "".join(
        f'<tr class="{"drift" if c.drifted else ""}"><td>{esc(c.column)}</td><td>{esc(c.role)}</td><td>{esc(c.kind)}</td>'
        f"<td>{c.psi:.4f}</td><td>{esc(c.test)}</td><td>{'' if c.statistic is None else f'{c.statistic:.4g}'}</td>"
        f"<td>{'' if c.p_value is None else f'{c.p_value:.3g}'}</td><td>{'DRIFT' if c.drifted else ''}</td></tr>"
        for c in report.columns
    )
    plots = "".join(
        f'<figure><img alt="{esc(c.column)}" src="{_plot(reference[c.column], current[c.column], c)}"></figure>'
        for c in report.columns
        if c.drifted
    )
    summary = (
        f"Drift in {esc(', '.join(report.drifted_features)) or 'no feature'}"
        f"{' and in the label' if report.label_drifted else ''} against champion version {esc(champion_version)}."
    )
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Drift {esc(report.model)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.25em .5em}}
tr.drift td{{background:#fff0d6}}figure{{display:inline-block;margin:.5em}}</style></head><body>
<h1>Drift report: {esc(report.model)}</h1><p>{summary} Window {esc(window)}. A column drifts when PSI &gt;
{report.psi_threshold} and p &lt; {report.p_value_threshold}.</p>
<table><tr><th>column</th><th>role</th><th>kind</th><th>PSI</th><th>test</th><th>statistic</th><th>p-value</th><th></th></tr>
{rows}</table>{plots}{f"<h2>How it was computed</h2><ul>{computed}</ul>" if computed else ""}</body></html>"""
