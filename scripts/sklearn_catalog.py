"""Writes include/retrain/sklearn_estimators.jsonl: every scikit-learn classifier and regressor a spec may
name, with the type of each constructor parameter, read from the installed scikit-learn.

Spec parsing checks `model.estimator` and `model.params` against that table without importing
scikit-learn (too heavy for DAG parsing). One JSON object per line, keyed by the estimator's public path
at the start of the line, so a parse reads the one line it needs (retrain.sklearn_catalog). The kinds of
a parameter's alternatives: ["int"|"real"|"real_not_int", low, high, closed], ["enum", options], ["bool"],
["none"], ["str"], ["array"], ["dict"], ["list"], ["tuple"], ["random_state"], ["verbose"], ["cv"],
["inf"], ["callable"], ["object", type]. tests/unit/test_sklearn_catalog.py regenerates the table in
memory and compares: upgrading scikit-learn without rerunning this script fails that test.

    .venv/bin/python scripts/sklearn_catalog.py          # rewrite the table
    .venv/bin/python scripts/sklearn_catalog.py --check  # exit 1 when the table is stale
"""

from __future__ import annotations

import importlib
import inspect
import json
import math
import numbers
import sys
from pathlib import Path

TARGET = Path(__file__).resolve().parents[1] / "include" / "retrain" / "sklearn_estimators.jsonl"
TASKS = {"classifier": "classification", "regressor": "regression"}
OTHER_KINDS = ("cluster", "transformer")

def public_path(cls: type) -> str:
    """The shortest public module path from which scikit-learn exports `cls`."""
    parts = cls.__module__.split(".")
    for end in range(2, len(parts) + 1):
        module = ".".join(parts[:end])
        if any(p.startswith("_") for p in parts[1:end]):
            break
        if getattr(importlib.import_module(module), cls.__name__, None) is cls:
            return f"{module}.{cls.__name__}"
    return f"{cls.__module__}.{cls.__name__}"


def _bound(value) -> float | int | None:
    if value is None or (isinstance(value, float) and math.isinf(value)):
        return None
    return int(value) if float(value).is_integer() and not isinstance(value, float) else float(value)


def alternative(constraint) -> tuple:
    """One scikit-learn parameter constraint as a plain tuple."""
    from sklearn.utils._param_validation import HasMethods, Hidden, Interval, Options, RealNotInt, StrOptions

    if constraint is None:
        return ("none",)
    if isinstance(constraint, Hidden):
        return alternative(constraint.constraint)
    if isinstance(constraint, str):
        named = {"boolean": ("bool",), "random_state": ("random_state",), "verbose": ("verbose",),
                 "array-like": ("array",), "cv_object": ("cv",)}  # fmt: skip
        return named.get(constraint, ("object", constraint))
    if isinstance(constraint, Interval):
        kind = {numbers.Integral: "int", RealNotInt: "real_not_int"}.get(constraint.type, "real")
        return (kind, _bound(constraint.left), _bound(constraint.right), constraint.closed)
    if isinstance(constraint, StrOptions):
        return ("enum", tuple(sorted(constraint.options)))
    if isinstance(constraint, Options):
        if all(isinstance(o, float) and math.isinf(o) and o > 0 for o in constraint.options):
            return ("inf",)
        return ("object", f"Options({sorted(map(repr, constraint.options))})")
    if isinstance(constraint, HasMethods):
        return ("object", f"an object with {'/'.join(constraint.methods)}")
    if constraint is callable:
        return ("callable",)
    plain = {numbers.Integral: ("int", None, None, "neither"), numbers.Real: ("real", None, None, "neither"),
             bool: ("bool",), str: ("str",), dict: ("dict",), list: ("list",), tuple: ("tuple",)}  # fmt: skip
    if constraint in plain:
        return plain[constraint]
    return ("object", getattr(constraint, "__name__", type(constraint).__name__))


def catalogue() -> tuple[dict, dict, dict]:
    """(estimators, needs_objects, other_estimators) from the installed scikit-learn."""
    from sklearn.utils import all_estimators

    estimators: dict[str, tuple] = {}
    needs: dict[str, tuple] = {}
    for type_filter, task in TASKS.items():
        for _, cls in all_estimators(type_filter=type_filter):
            path = public_path(cls)
            required = [
                p.name
                for p in list(inspect.signature(cls.__init__).parameters.values())[1:]
                if p.default is inspect.Parameter.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            ]
            if required:
                needs[path] = tuple(required)
                continue
            tasks, params = estimators.get(path, ((), None))
            params = {
                name: tuple(dict.fromkeys(alternative(c) for c in constraints))
                for name, constraints in sorted(cls._parameter_constraints.items())
            }
            estimators[path] = ((*tasks, task), params)
    others = {}
    for kind in OTHER_KINDS:
        for _, cls in all_estimators(type_filter=kind):
            path = public_path(cls)
            if path not in estimators and path not in needs:
                others.setdefault(path, kind)
    for _, cls in all_estimators():
        path = public_path(cls)
        if path not in estimators and path not in needs:
            others.setdefault(path, "estimator")
    return estimators, needs, others


def render() -> str:
    """The table's text: a first line naming its source, then one line per estimator, sorted."""
    import sklearn

    estimators, needs, others = catalogue()
    rows = [{"estimator": "#source", "generated_by": "scripts/sklearn_catalog.py", "scikit-learn": sklearn.__version__}]
    rows += [{"estimator": path, "tasks": list(tasks), "params": params} for path, (tasks, params) in estimators.items()]
    rows += [{"estimator": path, "needs": list(required)} for path, required in needs.items()]
    rows += [{"estimator": path, "kind": kind} for path, kind in others.items()]
    rows.sort(key=lambda row: row["estimator"])
    return "".join(json.dumps(row, separators=(",", ":")) + "\n" for row in rows)


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if TARGET.read_text() != text:
            print(f"{TARGET} is stale: run python scripts/sklearn_catalog.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
