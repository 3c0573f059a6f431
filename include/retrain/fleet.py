"""The fleet view: every model spec at a glance, built from plain values.

Three sources, each read once per page: the spec files (parsed, or the error that stops them), the
registry (one search of every model: aliases, model tags, newest version) and Airflow's facts about
each DAG (last run, its step outputs, next run, tags, pending approvals). Nothing here imports Airflow
or MLflow: the plugin gathers the facts, this module decides what a row says (tests/unit/test_fleet.py).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from retrain.contracts import DriftResult, EvaluationResult, ValidationResult
from retrain.errors import SpecError
from retrain.pipeline import producer
from retrain.registry import CHAMPION_ALIAS, PREVIOUS_ALIAS, ModelVersion, RegisteredModelSummary, is_plain_file_name
from retrain.report import metric_history
from retrain.spec import ModelSpec, dag_id_of_file, load_spec, spec_files, specs_dir
from retrain.tags import Decision, Tag

# The run's report folder in the training run's artifacts (evaluate uploads every report there).
REPORTS_FOLDER = "reports"
# Where a version's model card lives in its run's artifacts (issue 17 writes it).
MODEL_CARD_FOLDER = "model_card"
FINISHED = {"success", "failed"}


# Inputs: plain values the plugin gathers.


@dataclass(frozen=True)
class SpecEntry:
    """One spec file: its model name (the file stem when it does not parse), its DAG id and the spec or the error."""

    file: str
    name: str
    dag_id: str
    spec: ModelSpec | None = None
    error: str | None = None


@dataclass(frozen=True)
class DagFacts:
    """What Airflow knows about a DAG: paused or not, its tags, its team, the next scheduled run."""

    dag_id: str
    is_paused: bool = True
    tags: tuple[str, ...] = ()
    next_run: dt.datetime | None = None
    team: str | None = None


@dataclass(frozen=True)
class RunFacts:
    """A DAG run: its state, when and how it was triggered, its failed tasks and its steps' XCom outputs."""

    dag_id: str
    run_id: str
    state: str
    run_after: dt.datetime
    run_type: str = "manual"
    triggered_by: str | None = None
    user: str | None = None
    failed_tasks: tuple[str, ...] = ()
    outputs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class PendingApproval:
    """A human-in-the-loop request of the DAG nobody has answered yet (issue 17's approval gate)."""

    dag_id: str
    run_id: str
    task_id: str
    subject: str
    since: dt.datetime
    map_index: int = -1


@dataclass(frozen=True)
class AirflowFacts:
    """Everything the page needs from Airflow, keyed by DAG id; a DAG Airflow has not parsed is absent."""

    dags: Mapping[str, DagFacts] = field(default_factory=dict)
    last_runs: Mapping[str, RunFacts] = field(default_factory=dict)
    approvals: Mapping[str, tuple[PendingApproval, ...]] = field(default_factory=dict)


# Outputs: what a row says.


@dataclass(frozen=True)
class LastRun:
    """The newest run of the model's DAG and what became of it, in one line."""

    run_id: str
    state: str
    when: dt.datetime
    trigger: str
    failed_tasks: tuple[str, ...] = ()
    outcome: str = ""


@dataclass(frozen=True)
class Champion:
    """The version behind `champion`, since when it holds the alias (None: unknown) and its data window's end."""

    version: str
    since: dt.datetime | None
    window_end: str | None


@dataclass(frozen=True)
class VersionDecision:
    """The newest evaluated version's decision and its reasons; `from_last_run` says the last run made it."""

    version: str
    decision: str
    reasons: tuple[str, ...] = ()
    window_end: str | None = None
    run_id: str | None = None
    from_last_run: bool = False


@dataclass(frozen=True)
class DriftStatus:
    """Drift in the last run: "drift", "none", "not_compared" (no champion yet) or "unknown" (no drift output)."""

    status: str = "unknown"
    features: tuple[str, ...] = ()
    label: bool = False
    max_psi: float | None = None


