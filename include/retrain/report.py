"""The short human report of one run: the decision, the metric table and the metric history."""

from __future__ import annotations

import html
import json
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrain.tags import Tag

if TYPE_CHECKING:
    from retrain.registry import ModelVersion

from retrain.plots import png_data_uri, text_figure


def write_atomic(path: Path, text: str) -> Path:
    """Write to a temporary name in the same folder, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def metric_history(versions: Iterable[ModelVersion]) -> list[dict[str, Any]]:
    """Every evaluated version's score and the champion's score on the same holdout, for the history plot.
    A score tag that is not a number (edited by hand in MLflow) leaves that version out, not the page."""
    history = []
    for mv in versions:
        tags = mv.tags
        challenger = _number(tags.get(Tag.CHALLENGER_SCORE))
        if challenger is None:
            continue
        history.append(
            {
                "version": mv.version,
                "window_end": tags.get(Tag.WINDOW_END, "?"),
                "challenger": challenger,
                "champion": _number(tags.get(Tag.CHAMPION_SCORE)),
                "decision": tags.get(Tag.DECISION),
            }
        )
    return history


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text else None
    except ValueError:
        return None
    return value if value is None or math.isfinite(value) else None


def history_plot(history: list[dict], metric: str) -> str | None:
    """A PNG (data URI) of the primary metric of every challenger and the champion it faced, per window end."""
    points = [h for h in history if h.get("challenger") is not None]
    if not points:
        return None
    points.sort(key=lambda h: (h["window_end"], int(h["version"])))
    labels = [f"{h['window_end']}\nv{h['version']}" for h in points]
    with text_figure((7, 3), 90) as (fig, ax):
        ax.plot(labels, [h["challenger"] for h in points], marker="o", label="challenger")
        champions = [
            (label, h["champion"]) for label, h in zip(labels, points, strict=True) if h.get("champion") is not None
        ]
        if champions:
            ax.plot(
                [c[0] for c in champions],
                [c[1] for c in champions],
                marker="s",
                linestyle="--",
                label="champion (same holdout)",
            )
        promoted = [
            (label, h["challenger"]) for label, h in zip(labels, points, strict=True) if h.get("decision") == "promoted"
        ]
        if promoted:
            ax.scatter(
                [p[0] for p in promoted],
                [p[1] for p in promoted],
                s=120,
                facecolors="none",
                edgecolors="green",
                label="promoted",
            )
        ax.set_ylabel(metric)
        ax.legend(fontsize=7)
        ax.tick_params(axis="x", labelsize=7)
        return png_data_uri(fig)


def render_run_report(summary: dict, history: list[dict]) -> str:
    esc = html.escape
    decision = summary["decision"]
    verdict = "PROMOTE" if decision["promote"] else "DECLINE"
    rows = "".join(
        f"<tr><td>{esc(str(name))}</td><td>{esc(_fmt(values.get('challenger')))}</td>"
        f"<td>{esc(_fmt(values.get('champion')))}</td></tr>"
        for name, values in summary["metric_table"].items()
    )
    reasons = "".join(f"<li>{esc(r)}</li>" for r in decision["reasons"])
    plot = history_plot(history, summary["metric"])
    image = f'<img alt="metric history" src="{plot}">' if plot else "<p>No history yet.</p>"
    links = "".join(
        f"<li>{esc(k)}: <code>{esc(str(v))}</code></li>" for k, v in summary.get("reports", {}).items() if v
    )
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{esc(summary["model"])} run report</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.3em .6em}}.promote{{color:#1a7f37}}.decline{{color:#b35900}}</style></head><body>
<h1>{esc(summary["model"])}: <span class="{verdict.lower()}">{verdict}</span>{" (forced)" if decision.get("forced") else ""}</h1>
<p>Challenger version {esc(str(summary["challenger_version"]))} vs champion version
{esc(str(summary.get("champion_version") or "none"))} on the holdout of window {esc(summary["window"])};
DAG run <code>{esc(summary["run_id"])}</code>, started by {esc(summary.get("trigger") or "?")}{" &middot; dry run" if summary.get("dry_run") else ""}.</p>
{f'<p class="note"><strong>{esc(summary["note"])}</strong></p>' if summary.get("note") else ""}
{_classes(summary.get("comparison") or {})}
<h2>Reasons</h2><ul>{reasons}</ul>
<h2>Metrics (same holdout)</h2><table><tr><th>metric</th><th>challenger</th><th>champion</th></tr>{rows}</table>
<h2>History of {esc(summary["metric"])}</h2>{image}
<h2>Reports</h2><ul>{links}</ul>
<details><summary>Full evaluation (JSON)</summary><pre>{esc(json.dumps(summary, indent=2, default=str))}</pre></details>
</body></html>"""


def _classes(comparison: dict) -> str:
    """The classes and the positive class, as text: labels come from the data."""
    if "classes" not in comparison:
        return ""
    esc = html.escape
    listed = ", ".join(esc(json.dumps(c)) for c in comparison["classes"])
    more = f" (of {comparison['class_count']})" if comparison["class_count"] > len(comparison["classes"]) else ""
    positive = comparison.get("positive_label")
    chosen = (
        f" &middot; positive class <code>{esc(json.dumps(positive))}</code> ({esc(comparison['positive_label_rule'])})"
        if positive is not None
        else ""
    )
    return f"<p>Classes <code>{listed}</code>{more}{chosen}.</p>"


def _fmt(value) -> str:
    return "—" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)
