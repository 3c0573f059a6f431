"""The fleet pages as server-rendered HTML: no script and no build step, so an Airflow upgrade cannot break
a bundle. Every value that comes from a spec, the registry or Airflow is escaped here, in one place
(`esc` for text and attributes, `path` for URL segments). No Airflow import: unit-tested as is.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

from retrain.fleet import (
    SORT_KEYS,
    ModelDetail,
    ModelRow,
    PendingApproval,
    history_svg,
    sparkline_svg,
)

# Our own pages run no script and load nothing from elsewhere; they may be framed by Airflow's UI only.
PAGE_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; base-uri 'none';"
    " frame-ancestors 'self'"
)
COLUMNS = (
    ("name", "Model"), ("champion", "Champion"), ("age", "Age"), (None, "Previous"), ("last_run", "Last run"),
    ("decision", "Decision"), ("drift", "Drift"), (None, "Trend"), (None, "Approval"), ("next_run", "Next run"),
    (None, "Actions"),
)  # fmt: skip

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1rem 1.5rem;color:#1f2328;font-size:14px}
h1{font-size:1.4rem;margin:.2rem 0 .8rem}h2{font-size:1.1rem;margin:1.4rem 0 .5rem}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #d0d7de;padding:.35rem .5rem;
text-align:left;vertical-align:top}th{background:#f6f8fa;white-space:nowrap}th a{color:inherit}
a{color:#0969da;text-decoration:none}a:hover{text-decoration:underline}small,.muted{color:#59636e}
.banner{background:#fff8c5;border:1px solid #d4a72c;padding:.5rem .8rem;margin:.5rem 0 1rem;border-radius:6px}
.broken td{background:#ffebe9}pre{white-space:pre-wrap;margin:.2rem 0;font-size:12px}
.state{display:inline-block;padding:0 .45rem;border-radius:1rem;font-size:12px;background:#eaeef2}
.state-success,.decision-promoted,.decision-champion,.decision-approved{background:#dafbe1}
.state-failed,.decision-declined{background:#ffebe9}.state-running,.state-queued{background:#ddf4ff}
.drift{color:#bc4c00}ul.reasons{margin:.2rem 0;padding-left:1.1rem}.actions a{margin-right:.6rem;white-space:nowrap}
form.filter{margin:.3rem 0 .8rem}.axis{font-size:11px;fill:#59636e}.spark{color:#0969da;vertical-align:middle}
.nowrap{white-space:nowrap}dl.summary{display:grid;grid-template-columns:max-content auto;gap:.25rem 1rem}dt{font-weight:600}dd{margin:0}
"""


def esc(value: object) -> str:
    """Text or attribute value, escaped (quotes included)."""
    return html.escape("" if value is None else str(value), quote=True)


def path(value: object) -> str:
    """A URL path segment: every character that could end it or change its meaning is percent-encoded."""
    return quote(str(value), safe="")


@dataclass(frozen=True)
class PageContext:
    """Where the page lives and what the user may do: our prefix (e.g. /retrain), Airflow's UI prefix, the
    user's name, the DAGs they may trigger, and whether they may trigger the rollback DAG."""

    base: str
    airflow: str
    user: str
    can_trigger: frozenset[str] = frozenset()
    rollback_dag_id: str | None = None
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def model_url(self, name: str) -> str:
        return f"{self.base}/models/{path(name)}"

    def report_url(self, name: str, version: str, folder: str, file: str) -> str:
        return f"{self.base}/models/{path(name)}/versions/{path(version)}/{path(folder)}/{path(file)}"

    def dag_url(self, dag_id: str) -> str:
        return f"{self.airflow}/dags/{path(dag_id)}"

    def run_url(self, dag_id: str, run_id: str) -> str:
        return f"{self.dag_url(dag_id)}/runs/{path(run_id)}"

    def approval_url(self, approval: PendingApproval) -> str:
        task = f"{self.run_url(approval.dag_id, approval.run_id)}/tasks/{path(approval.task_id)}"
        return (
            f"{task}/required_actions"
            if approval.map_index < 0
            else f"{task}/mapped/{approval.map_index}/required_actions"
        )


def when(value: dt.datetime | None) -> str:
    """A time as `2025-05-01 02:00 UTC`, or an em dash."""
    return "—" if value is None else value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def age(since: dt.datetime | None, now: dt.datetime) -> str:
    """How long ago, in the two largest units: `3 d 4 h`, `5 h 2 min`, `40 s`."""
    if since is None:
        return "—"
    seconds = max(int((now - since).total_seconds()), 0)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    units = [(days, "d"), (hours, "h"), (minutes, "min"), (secs, "s")]
    shown = [f"{n} {unit}" for n, unit in units if n][:2]
    return " ".join(shown) or "0 s"