@dataclass(frozen=True)
class ModelRow:
    """One row of the Models page (and one item of /retrain/api/models), built by `build_row`.
    Empty values mean unknown: no DAG parsed yet, no run yet, the registry unreachable."""

    name: str
    dag_id: str
    file: str
    error: str | None = None
    tags: tuple[str, ...] = ()
    in_airflow: bool = False
    paused: bool | None = None
    next_run: dt.datetime | None = None
    champion: Champion | None = None
    previous: str | None = None
    last_run: LastRun | None = None
    decision: VersionDecision | None = None
    drift: DriftStatus = DriftStatus()
    approval: PendingApproval | None = None
    live_metric: tuple[float, ...] = ()  # issue 16's monitoring series; empty until it exists


@dataclass(frozen=True)
class VersionRow:
    """One registered version on the Model page: its decision, scores, window and report files."""

    version: str
    created_at: dt.datetime | None
    status: str
    run_id: str | None
    aliases: tuple[str, ...] = ()
    window_end: str | None = None
    decision: str | None = None
    reasons: tuple[str, ...] = ()
    metric: str | None = None
    challenger_score: str | None = None
    champion_score: str | None = None
    promoted_at: str | None = None
    reports: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChampionChange:
    """One move of `champion` (issue 17's `Registry.champion_history`): when, from/to which version, why, by whom."""

    at: str
    from_version: str | None
    to_version: str | None
    reason: str = ""
    by: str = ""
    kind: str = ""


@dataclass(frozen=True)
class ModelDetail:
    """The Model page: the row, every version newest first, the metric history, the champion's history and
    the champion's model card files."""

    row: ModelRow
    versions: tuple[VersionRow, ...] = ()
    history: tuple[Mapping[str, Any], ...] = ()
    metric: str | None = None
    champion_history: tuple[ChampionChange, ...] = ()
    model_card: tuple[str, ...] = ()


# Specs


class SpecCatalog:
    """The specs folder, each file parsed again only when its size or modification time changed."""

    def __init__(self, directory: Path | None = None) -> None:
        self._directory = directory
        self._parsed: dict[Path, tuple[tuple[int, int], SpecEntry]] = {}
        self._lock = threading.Lock()  # the API server answers requests on several threads

    @property
    def directory(self) -> Path:
        return self._directory or specs_dir()

    def entries(self) -> list[SpecEntry]:
        """Every spec file of the folder, in file name order."""
        with self._lock:
            return self._entries()

    def _entries(self) -> list[SpecEntry]:
        paths = spec_files(self.directory)
        entries = []
        for path in paths:
            try:
                stat = path.stat()
            except OSError:
                continue  # removed while listing
            stamp = (stat.st_mtime_ns, stat.st_size)
            cached = self._parsed.get(path)
            if cached is None or cached[0] != stamp:
                cached = (stamp, read_spec_entry(path))
                self._parsed[path] = cached
            entries.append(cached[1])
        for gone in set(self._parsed) - set(paths):
            del self._parsed[gone]
        return entries


def read_spec_entry(path: str | os.PathLike[str]) -> SpecEntry:
    """The spec of a file, or its error: a broken spec is a row with its error, not a missing row."""
    path = Path(path)
    try:
        spec = load_spec(path)
    except SpecError as error:
        return SpecEntry(path.name, path.stem, dag_id_of_file(path), error=str(error))
    return SpecEntry(path.name, spec.name, spec.dag_id, spec=spec)


# The Models page


def build_rows(
    entries: Iterable[SpecEntry],
    airflow: AirflowFacts,
    models: Mapping[str, RegisteredModelSummary] | None,
    live_metrics: Mapping[str, Sequence[float]] | None = None,
) -> list[ModelRow]:
    """One row per spec entry. `models` is None when the registry could not be read: the rows then hold
    what the specs and Airflow know, and nothing from the registry."""
    return [
        build_row(
            entry,
            airflow,
            None if models is None else models.get(entry.name),
            tuple((live_metrics or {}).get(entry.name, ())),
        )
        for entry in entries
    ]


