"""Untrusted text (spec values, error messages, file names) placed in Markdown that Airflow renders as a
DAG's docs: shown as the text it is, never as links, images, HTML or a way out of its code block."""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation character CommonMark can escape


def text(value: str) -> str:
    """`value` as literal Markdown text: each ASCII punctuation character backslash-escaped (CommonMark
    renders an escaped character as itself), so no emphasis, link, image, HTML or heading can form."""
    return _PUNCTUATION.sub(r"\\\1", _CONTROL.sub("", value))


def code_block(value: str) -> str:
    """`value` in a fenced code block whose fence is longer than any backtick run inside it: a fence
    closes only on a run at least as long, so the text cannot end the block early."""
    value = _CONTROL.sub("", value)
    longest = max((len(run) for run in re.findall(r"`+", value)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{value}\n{fence}"


def code_span(value: str) -> str:
    """`value` as inline code, delimited by a backtick run longer than any inside it."""
    value = _CONTROL.sub("", value).replace("\n", " ")
    longest = max((len(run) for run in re.findall(r"`+", value)), default=0)
    fence = "`" * (longest + 1)
    return f"{fence} {value} {fence}"