def score(text: str) -> str:
    """A score tag to four decimals (the tag keeps every digit); text that is not a number as it is."""
    try:
        return f"{float(text):.4f}"
    except ValueError:
        return text


def document(title: str, body: str) -> str:
    """A whole page."""
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>'
        f"<body>{body}</body></html>"
    )


def _state(value: str | None, prefix: str = "state") -> str:
    if not value:
        return "—"
    return f'<span class="state {prefix}-{esc(value)}">{esc(value)}</span>'


def _champion(row: ModelRow, ctx: PageContext) -> tuple[str, str]:
    if row.champion is None:
        return "—", "—"
    return f"v{esc(row.champion.version)}", esc(age(row.champion.since, ctx.now))


def _last_run(row: ModelRow, ctx: PageContext) -> str:
    run = row.last_run
    if run is None:
        return '<span class="muted">never ran</span>'
    return (
        f'{_state(run.state)} <a class="nowrap" target="_top" href="{esc(ctx.run_url(row.dag_id, run.run_id))}">'
        f"{esc(when(run.when))}</a>"
        f"<br><small>{esc(run.trigger)}</small><br><small>{esc(run.outcome)}</small>"
    )


def _decision(row: ModelRow) -> str:
    decision = row.decision
    if decision is None:
        return "—"
    reasons = "".join(f"<li>{esc(reason)}</li>" for reason in decision.reasons)
    note = "" if decision.from_last_run else "<br><small>(an earlier run)</small>"
    return f"v{esc(decision.version)} {_state(decision.decision, 'decision')}{note}" + (
        f'<ul class="reasons">{reasons}</ul>' if reasons else ""
    )


def _drift(row: ModelRow) -> str:
    drift = row.drift
    if drift.status == "drift":
        features = ", ".join(drift.features) + (" + label" if drift.label else "")
        psi = "" if drift.max_psi is None else f" (max PSI {drift.max_psi:.3f})"
        return f'<span class="drift">drift: {esc(features or "label")}{esc(psi)}</span>'
    if drift.status == "none":
        psi = "" if drift.max_psi is None else f" (max PSI {drift.max_psi:.3f})"
        return f"none{esc(psi)}"
    return {"not_compared": "no champion to compare", "unknown": "—"}.get(drift.status, esc(drift.status))


def approval_cell(approval: PendingApproval | None, ctx: PageContext) -> str:
    """A pending approval as a link to Airflow's Required Action page, or nothing."""
    if approval is None:
        return ""
    return (
        f'<a target="_top" href="{esc(ctx.approval_url(approval))}">awaiting approval</a>'
        f"<br><small>{esc(approval.subject)} · {esc(age(approval.since, ctx.now))}</small>"
    )


def actions(row: ModelRow, ctx: PageContext) -> str:
    """Links into Airflow's own forms: the DAG (its Trigger button opens the trigger form) and the rollback DAG."""
    links = [f'<a target="_top" href="{esc(ctx.dag_url(row.dag_id))}">DAG</a>']
    if row.dag_id in ctx.can_trigger and row.error is None:
        links.append(f'<a target="_top" href="{esc(ctx.dag_url(row.dag_id))}" title="Opens the DAG; its Trigger button'
                     f' opens the trigger form">Trigger…</a>')  # fmt: skip
    if ctx.rollback_dag_id and row.champion:  # to `previous`, or to a vetted version chosen in the form
        links.append(
            f'<a target="_top" href="{esc(ctx.dag_url(ctx.rollback_dag_id))}" title="Trigger {esc(ctx.rollback_dag_id)}'
            f' with Model = {esc(row.name)}">Roll back…</a>'
        )
    return f'<span class="actions">{"".join(links)}</span>'


def columns_for(rows: Iterable[ModelRow]) -> tuple[tuple[str | None, str], ...]:
    """The table's columns: Trend and Approval only when some row has a trend or a pending approval."""
    rows = list(rows)
    hidden = {"Trend"} if not any(row.live_metric for row in rows) else set()
    hidden |= {"Approval"} if not any(row.approval for row in rows) else set()
    return tuple(column for column in COLUMNS if column[1] not in hidden)