def build_row(
    entry: SpecEntry,
    airflow: AirflowFacts,
    summary: RegisteredModelSummary | None,
    live_metric: tuple[float, ...] = (),
) -> ModelRow:
    """The row of one spec: its DAG's facts, its last run, and its champion and newest decision."""
    dag = airflow.dags.get(entry.dag_id)
    run = airflow.last_runs.get(entry.dag_id)
    spec_tags = entry.spec.schedule.tags if entry.spec else ()
    approvals = airflow.approvals.get(entry.dag_id) or ()
    return ModelRow(
        name=entry.name,
        dag_id=entry.dag_id,
        file=entry.file,
        error=entry.error,
        tags=tuple(sorted({*(dag.tags if dag else ()), *spec_tags})),
        in_airflow=dag is not None,
        paused=None if dag is None else dag.is_paused,
        next_run=None if dag is None or dag.is_paused else dag.next_run,
        champion=champion_of(summary),
        previous=None if summary is None else summary.aliases.get(PREVIOUS_ALIAS),
        last_run=None if run is None else last_run_of(run),
        decision=decision_of(summary, run),
        drift=drift_of(run),
        approval=min(approvals, key=lambda a: a.since) if approvals else None,
        live_metric=live_metric if len(live_metric) >= 2 else (),
    )


def champion_of(summary: RegisteredModelSummary | None) -> Champion | None:
    """The champion version and since when it holds the alias: from the model's `champion_since` tag when it
    names that version, else from the version's own tags when it is the newest version, else unknown."""
    if summary is None or CHAMPION_ALIAS not in summary.aliases:
        return None
    version = summary.aliases[CHAMPION_ALIAS]
    since = None
    marked_version, _, stamp = summary.tags.get(Tag.CHAMPION_SINCE, "").partition("@")
    if marked_version == version:
        since = parse_time(stamp)
    latest = summary.latest if summary.latest and summary.latest.version == version else None
    if since is None and latest is not None:
        since = parse_time(latest.tags.get(Tag.ROLLED_BACK_TO_AT) or latest.tags.get(Tag.PROMOTED_AT))
    return Champion(version, since, None if latest is None else latest.tags.get(Tag.WINDOW_END))


def last_run_of(run: RunFacts) -> LastRun:
    """The last run in words: state, trigger, and what it ended with (a failed gate, a quiet night, a verdict)."""
    return LastRun(
        run_id=run.run_id,
        state=run.state,
        when=run.run_after,
        trigger=describe_trigger(run),
        failed_tasks=run.failed_tasks,
        outcome=outcome_of(run),
    )


def describe_trigger(run: RunFacts) -> str:
    """How the run started: "scheduled", "manual by ana", "asset_triggered", "backfill"."""
    kind = run.run_type.replace("_", " ")
    return f"{kind} by {run.user}" if run.user and run.run_type == "manual" else kind


def outcome_of(run: RunFacts) -> str:
    """One sentence on how the run ended, from its steps' outputs and its failed tasks."""
    validation = _output(run, ValidationResult)
    evaluation = _output(run, EvaluationResult)
    if run.state not in FINISHED:
        return ""  # queued or running: the state says it all
    if validation is not None and not validation.success:
        if validation.error:
            return f"stopped by validation: {validation.error}"
        count = validation.statistics.get("failed", len(validation.failed))
        named = sorted({f"{f.get('type', '?')}({f.get('column') or ''})" for f in validation.failed})
        return f"stopped by validation: {count} failed expectation(s): {', '.join(named)}"
    if run.failed_tasks:
        return f"failed at {', '.join(run.failed_tasks)}"
    if evaluation is not None:
        if evaluation.already_champion:
            return f"version {evaluation.version} already champion"
        if evaluation.dry_run:
            return f"dry run: version {evaluation.version} {'would be promoted' if evaluation.promote else 'declined'}"
        return f"version {evaluation.version} {'promoted' if evaluation.promote else 'declined'}"
    drift = _output(run, DriftResult)
    if drift is not None and drift.compared and not drift.any_drift:
        return "no drift: nothing retrained"
    return "finished without a decision"


