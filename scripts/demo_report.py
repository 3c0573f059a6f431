"""Print the registry state of a model (or, from scripts/demo.py, a run's report files).

Usage: demo_report.py MODEL --registry
Reads the MLflow registry of MLFLOW_TRACKING_URI; it prints, it never changes anything.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping


def _v(version) -> str:
    return "none" if version is None else f"v{version}"


def registry(model: str, out=None) -> None:
    """Prints the aliases and every version's window, score, decision and trigger."""
    from retrain.registry import CHAMPION_ALIAS, PREVIOUS_ALIAS, Registry
    from retrain.tags import Tag

    reg = Registry()
    state = reg.aliases(model)
    print(f"   registry {model}: champion = {_v(state[CHAMPION_ALIAS])}, previous = {_v(state[PREVIOUS_ALIAS])}", file=out)
    for mv in reg.versions(model):
        tags = mv.tags
        score = tags.get(Tag.CHALLENGER_SCORE)
        line = f"     v{mv.version}:"
        if score:
            line += f" window end {tags.get(Tag.WINDOW_END, '?')}, {tags.get(Tag.METRIC, 'metric')} {float(score):.4f}"
        trigger = tags.get(Tag.TRIGGER, "-")
        print(line, f"decision={tags.get(Tag.DECISION, '-')}, trigger={trigger}", file=out, flush=True)


def report_lines(reports: Mapping[str, str]) -> list[str]:
    """One line per HTML report a run wrote, in the pipeline's order."""
    return [f"   report: {path}" for name, path in reports.items() if name.endswith("_html")]


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[2] != "--registry":
        raise SystemExit(__doc__)
    registry(sys.argv[1])