def _header(ctx: PageContext, columns, sort: str, descending: bool, tag: str | None) -> str:
    cells = []
    for key, label in columns:
        if key is None:
            cells.append(f"<th>{esc(label)}</th>")
            continue
        flip = key == sort and not descending
        query = {"sort": key, "order": "desc" if flip else "asc", **({"tag": tag} if tag else {})}
        mark = (" ▼" if descending else " ▲") if key == sort else ""
        cells.append(f'<th><a href="{esc(ctx.base)}/?{esc(urlencode(query))}">{esc(label)}{mark}</a></th>')
    return f"<thead><tr>{''.join(cells)}</tr></thead>"


def model_row(row: ModelRow, ctx: PageContext, columns: tuple[tuple[str | None, str], ...] = COLUMNS) -> str:
    """One table row with the given columns; a broken spec shows its error across them."""
    name = f'<a href="{esc(ctx.model_url(row.name))}">{esc(row.name)}</a>'
    tags = f"<br><small>{esc(', '.join(t for t in row.tags if not t.startswith('model:')))}</small>" if row.tags else ""
    if row.error is not None:
        return (
            f'<tr class="broken"><td>{name}<br><small>{esc(row.file)}</small></td>'
            f'<td colspan="{len(columns) - 2}"><strong>invalid spec</strong><pre>{esc(row.error)}</pre></td>'
            f"<td>{actions(row, ctx)}</td></tr>"
        )
    champion, champion_age = _champion(row, ctx)
    next_run = "paused" if row.paused else when(row.next_run) if row.in_airflow else "not in Airflow yet"
    cells = {
        "Model": f"{name}{tags}",
        "Champion": champion,
        "Age": f'<span class="nowrap">{champion_age}</span>',
        "Previous": "v" + esc(row.previous) if row.previous else "—",
        "Last run": _last_run(row, ctx),
        "Decision": _decision(row),
        "Drift": _drift(row),
        "Trend": sparkline_svg(row.live_metric),
        "Approval": approval_cell(row.approval, ctx),
        "Next run": f'<span class="nowrap">{esc(next_run)}</span>',
        "Actions": actions(row, ctx),
    }
    return "<tr>" + "".join(f"<td>{cells[label]}</td>" for _, label in columns) + "</tr>"


def models_page(
    rows: Iterable[ModelRow],
    ctx: PageContext,
    *,
    tags: Iterable[str],
    sort: str,
    descending: bool,
    tag: str | None,
    registry_error: str | None,
) -> str:
    """The Models page: one row per spec the user may see, sortable by column and filtered by tag."""
    rows = list(rows)
    options = "".join(f'<option value="{esc(t)}"{" selected" if t == tag else ""}>{esc(t)}</option>' for t in tags)
    banner = (
        f'<p class="banner" role="alert">The model registry is unreachable: {esc(registry_error)}. The list below'
        " shows what the specs and Airflow know.</p>"
        if registry_error
        else ""
    )
    columns = columns_for(rows)
    body = "".join(model_row(row, ctx, columns) for row in rows) or (
        f'<tr><td colspan="{len(columns)}" class="muted">No model you may see'
        f"{' with tag ' + esc(tag) if tag else ''}.</td></tr>"
    )
    sort = sort if sort in SORT_KEYS else "name"
    return document(
        "Models",
        f'<h1>Models</h1><p class="muted">{len(rows)} model(s) · signed in as {esc(ctx.user)} ·'
        f' <a href="{esc(ctx.base)}/api/models">JSON</a></p>{banner}'
        f'<form class="filter" method="get" action="{esc(ctx.base)}/"><label>Tag <select name="tag">'
        f'<option value="">all</option>{options}</select></label>'
        f'<input type="hidden" name="sort" value="{esc(sort)}"><input type="hidden" name="order"'
        f' value="{"desc" if descending else "asc"}"> <button type="submit">Filter</button></form>'
        f"<table>{_header(ctx, columns, sort, descending, tag)}<tbody>{body}</tbody></table>",
    )


