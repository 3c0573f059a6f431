"""Markdown built from untrusted values: every value escaped, so a spec or a data value shows as the text it is.

Airflow's required-actions page, a DAG's docs and MLflow's version description render Markdown (GitHub
flavour). A model description like `[click](https://evil.example)` or `<img src=x onerror=...>`, a category
named `**x**`, an error message with a fence in it or a comment with a `|` must not become a link, an image,
markup, a way out of its code block or a broken table.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

# CommonMark lets a backslash escape any ASCII punctuation character, and then shows it as itself.
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")
# One line: a newline would end a table row or start a block (a heading, a list, a fence).
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")
# Multi-line text (error messages in a DAG's docs) keeps its newlines and tabs, loses the other controls.
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# GitHub-flavoured renderers turn bare `https://...`, `www.x.y` and `a@b.c` into links after escapes are
# resolved (seen in Airflow's UI): an invisible zero-width space inside each pattern keeps them text.
_AUTOLINK = re.compile(r"(?i)(?<=http)(?=s?://)|(?<=\bwww)(?=\.)|(?=@)")
ZERO_WIDTH_SPACE = "\u200b"


def escape(value: Any, limit: int = 2000) -> str:
    """`value` as Markdown text showing exactly its characters (on one line, at most `limit` characters)."""
    text = "" if value is None else str(value)
    text = _CONTROL.sub(" ", text).strip()
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return _PUNCTUATION.sub(r"\\\1", _AUTOLINK.sub(ZERO_WIDTH_SPACE, text))


def code(value: Any, limit: int = 200) -> str:
    """`value` as an inline code span. Backslash escapes do not work inside one, so a backtick (the only
    character that could end it) becomes a quote instead; on one line, at most `limit` characters."""
    text = _CONTROL.sub(" ", "" if value is None else str(value)).strip()[:limit]
    return "`" + text.replace("`", "'") + "`"


def number(value: Any, digits: int = 4) -> str:
    """A metric for a table: fixed digits, or a dash when missing or not finite (never text from the data)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return "—"
    return f"{value:.{digits}f}"


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A GFM table; cells must already be escaped (or be numbers from `number`)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def text(value: str) -> str:
    """`value` as literal Markdown text: each ASCII punctuation character backslash-escaped (CommonMark
    renders an escaped character as itself), so no emphasis, link, image, HTML or heading can form."""
    return _PUNCTUATION.sub(r"\\\1", _UNPRINTABLE.sub("", value))


def code_block(value: str) -> str:
    """`value` in a fenced code block whose fence is longer than any backtick run inside it: a fence
    closes only on a run at least as long, so the text cannot end the block early."""
    value = _UNPRINTABLE.sub("", value)
    longest = max((len(run) for run in re.findall(r"`+", value)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{value}\n{fence}"


def code_span(value: str) -> str:
    """`value` as inline code, delimited by a backtick run longer than any inside it."""
    value = _UNPRINTABLE.sub("", value).replace("\n", " ")
    longest = max((len(run) for run in re.findall(r"`+", value)), default=0)
    fence = "`" * (longest + 1)
    return f"{fence} {value} {fence}"
