"""Which estimator parameters a spec (`model.params`) or the trigger form (`estimator_params`) may set.

Checked three times with the same rules: when the spec is parsed, when a run starts (its first task, for
the form's values) and in the training job before it fits (defence in depth). Cheap: no scikit-learn import
for scikit-learn estimators (the static table in retrain.sklearn_catalog); an estimator admitted by
RETRAIN_ALLOWED_ESTIMATOR_PREFIXES is not in that table, so for it only the rules below apply here and
its signature is checked when the run starts (`signature_problems`, which imports it).

The rules: a known parameter of the right type (scikit-learn's own constraints); size-like parameters
within SIZE_BOUNDS (a form value `max_iter: 1000000000000` is refused, not left to a timeout); no
parameter that names a file or folder (`memory: /some/path` made joblib write a cache there) unless the
deployment allows it in RETRAIN_ALLOWED_ESTIMATOR_PARAMS; plain values of a bounded size only.
"""

from __future__ import annotations

import importlib
import inspect
import json
import math
import os
import re
from collections.abc import Mapping
from typing import Any

from retrain.errors import SpecError
from retrain.sklearn_catalog import describe, estimator_entry, estimator_problem, value_matches

# Upper bounds of parameters whose value sets how much work or memory a fit takes. Above these a fit runs
# for days or exhausts the worker; a model that needs more is a deliberate change to this table.
SIZE_BOUNDS: dict[str, int] = {
    "n_estimators": 10_000,
    "max_iter": 100_000,
    "max_depth": 1_000,
    "max_leaf_nodes": 1_000_000,
    "n_neighbors": 10_000,
    "hidden_layer_sizes": 10_000,  # each layer
    "batch_size": 1_000_000,
    "max_fun": 1_000_000,
    "n_iter_no_change": 10_000,
    "max_trials": 1_000_000,
    "max_skips": 1_000_000,
    "n_restarts_optimizer": 100,
    "max_iter_predict": 10_000,
    "n_alphas": 10_000,
    "Cs": 1_000,
    "cv": 100,
    "n_components": 10_000,
    "n_jobs": 64,  # absolute value: -1 means every CPU
    "verbose": 10,
}
MAX_LIST_ITEMS = 10_000
MAX_PARAMS_JSON_BYTES = 64 * 1024
MAX_PARAMS = 64
# Parameters that name a place on disk (joblib's `memory`, and any *path/*dir/*file/*folder/cache* name).
PATH_LIKE_NAME = re.compile(r"^memory$|path|dir|file|folder|cache", re.IGNORECASE)
# Values that look like a path or a URI, refused for estimators outside the scikit-learn table.
PATH_LIKE_VALUE = re.compile(r"^(/|~|\.\.?(/|\\)|[A-Za-z]:\\)|://|^file:")


def allowed_path_params() -> frozenset[str]:
    """`param` or `estimator.param` entries of RETRAIN_ALLOWED_ESTIMATOR_PARAMS (comma-separated)."""
    raw = os.environ.get("RETRAIN_ALLOWED_ESTIMATOR_PARAMS", "")
    return frozenset(item.strip() for item in raw.split(",") if item.strip())