def decision_of(summary: RegisteredModelSummary | None, run: RunFacts | None) -> VersionDecision | None:
    """The newest version's decision and reasons (from its tags: they hold the final word, e.g. `promoted`);
    the last run's evaluation output when the registry has no newer word on it."""
    evaluation = None if run is None else _output(run, EvaluationResult)
    latest = None if summary is None else summary.latest
    if latest is not None and Tag.DECISION in latest.tags:
        tags = latest.tags
        made_by = tags.get(Tag.EVALUATED_BY_RUN) or tags.get(Tag.RUN_ID)
        return VersionDecision(
            version=latest.version,
            decision=tags[Tag.DECISION],
            reasons=split_reasons(tags.get(Tag.REASONS, "")),
            window_end=tags.get(Tag.WINDOW_END),
            run_id=made_by,
            from_last_run=run is not None and made_by == run.run_id,
        )
    if evaluation is not None and run is not None:
        if evaluation.already_champion:
            decision = Decision.CHAMPION
        elif not evaluation.promote:
            decision = Decision.DECLINED
        else:
            decision = Decision.DRY_RUN if evaluation.dry_run else Decision.APPROVED
        return VersionDecision(
            evaluation.version, decision, evaluation.reasons, evaluation.window_end, run.run_id, from_last_run=True
        )
    return None


def drift_of(run: RunFacts | None) -> DriftStatus:
    """Drift as the last run's drift step saw it."""
    drift = None if run is None else _output(run, DriftResult)
    if drift is None:
        return DriftStatus()
    if not drift.compared:
        return DriftStatus("not_compared")
    return DriftStatus(
        "drift" if drift.any_drift else "none", tuple(drift.drifted_features), bool(drift.label_drifted), drift.max_psi
    )


def _output(run: RunFacts, kind: type) -> Any:
    """The typed output of the step that produces `kind` in this run, or None (absent or unreadable)."""
    value = run.outputs.get(producer(kind).task_id)
    if not isinstance(value, Mapping):
        return None
    try:
        return kind.from_xcom(value)
    except (TypeError, ValueError):
        return None


def output_task_ids() -> tuple[str, ...]:
    """The tasks whose XCom outputs the page reads (validation, drift, evaluation)."""
    return tuple(producer(kind).task_id for kind in (ValidationResult, DriftResult, EvaluationResult))


def split_reasons(text: str) -> tuple[str, ...]:
    """The reasons tag (rules separated by vertical bars) as a list."""
    return tuple(part.strip() for part in text.split(" | ") if part.strip())


def parse_time(text: str | None) -> dt.datetime | None:
    """An ISO 8601 time (UTC when it says no zone), or None when absent or not a time."""
    if not text:
        return None
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


# Sorting and filtering


def _age_key(row: ModelRow) -> Any:
    return None if row.champion is None or row.champion.since is None else row.champion.since


SORT_KEYS: dict[str, Callable[[ModelRow], Any]] = {
    "name": lambda row: row.name,
    "champion": lambda row: None if row.champion is None else int(row.champion.version),
    "age": _age_key,
    "last_run": lambda row: None if row.last_run is None else row.last_run.when,
    "state": lambda row: None if row.last_run is None else row.last_run.state,
    "decision": lambda row: None if row.decision is None else row.decision.decision,
    "drift": lambda row: row.drift.status,
    "next_run": lambda row: row.next_run,
}


def sort_rows(rows: Iterable[ModelRow], key: str = "name", descending: bool = False) -> list[ModelRow]:
    """Rows ordered by a column of SORT_KEYS (unknown: by name); rows without a value go last either way.
    Broken specs sort with the others; ties keep name order."""
    get = SORT_KEYS.get(key, SORT_KEYS["name"])
    by_name = sorted(rows, key=lambda row: row.name)
    present = [row for row in by_name if get(row) is not None]
    missing = [row for row in by_name if get(row) is None]
    return sorted(present, key=get, reverse=descending) + missing


