"""Reading files that anyone with write access to a folder can place there (specs, suite files), bounded.

A file is read only when it is a regular file that resolves inside its folder, and only up to a byte
limit: a symlink to a system file, a FIFO (which blocks the reader forever) or a device (/dev/zero never
ends) is refused without being opened for reading, so an error never quotes another file's contents.
YAML is parsed by the C safe loader; aliases (`*name`) are refused: nine lines of them expand to a
billion nodes (an "alias bomb").
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

import yaml

from retrain.errors import SpecError

_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SAFE_PARSER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# libyaml and PyYAML both read an alias name as [A-Za-z0-9_-]+ right after the `*`.
_MAYBE_ALIAS = re.compile(r"\*[A-Za-z0-9_-]")
_KINDS = {stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
          stat.S_IFSOCK: "a socket", stat.S_IFDIR: "a directory"}  # fmt: skip


def read_bounded_text(path: str | os.PathLike[str], root: str | os.PathLike[str], limit: int, what: str) -> str:
    """The UTF-8 text of `path`, a regular file that resolves inside `root`, of at most `limit` bytes.

    Raises SpecError naming the file and the rule otherwise; never reads anything it refuses.
    """
    path = Path(path)
    resolved = Path(os.path.realpath(path))
    inside = Path(os.path.realpath(root))
    if not resolved.is_relative_to(inside):
        raise SpecError(f"{path}: {what} resolves outside {inside} (a symlink or '..'): not read")
    try:
        # O_NONBLOCK: opening a FIFO does not wait for a writer; O_NOFOLLOW: no symlink swapped in since.
        fd = os.open(resolved, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | getattr(os, "O_NOCTTY", 0))
    except OSError as error:
        raise SpecError(f"{path}: cannot open {what}: {error.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            kind = _KINDS.get(stat.S_IFMT(info.st_mode), "not a regular file")
            raise SpecError(f"{path}: {what} is {kind}, not a regular file: not read")
        if info.st_size > limit:
            raise SpecError(f"{path}: {what} has {info.st_size} bytes, more than the limit of {limit}: not read")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise SpecError(f"{path}: {what} has more than {limit} bytes: not read")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SpecError(f"{path}: {what} is not UTF-8 text (byte {error.start})") from None


def load_yaml(text: str, source: str) -> Any:
    """The YAML document in `text`, through the C safe loader, refusing aliases.

    The alias check parses a second time only when the text could hold one (`*` then a name character),
    so a normal spec costs one C parse.
    """
    try:
        if _MAYBE_ALIAS.search(text):
            for event in yaml.parse(text, Loader=_SAFE_PARSER):
                if isinstance(event, yaml.AliasEvent):
                    line = event.start_mark.line + 1 if event.start_mark else "?"
                    raise SpecError(
                        f"{source}: YAML alias '*{event.anchor}' at line {line} is not allowed"
                        " (rule: no anchors/aliases in a spec; aliases can expand to billions of nodes)"
                    )
        return yaml.load(text, Loader=_SAFE_LOADER)  # noqa: S506 - CSafeLoader/SafeLoader only
    except yaml.YAMLError as error:
        raise SpecError(f"{source}: not valid YAML: {error}") from None
    except (RecursionError, MemoryError, ValueError, TypeError) as error:
        raise SpecError(f"{source}: YAML cannot be loaded: {type(error).__name__}") from None
