"""Drift between the champion's training data (its reference sample) and the new window.

Per feature and for the label: the Population Stability Index and a two-sample test
(Kolmogorov-Smirnov for numeric columns, chi-square for categorical ones).

Decision rule: a column drifts when PSI > drift.psi_threshold AND the test's p-value < drift.p_value.
Each alone misleads: on tens of thousands of rows the tests flag shifts far too small to matter,
and on small samples PSI is noisy. Requiring both keeps "drift" meaning a shift that is large and real.
"""

from __future__ import annotations

import base64
import html
import io
import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

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
    values = reference.dropna().to_numpy(dtype=float)
    if values.size == 0:
        return np.array([-np.inf, np.inf])
    edges = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1]))
    return np.concatenate([[-np.inf], edges, [np.inf]])


def _numeric_counts(values: pd.Series, edges: np.ndarray) -> np.ndarray:
    data = values.to_numpy(dtype=float)
    finite = data[~np.isnan(data)]
    counts = np.histogram(finite, bins=edges)[0] if len(edges) > 2 else np.array([finite.size])
    return np.append(counts, np.isnan(data).sum())  # missing values are a bin of their own


def psi(reference: pd.Series, current: pd.Series, bins: int = 10) -> float:
    edges = numeric_bins(reference, bins)
    return psi_from_proportions(
        _proportions(_numeric_counts(reference, edges)), _proportions(_numeric_counts(current, edges))
    )


def _category_counts(reference: pd.Series, current: pd.Series) -> tuple[list[str], np.ndarray, np.ndarray]:
    ref = reference.astype("object").where(reference.notna(), MISSING).astype(str).value_counts()
    cur = current.astype("object").where(current.notna(), MISSING).astype(str).value_counts()
    categories = sorted(set(ref.index) | set(cur.index))
    return (
        categories,
        ref.reindex(categories, fill_value=0).to_numpy(),
        cur.reindex(categories, fill_value=0).to_numpy(),
    )


def psi_categorical(reference: pd.Series, current: pd.Series) -> float:
    _, ref, cur = _category_counts(reference, current)
    return psi_from_proportions(_proportions(ref), _proportions(cur))


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


def _ks(reference: pd.Series, current: pd.Series) -> tuple[float | None, float | None]:
    from scipy.stats import ks_2samp

    a, b = reference.dropna().to_numpy(dtype=float), current.dropna().to_numpy(dtype=float)
    if a.size == 0 or b.size == 0:
        return None, None
    result = ks_2samp(a, b)
    return float(result.statistic), float(result.pvalue)


def _chi2(reference: pd.Series, current: pd.Series) -> tuple[float | None, float | None]:
    from scipy.stats import chi2_contingency

    _, ref, cur = _category_counts(reference, current)
    table = np.vstack([ref, cur])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0  # one category overall, or an empty side: nothing a test can tell apart
    result = chi2_contingency(table)
    return float(result.statistic), float(result.pvalue)


def column_drift(
    name: str, reference: pd.Series, current: pd.Series, kind: str, role: str, spec: ModelSpec
) -> ColumnDrift:
    if kind == "numeric":
        value, (statistic, p_value), test = psi(reference, current, spec.drift.bins), _ks(reference, current), "ks"
    else:
        value, (statistic, p_value), test = psi_categorical(reference, current), _chi2(reference, current), "chi2"
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


def _plot(reference: pd.Series, current: pd.Series, column: ColumnDrift) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 2.4), dpi=80)
    if column.kind == "numeric":
        edges = numeric_bins(reference, 20)
        finite = edges[np.isfinite(edges)]
        bins = finite if finite.size > 1 else 20
        ax.hist(reference.dropna(), bins=bins, density=True, alpha=0.5, label="reference")
        ax.hist(current.dropna(), bins=bins, density=True, alpha=0.5, label="current")
    else:
        categories, ref, cur = _category_counts(reference, current)
        x = np.arange(len(categories))
        ax.bar(x - 0.2, ref / max(ref.sum(), 1), 0.4, label="reference")
        ax.bar(x + 0.2, cur / max(cur.sum(), 1), 0.4, label="current")
        ax.set_xticks(x, categories, fontsize=7, rotation=30)
    ax.set_title(f"{column.column}: PSI {column.psi:.3f}", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def render_html(
    report: DriftReport, reference: pd.DataFrame, current: pd.DataFrame, window: str, champion_version: str
) -> str:
    esc = html.escape
    rows = "".join(
        f'<tr class="{"drift" if c.drifted else ""}"><td>{esc(c.column)}</td><td>{c.role}</td><td>{c.kind}</td>'
        f"<td>{c.psi:.4f}</td><td>{c.test}</td><td>{'' if c.statistic is None else f'{c.statistic:.4g}'}</td>"
        f"<td>{'' if c.p_value is None else f'{c.p_value:.3g}'}</td><td>{'DRIFT' if c.drifted else ''}</td></tr>"
        for c in report.columns
    )
    plots = "".join(
        f'<figure><img alt="{esc(c.column)}" src="{_plot(reference[c.column], current[c.column], c)}"></figure>'
        for c in report.columns
        if c.drifted
    )
    summary = (
        f"Drift in {', '.join(report.drifted_features) or 'no feature'}"
        f"{' and in the label' if report.label_drifted else ''} against champion version {esc(champion_version)}."
    )
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Drift {esc(report.model)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.25em .5em}}
tr.drift td{{background:#fff0d6}}figure{{display:inline-block;margin:.5em}}</style></head><body>
<h1>Drift report: {esc(report.model)}</h1><p>{summary} Window {esc(window)}. A column drifts when PSI &gt;
{report.psi_threshold} and p &lt; {report.p_value_threshold}.</p>
<table><tr><th>column</th><th>role</th><th>kind</th><th>PSI</th><th>test</th><th>statistic</th><th>p-value</th><th></th></tr>
{rows}</table>{plots}</body></html>"""