def _versions(detail: ModelDetail, ctx: PageContext) -> str:
    rows = []
    for version in detail.versions:
        reports = " ".join(
            f'<a target="_blank" rel="noopener" href="{esc(ctx.report_url(detail.row.name, version.version, "reports", f))}">'
            f"{esc(f)}</a>"
            for f in version.reports
        )
        reasons = "".join(f"<li>{esc(r)}</li>" for r in version.reasons)
        scores = " vs ".join(esc(score(s)) for s in (version.challenger_score, version.champion_score) if s)
        rows.append(
            f"<tr><td>v{esc(version.version)}</td><td>{esc(', '.join(version.aliases))}</td>"
            f"<td>{esc(when(version.created_at))}</td><td>{esc(version.window_end or '—')}</td>"
            f"<td>{_state(version.decision, 'decision')}"
            f"{'<ul class=reasons>' + reasons + '</ul>' if reasons else ''}</td>"
            f"<td>{scores or '—'}</td><td>{reports or '—'}</td></tr>"
        )
    if not rows:
        return '<p class="muted">No registered version yet.</p>'
    return (
        "<table><thead><tr><th>Version</th><th>Aliases</th><th>Registered</th><th>Window end</th><th>Decision</th>"
        f"<th>{esc(detail.metric or 'score')} (version vs champion)</th><th>Reports</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def champion_history_section(detail: ModelDetail) -> str:
    """The champion's history (issue 17), or nothing when there is none."""
    if not detail.champion_history:
        return ""
    rows = "".join(
        f"<tr><td>{esc(c.at)}</td><td>{esc(c.kind)}</td><td>{esc(c.from_version or '—')} → {esc(c.to_version or '—')}</td>"
        f"<td>{esc(c.by)}</td><td>{esc(c.reason)}</td></tr>"
        for c in detail.champion_history
    )
    return (
        "<h2>Champion history</h2><table><thead><tr><th>When</th><th>What</th><th>Version</th><th>By</th>"
        f"<th>Why</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def model_card_section(detail: ModelDetail, ctx: PageContext) -> str:
    """Links to the champion's model card files (issue 17), or nothing."""
    champion = detail.row.champion
    if champion is None or not detail.model_card:
        return ""
    links = " ".join(
        f'<a target="_blank" rel="noopener" href="{esc(ctx.report_url(detail.row.name, champion.version, "model_card", f))}">'
        f"{esc(f)}</a>"
        for f in detail.model_card
    )
    return f"<h2>Model card (v{esc(champion.version)})</h2><p>{links}</p>"


def model_page(detail: ModelDetail, ctx: PageContext, registry_error: str | None = None) -> str:
    """The Model page: summary, actions, metric history, champion history, model card and every version."""
    row = detail.row
    banner = (
        f'<p class="banner" role="alert">The model registry is unreachable: {esc(registry_error)}.</p>'
        if registry_error
        else ""
    )
    error = f'<h2>Invalid spec</h2><pre class="broken">{esc(row.error)}</pre>' if row.error else ""
    champion, champion_age = _champion(row, ctx)
    trend = sparkline_svg(row.live_metric)
    summary = (
        f'<dl class="summary"><dt>Champion</dt><dd>{champion} <small>since {esc(when(row.champion.since)) if row.champion else "—"}'
        f" ({champion_age})</small></dd><dt>Previous</dt><dd>{'v' + esc(row.previous) if row.previous else '—'}</dd>"
        f"<dt>Last run</dt><dd>{_last_run(row, ctx)}</dd><dt>Decision</dt><dd>{_decision(row)}</dd>"
        f"<dt>Drift</dt><dd>{_drift(row)}</dd><dt>Next run</dt><dd>{esc('paused' if row.paused else when(row.next_run))}</dd>"
        + (f"<dt>Trend</dt><dd>{trend}</dd>" if trend else "")
        + (f"<dt>Approval</dt><dd>{approval_cell(row.approval, ctx)}</dd>" if row.approval else "")
        + "</dl>"
    )
    plot = history_svg(detail.history, detail.metric)
    return document(
        f"{row.name} · Models",
        f'<p><a href="{esc(ctx.base)}/">← Models</a></p><h1>{esc(row.name)}</h1>{banner}{error}'
        f"<p>{actions(row, ctx)} <small>spec {esc(row.file)} · DAG {esc(row.dag_id)}</small></p>{summary}"
        + (f"<h2>Metric history</h2>{plot}" if plot else "")
        + champion_history_section(detail)
        + model_card_section(detail, ctx)
        + f"<h2>Versions</h2>{_versions(detail, ctx)}",
    )


def links(row: ModelRow, ctx: PageContext) -> Mapping[str, str]:
    """The row's URLs for the JSON API: its page, its DAG (trigger form), its last run."""
    found = {"page": ctx.model_url(row.name), "dag": ctx.dag_url(row.dag_id)}
    if row.last_run:
        found["last_run"] = ctx.run_url(row.dag_id, row.last_run.run_id)
    if row.approval:
        found["approval"] = ctx.approval_url(row.approval)
    return found


def not_found(detail: str, base: str) -> str:
    """The page for a model or file that does not exist (or that the user may not see)."""
    return document("Not found", f'<h1>Not found</h1><p>{esc(detail)}.</p><p><a href="{esc(base)}/">← Models</a></p>')