def param_problems(estimator: str, params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(parameter, reason) for each parameter that may not be set as given; empty when all may."""
    problems: list[tuple[str, str]] = []
    try:
        size = len(json.dumps(params, allow_nan=True))
    except (TypeError, ValueError) as error:
        return [("<params>", f"must be plain JSON values: {error}")]
    if size > MAX_PARAMS_JSON_BYTES or len(params) > MAX_PARAMS:
        return [("<params>", f"at most {MAX_PARAMS} parameters and {MAX_PARAMS_JSON_BYTES} bytes of JSON, got"
                             f" {len(params)} and {size}")]  # fmt: skip
    entry = estimator_entry(estimator) if estimator.startswith("sklearn.") else None
    known = (entry or {}).get("params")
    allowed_paths = allowed_path_params()
    for name, value in params.items():
        problem = _bound_problem(name, value) or _plain_problem(value)
        allowed = bool({name, f"{estimator}.{name}"} & allowed_paths)
        path_like = PATH_LIKE_NAME.search(name) and isinstance(value, str)  # (`cache_size: 200` is a number)
        if problem is None and path_like and not allowed:
            problem = (
                "names a place on disk; not settable from a spec or the form unless the deployment lists it in"
                " RETRAIN_ALLOWED_ESTIMATOR_PARAMS"
            )
        if problem is None and known is not None:
            if name not in known:
                problem = f"not a parameter of {estimator}; it takes: {', '.join(sorted(known))}"
            elif not any(value_matches(value, alternative) for alternative in known[name]):
                problem = f"must be {describe(known[name])}; got {_shown(value)}"
        if problem is None and known is None and not allowed and _looks_like_path(value):
            problem = "looks like a path or a URI; not settable for an estimator outside the scikit-learn table"
        if problem:
            problems.append((name, problem))
    return problems


def _bound_problem(name: str, value: Any) -> str | None:
    bound = SIZE_BOUNDS.get(name)
    if bound is None:
        return None
    values = value if isinstance(value, list) else [value]
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    too_big = [v for v in numbers if not math.isfinite(v) or abs(v) > bound]
    if too_big or (isinstance(value, list) and len(value) > 20):
        return (
            f"is size-like: at most {bound}{' per item, 20 items' if isinstance(value, list) else ''}"
            f" (SIZE_BOUNDS in retrain/estimator_params.py); got {_shown(value)}"
        )
    return None


def _plain_problem(value: Any, depth: int = 0) -> str | None:
    if depth > 4:
        return "is nested more than 4 levels deep"
    if isinstance(value, str) and len(value) > 1000:
        return f"is a string of {len(value)} characters; at most 1000"
    if isinstance(value, (list, dict)):
        if len(value) > MAX_LIST_ITEMS:
            return f"has {len(value)} items; at most {MAX_LIST_ITEMS}"
        items = value.values() if isinstance(value, dict) else value
        return next((p for item in items if (p := _plain_problem(item, depth + 1))), None)
    return None


def _looks_like_path(value: Any) -> bool:
    if isinstance(value, str):
        return bool(PATH_LIKE_VALUE.search(value))
    if isinstance(value, (list, tuple)):
        return any(_looks_like_path(v) for v in value)
    if isinstance(value, dict):
        return any(_looks_like_path(v) for v in value.values())
    return False


def _shown(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def signature_problems(estimator_class: type, params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(parameter, reason) for each name the class's constructor does not take (for estimators outside the
    scikit-learn table, whose types are unknown until imported)."""
    accepted = set(inspect.signature(estimator_class.__init__).parameters) - {"self"}
    where = f"{estimator_class.__module__}.{estimator_class.__qualname__}"
    reason = f"not a parameter of {where}; it takes: {', '.join(sorted(accepted))}"
    return [(name, reason) for name in params if name not in accepted]


def format_problems(prefix: str, problems: list[tuple[str, str]]) -> str:
    """`prefix.param: reason; ...` for an error message."""
    return "; ".join(f"{prefix}.{name}: {reason}" for name, reason in problems)


def import_estimator(dotted: str, task: str | None = None) -> type:
    """The estimator class a spec names, imported only when the spec's rules admit it: a scikit-learn
    estimator of the table (of `task` when given), or a class under RETRAIN_ALLOWED_ESTIMATOR_PREFIXES."""
    from retrain.spec import allowed_estimator_prefixes

    if not dotted.startswith(allowed_estimator_prefixes()):
        raise SpecError(f"field 'model.estimator': {dotted!r} is not under an allowed prefix; not imported")
    if dotted.startswith("sklearn."):
        problem = estimator_problem(dotted, task) if task else (None if estimator_entry(dotted) else "not in the table")
        if problem:
            raise SpecError(f"field 'model.estimator': {problem}; not imported")
    module_name, _, class_name = dotted.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as error:
        raise SpecError(f"field 'model.estimator': cannot import {dotted!r}: {error}") from None
    if not (inspect.isclass(cls) and hasattr(cls, "fit")):
        raise SpecError(f"field 'model.estimator': {dotted!r} is not an estimator class")
    return cls
