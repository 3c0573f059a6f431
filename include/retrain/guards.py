"""What an untrusted document may say: rules shared by the spec parser, the suite-file reader and the
validation step. Cheap to import (no pandas, no Great Expectations): spec parsing uses it.

Great Expectations evaluates some expectation arguments as code: a `row_condition` (with
`condition_parser: pandas`, or the structured form, which GX turns into a `DataFrame.query` string
built from column names it does not escape) and a suite parameter (`{"$PARAMETER": "..."}`, an
arithmetic expression GX evaluates). A spec or a suite file is configuration, not code: both are refused.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

# Expectation arguments that make GX evaluate text as an expression.
EVALUATED_ARGUMENTS = frozenset({"row_condition", "condition_parser"})
SUITE_PARAMETER_KEY = "$PARAMETER"
MAX_ARGUMENT_DEPTH = 8


def expectation_argument_problem(kwargs: Mapping[str, Any]) -> str | None:
    """Why these expectation arguments cannot come from a spec or a suite file, or None when they can."""
    evaluated = sorted(EVALUATED_ARGUMENTS & set(kwargs))
    if evaluated:
        return (
            f"argument(s) {evaluated} are not allowed: Great Expectations evaluates a row condition as a pandas"
            " expression (DataFrame.query), which can run code; filter rows upstream or use 'mostly'"
        )
    for path, value in _walk(kwargs, ()):
        if len(path) > MAX_ARGUMENT_DEPTH:
            return f"argument {'.'.join(path[:3])}... is nested more than {MAX_ARGUMENT_DEPTH} levels deep"
        if isinstance(value, Mapping) and any(str(k).startswith(SUITE_PARAMETER_KEY) for k in value):
            return (
                f"argument {'.'.join(path) or '<kwargs>'} is a suite parameter ({SUITE_PARAMETER_KEY}), an expression"
                " Great Expectations evaluates; write the value itself"
            )
    return None


def _walk(value: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, value
    if len(path) > MAX_ARGUMENT_DEPTH:
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _walk(item, (*path, str(key)))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _walk(item, (*path, str(index)))