def filter_rows(rows: Iterable[ModelRow], tag: str | None) -> list[ModelRow]:
    """Rows whose DAG or spec carries `tag` (all rows when no tag is asked for)."""
    return [row for row in rows if not tag or tag in row.tags]


def all_tags(rows: Iterable[ModelRow]) -> list[str]:
    """Every tag of the rows, for the filter."""
    return sorted({tag for row in rows for tag in row.tags})


# The Model page


def build_detail(
    row: ModelRow,
    versions: Iterable[ModelVersion] = (),
    aliases: Mapping[str, str] | None = None,
    champion_history: Iterable[Any] = (),
    model_card: Iterable[str] = (),
) -> ModelDetail:
    """The Model page from the row, the model's versions (any order), its aliases, the champion's history
    (entries with at/from_version/to_version/reason/by/kind, as mappings or objects) and the champion's
    model card file names."""
    aliases = aliases or {}
    by_version: dict[str, list[str]] = {}
    for alias, version in aliases.items():
        by_version.setdefault(str(version), []).append(alias)
    ordered = sorted(versions, key=lambda mv: mv.number)
    rows = tuple(version_row(mv, tuple(sorted(by_version.get(mv.version, [])))) for mv in reversed(ordered))
    metric = next((mv.tags[Tag.METRIC] for mv in reversed(ordered) if mv.tags.get(Tag.METRIC)), None)
    return ModelDetail(
        row=row,
        versions=rows,
        history=tuple(metric_history(ordered)),
        metric=metric,
        champion_history=tuple(champion_change(entry) for entry in champion_history),
        model_card=tuple(name for name in model_card if is_plain_file_name(name)),
    )


def version_row(mv: ModelVersion, aliases: tuple[str, ...] = ()) -> VersionRow:
    """A version's line in the history, with the report files its tags name."""
    tags = mv.tags
    return VersionRow(
        version=mv.version,
        created_at=mv.created_at,
        status=mv.status,
        run_id=mv.run_id,
        aliases=aliases or mv.aliases,
        window_end=tags.get(Tag.WINDOW_END),
        decision=tags.get(Tag.DECISION),
        reasons=split_reasons(tags.get(Tag.REASONS, "")),
        metric=tags.get(Tag.METRIC),
        challenger_score=tags.get(Tag.CHALLENGER_SCORE) or None,
        champion_score=tags.get(Tag.CHAMPION_SCORE) or None,
        promoted_at=tags.get(Tag.PROMOTED_AT),
        reports=report_files(tags),
    )


def report_files(tags: Mapping[str, str]) -> tuple[str, ...]:
    """The file names of the reports a version's tags record (`retrain.report.NAME` -> a path on the worker
    that wrote it); evaluate uploaded each under `reports/` with that file name."""
    names = {PurePosixPath(path).name for key, path in tags.items() if key.startswith(Tag.REPORT) and path}
    return tuple(sorted(name for name in names if is_plain_file_name(name)))


def champion_change(entry: Any) -> ChampionChange:
    """One champion history entry, from a mapping or an object with the same names."""

    def get(name: str) -> Any:
        return entry.get(name) if isinstance(entry, Mapping) else getattr(entry, name, None)

    def text(value: Any) -> str | None:
        return None if value is None else value.isoformat() if isinstance(value, dt.datetime) else str(value)

    return ChampionChange(
        at=text(get("at")) or "",
        from_version=text(get("from_version")),
        to_version=text(get("to_version")),
        reason=text(get("reason")) or "",
        by=text(get("by")) or "",
        kind=text(get("kind")) or "",
    )


# Serving artifacts

# What a report or model card may be served as; anything else is a download, never rendered by the browser.
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
    ".csv": "text/csv; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}


