"""The champion's history: every move of `champion` (and `previous`) as one entry kept in the registry itself.

`Registry.promote` and `Registry.rollback` write an entry before they move an alias (a history entry that
cannot be written means the alias does not move) and confirm it after the aliases read back right. One
registered-model tag per move (`retrain.champion_history.<key>`), the key derived from the move and the run
that makes it: two writers never overwrite each other's entries, and a retried task rewrites its own.

    python -m retrain.history churn                     # the whole history
    python -m retrain.history churn --at 2025-06-15     # which version was champion then

This module holds the entry format and the questions asked of it; it reads the registry only in `main`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import logging
import sys
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

from retrain.tags import Tag

log = logging.getLogger(__name__)

MoveKind = Literal["promotion", "forced_promotion", "rollback"]
PENDING, DONE = "pending", "done"
# A registered-model tag holds at most 5000 characters (MLflow's column): the free text is bounded.
REASON_LIMIT = 1500
BY_LIMIT = 256


@dataclass(frozen=True)
class ChampionMove:
    """One move of the `champion` alias: when, from which version (None: there was no champion) to which,
    why, by whom (the reviewer, the person who rolled back, or the Airflow run) and what kind of move."""

    at: dt.datetime
    from_version: str | None
    to_version: str
    reason: str
    by: str
    kind: str
    run_id: str | None = None


@dataclass(frozen=True)
class HistoryEntry:
    """A move as stored: `pending` is written before the alias moves, `done` once the aliases read back."""

    key: str
    move: ChampionMove
    state: str = DONE


def entry_key(model: str, kind: str, from_version: str | None, to_version: str, run_id: str | None) -> str:
    """The tag suffix of a move: the same for a retry of the same run's move, different for any other move."""
    if run_id is None:  # no run to retry it: a move of its own
        return uuid.uuid4().hex[:20]
    identity = json.dumps([model, kind, from_version, to_version, run_id])
    return hashlib.sha256(identity.encode()).hexdigest()[:20]


def new_move(
    kind: str, from_version: str | None, to_version: str, reason: str, by: str, run_id: str | None
) -> ChampionMove:
    """A move happening now, its free text bounded."""
    return ChampionMove(
        at=dt.datetime.now(dt.UTC),
        from_version=None if from_version is None else str(from_version),
        to_version=str(to_version),
        reason=reason.strip()[:REASON_LIMIT],
        by=by.strip()[:BY_LIMIT],
        kind=kind,
        run_id=run_id,
    )


def encode(entry: HistoryEntry) -> str:
    """The tag value of an entry (JSON)."""
    data = asdict(entry.move)
    data["at"] = entry.move.at.isoformat()
    data["state"] = entry.state
    return json.dumps(data, sort_keys=True)


def decode(key: str, value: str) -> HistoryEntry:
    """The entry a tag holds. Raises ValueError for a value that is not an entry (edited by hand)."""
    try:
        data = json.loads(value)
        at = dt.datetime.fromisoformat(data["at"])
        move = ChampionMove(
            at=at if at.tzinfo else at.replace(tzinfo=dt.UTC),
            from_version=None if data.get("from_version") is None else str(data["from_version"]),
            to_version=str(data["to_version"]),
            reason=str(data.get("reason", "")),
            by=str(data.get("by", "")),
            kind=str(data["kind"]),
            run_id=data.get("run_id"),
        )
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"champion history entry {key!r} is not a valid entry: {error}") from None
    return HistoryEntry(key=key, move=move, state=str(data.get("state", DONE)))


def entries_from_tags(tags: Mapping[str, str]) -> list[HistoryEntry]:
    """Every history entry among a registered model's tags, oldest first; an entry that does not parse is
    left out with a warning (the history stays readable when someone edits a tag by hand)."""
    found = []
    for name, value in tags.items():
        if not name.startswith(Tag.CHAMPION_HISTORY):
            continue
        try:
            found.append(decode(name.removeprefix(Tag.CHAMPION_HISTORY), value))
        except ValueError as error:
            log.warning("%s", error)
    return sorted(found, key=lambda e: (e.move.at, e.key))


def settle(entries: Sequence[HistoryEntry], current_champion: str | None) -> list[ChampionMove]:
    """The moves that happened, oldest first.

    A `done` entry happened. A `pending` one was written before its alias move and never confirmed: the move
    happened if the history goes on from its version (the next move starts from it) or, for the newest
    entry, if `champion` points at its version now; otherwise the alias write failed and it is left out.
    """
    moves = []
    for index, entry in enumerate(entries):
        if entry.state != PENDING:
            moves.append(entry.move)
            continue
        later = entries[index + 1 :]
        happened = (
            later[0].move.from_version == entry.move.to_version if later else current_champion == entry.move.to_version
        )
        if happened:
            moves.append(entry.move)
    return moves


def champion_at(moves: Iterable[ChampionMove], when: dt.datetime) -> ChampionMove | None:
    """The move that made the champion of time `when` champion (None: no champion then). A move at exactly
    `when` counts: its version is champion from that instant on."""
    current = None
    for move in moves:
        if move.at <= when:
            current = move
        else:
            break
    return current


def parse_when(text: str) -> dt.datetime:
    """A date (midnight UTC) or an ISO 8601 time (UTC when it names no zone). Raises ValueError, naming it."""
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--at {text!r} is not an ISO date (2025-06-15) or time (2025-06-15T08:30:00+00:00)") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def describe(move: ChampionMove) -> str:
    """One line: when, from -> to, what kind, by whom, why."""
    source = "none" if move.from_version is None else f"v{move.from_version}"
    line = f"{move.at.isoformat(timespec='seconds')}  {source} -> v{move.to_version}  {move.kind} by {move.by or '?'}"
    return f"{line}: {move.reason}" if move.reason else line


def report(model: str, moves: Sequence[ChampionMove], when: dt.datetime | None = None) -> str:
    """What the command prints: the champion at `when`, or the whole history."""
    if when is not None:
        move = champion_at(moves, when)
        stamp = when.isoformat(timespec="seconds")
        if move is None:
            return f"{model}: no champion at {stamp}"
        return f"{model}: version {move.to_version} was champion at {stamp} (since {describe(move)})"
    if not moves:
        return f"{model}: no champion history"
    return "\n".join([f"{model}: {len(moves)} champion moves", *(describe(m) for m in moves)])


def main(argv: list[str] | None = None) -> int:
    """`python -m retrain.history MODEL [--at WHEN]` against MLFLOW_TRACKING_URI."""
    parser = argparse.ArgumentParser(prog="python -m retrain.history", description="Which version was champion when.")
    parser.add_argument("model", help="registered model name (the spec's name)")
    parser.add_argument("--at", help="a date (midnight UTC) or an ISO time; without it, the whole history")
    args = parser.parse_args(argv)
    try:
        when = None if args.at is None else parse_when(args.at)
    except ValueError as error:
        parser.error(str(error))
    from retrain.registry import Registry

    print(report(args.model, Registry().champion_history(args.model), when))
    return 0


if __name__ == "__main__":
    sys.exit(main())