def media_type(name: str) -> tuple[str, bool]:
    """The content type an artifact is served with, and whether the browser may show it (False: a download)."""
    found = MEDIA_TYPES.get(PurePosixPath(name).suffix.lower())
    return (found, True) if found else ("application/octet-stream", False)


# JSON


def to_json(value: Any) -> Any:
    """A row or a detail as JSON values: dataclasses as objects, times in ISO 8601, tuples as lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value


# Small plots as inline SVG (no script, no image request; every label escaped)


def sparkline_svg(values: Sequence[float], width: int = 90, height: int = 20) -> str:
    """A line of the values, or "" when there are fewer than two (nothing to draw: the hook stays empty)."""
    points = [v for v in values if v == v]  # drop NaN
    if len(points) < 2:
        return ""
    coords = _scale(points, width, height, pad=2)
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    last = f"{points[-1]:.4g}"
    return (
        f'<svg class="spark" role="img" aria-label="trend, last {last}" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}"><polyline fill="none" stroke="currentColor" stroke-width="1.5"'
        f' points="{path}"/></svg>'
    )


def history_svg(history: Sequence[Mapping[str, Any]], metric: str | None, width: int = 640, height: int = 220) -> str:
    """The primary metric of every evaluated version (and the champion it faced on the same holdout), or ""."""
    points = [h for h in history if isinstance(h.get("challenger"), int | float)]
    if not points:
        return ""
    values = [h["challenger"] for h in points] + [h["champion"] for h in points if h.get("champion") is not None]
    low, high = min(values), max(values)
    margin_left, margin_bottom, top = 56, 34, 12
    plot_w, plot_h = width - margin_left - 12, height - margin_bottom - top
    step = plot_w / max(len(points) - 1, 1)
    span = (high - low) or 1.0

    def y(value: float) -> float:
        return top + plot_h - (value - low) / span * plot_h

    def x(index: int) -> float:
        return margin_left + index * step if len(points) > 1 else margin_left + plot_w / 2

    esc = html.escape
    challenger = " ".join(f"{x(i):.1f},{y(h['challenger']):.1f}" for i, h in enumerate(points))
    champions = [(i, h["champion"]) for i, h in enumerate(points) if h.get("champion") is not None]
    parts = [
        f'<svg class="history" role="img" aria-label="{esc(metric or "metric")} per version" width="{width}"'
        f' height="{height}" viewBox="0 0 {width} {height}">',
        f'<text x="4" y="{top + 8}" class="axis">{esc(f"{high:.4g}")}</text>',
        f'<text x="4" y="{top + plot_h}" class="axis">{esc(f"{low:.4g}")}</text>',
        f'<text x="4" y="{top + plot_h + 14}" class="axis">{esc(metric or "")}</text>',
        f'<polyline fill="none" stroke="#1f6feb" stroke-width="2" points="{challenger}"/>',
    ]
    if champions:
        line = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in champions)
        parts.append(f'<polyline fill="none" stroke="#8c959f" stroke-dasharray="4 3" points="{line}"/>')
    for i, h in enumerate(points):
        promoted = h.get("decision") == Decision.PROMOTED
        label = f"v{h['version']} {h.get('window_end', '')}: {h['challenger']:.4f} ({h.get('decision') or '-'})"
        parts.append(
            f'<circle cx="{x(i):.1f}" cy="{y(h["challenger"]):.1f}" r="{5 if promoted else 3}"'
            f' fill="{"#1a7f37" if promoted else "#1f6feb"}"><title>{esc(label)}</title></circle>'
            f'<text x="{x(i):.1f}" y="{height - 20}" text-anchor="middle" class="axis">v{esc(str(h["version"]))}</text>'
            f'<text x="{x(i):.1f}" y="{height - 8}" text-anchor="middle" class="axis">{esc(str(h.get("window_end", "")))}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _scale(values: Sequence[float], width: int, height: int, pad: int) -> list[tuple[float, float]]:
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = (width - 2 * pad) / (len(values) - 1)
    return [(pad + i * step, height - pad - (v - low) / span * (height - 2 * pad)) for i, v in enumerate(values)]
