"""The fleet page's FastAPI app, mounted by the Airflow API server under /retrain.

Every route requires an Airflow user through Airflow's own auth manager (`get_user`: the UI's `_token`
cookie or the REST API's bearer token); a browser without one is sent to Airflow's login page, a
script gets 401. A user sees a model only when they may read its DAG; anything else is a 404, as if it
did not exist. MLflow is reached only through `retrain.registry.Registry`.
"""

from __future__ import annotations

import logging
import os
import re
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from airflow.api_fastapi.core_api.security import GetUserDep, get_user
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from retrain import fleet
from retrain.fleet import AirflowFacts, ModelRow, SpecCatalog
from retrain.registry import ArtifactNotFound, Registry, is_plain_file_name
from retrain.registry.monitoring import parse_live_series
from retrain.tags import Tag
from retrain_ui import MOUNT, pages
from retrain_ui.facts import read_airflow_facts

log = logging.getLogger(__name__)

ROLLBACK_DAG_ID = "retrain_rollback"  # dags/retrain_rollback.py (tests/dags/test_fleet_plugin.py holds them equal)
ARTIFACT_FOLDERS = (fleet.REPORTS_FOLDER, fleet.MODEL_CARD_FOLDER)
# A report is data rendered as HTML: shown in a sandbox (no script, an origin of its own), never with
# Airflow's cookie-bearing origin, and never sniffed into another type.
ARTIFACT_POLICY = "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'"
# The API server is the only process that runs this: a page must answer within seconds when MLflow is down,
# instead of MLflow's default of 7 retries with exponential backoff. A deployment's own values win.
UI_MLFLOW_ENV = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",  # urllib3 retries the first time at once
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}


class RegistryUnavailable(Exception):
    """No registry to read: not configured, or unreachable (the message says which)."""


def default_registry() -> Registry:
    """The registry the DAGs use (MLFLOW_TRACKING_URI or the `mlflow_default` connection), failing fast."""
    from retrain_operators.hooks import MlflowHook

    hook = MlflowHook()
    if not hook.environment().get("MLFLOW_TRACKING_URI"):
        raise RegistryUnavailable("no tracking URI (set MLFLOW_TRACKING_URI or the connection mlflow_default)")
    for key, value in UI_MLFLOW_ENV.items():
        os.environ.setdefault(key, value)
    return hook.get_conn()


def visible_dag_ids(
    auth_manager: Any, user: Any, dag_ids: Collection[str], teams: Mapping[str, str | None]
) -> set[str]:
    """The DAGs the user may read (GET), asked of the auth manager per team as Airflow itself does."""
    by_team: dict[str | None, set[str]] = defaultdict(set)
    for dag_id in dag_ids:
        by_team[teams.get(dag_id)].add(dag_id)
    visible: set[str] = set()
    for team, ids in by_team.items():
        visible |= set(auth_manager.filter_authorized_dag_ids(dag_ids=ids, user=user, method="GET", team_name=team))
    return visible


def may_trigger(auth_manager: Any, user: Any, dag_id: str, team: str | None = None) -> bool:
    """Whether the user may create a run of the DAG (what Airflow's trigger form needs)."""
    return bool(
        auth_manager.is_authorized_dag(
            method="POST", access_entity=DagAccessEntity.RUN, details=DagDetails(id=dag_id, team_name=team), user=user
        )
    )


@dataclass(frozen=True)
class Fleet:
    """What one request sees: the visible rows, the registry's error (None: read fine) and the context."""

    rows: list[ModelRow]
    facts: AirflowFacts
    registry_error: str | None
    ctx: pages.PageContext


def error_line(error: BaseException) -> str:
    """The error in one line for the page, without credentials a URL may carry (user:password@host)."""
    text = re.sub(r"//[^/@\s]+@", "//***@", " ".join(str(error).split())) or type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def create_app(
    catalog: SpecCatalog | None = None,
    registry_factory: Callable[[], Registry] = default_registry,
    facts_reader: Callable[[Collection[str], Collection[str]], AirflowFacts] = read_airflow_facts,
) -> FastAPI:
    """The app: the Models and Model pages, reports and model cards from MLflow, and the JSON API."""
    catalog = catalog or SpecCatalog()
    app = FastAPI(
        title="Retraining fleet", dependencies=[Depends(get_user)], docs_url=None, redoc_url=None, openapi_url=None
    )

    @app.exception_handler(StarletteHTTPException)
    async def login_for_browsers(request: Request, exc: StarletteHTTPException) -> Response:
        """A page without a (valid) session goes to Airflow's login and back; the API answers 401/403 JSON."""
        root = request.scope.get("root_path", "")
        unauthenticated = exc.status_code == 401 or (exc.status_code == 403 and exc.detail == "Invalid JWT token")
        if unauthenticated and not request.url.path.startswith(f"{root}/api/"):
            airflow = root[: -len(MOUNT)] if root.endswith(MOUNT) else ""
            return RedirectResponse(
                f"{airflow}/api/v2/auth/login?{urlencode({'next': str(request.url)})}", status_code=307
            )
        if exc.status_code == 404 and not request.url.path.startswith(f"{root}/api/"):
            return html_response(pages.not_found(str(exc.detail), root), status_code=404)
        return await http_exception_handler(request, exc)

    def read_fleet(request: Request, user: Any, only: str | None = None) -> Fleet:
        entries = {entry.name: entry for entry in catalog.entries() if only is None or entry.name == only}
        dag_ids = {entry.dag_id for entry in entries.values()} | {ROLLBACK_DAG_ID}
        facts = facts_reader(dag_ids, fleet.output_task_ids())
        teams = {dag_id: dag.team for dag_id, dag in facts.dags.items()}
        auth = get_auth_manager()
        visible = visible_dag_ids(auth, user, dag_ids, teams)
        shown = [entry for entry in entries.values() if entry.dag_id in visible]
        registry_error, summaries = None, None
        try:
            summaries = registry_factory().summaries(entry.name for entry in shown)
        except Exception as error:  # noqa: BLE001 - whatever MLflow raises, the page still lists the DAGs
            log.warning("fleet page: registry unreachable: %s", error)
            registry_error = error_line(error)
        root = request.scope.get("root_path", "")
        ctx = pages.PageContext(
            base=root,
            airflow=root[: -len(MOUNT)] if root.endswith(MOUNT) else "",
            user=user.get_name(),
            can_trigger=frozenset(e.dag_id for e in shown if may_trigger(auth, user, e.dag_id, teams.get(e.dag_id))),
            rollback_dag_id=ROLLBACK_DAG_ID
            if ROLLBACK_DAG_ID in visible and may_trigger(auth, user, ROLLBACK_DAG_ID, teams.get(ROLLBACK_DAG_ID))
            else None,
        )
        live = {name: parse_live_series(s.tags.get(Tag.LIVE_SERIES)) for name, s in (summaries or {}).items()}
        rows = fleet.build_rows(shown, facts, summaries, live)
        return Fleet(rows, facts, registry_error, ctx)

    def listing(request: Request, user: Any, sort: str, order: str, tag: str | None) -> tuple[Fleet, list[ModelRow]]:
        found = read_fleet(request, user)
        rows = fleet.sort_rows(fleet.filter_rows(found.rows, tag or None), sort, descending=order == "desc")
        return found, rows

    @app.get("/", response_class=HTMLResponse)
    def models_page(
        request: Request, user: GetUserDep, sort: str = "name", order: str = "asc", tag: str = ""
    ) -> Response:
        """The Models page."""
        found, rows = listing(request, user, sort, order, tag)
        page = pages.models_page(
            rows, found.ctx, tags=fleet.all_tags(found.rows), sort=sort, descending=order == "desc",
            tag=tag or None, registry_error=found.registry_error,
        )  # fmt: skip
        return html_response(page)

    @app.get("/api/models")
    def models_api(
        request: Request, user: GetUserDep, sort: str = "name", order: str = "asc", tag: str = ""
    ) -> JSONResponse:
        """Every model the user may see, as on the Models page."""
        found, rows = listing(request, user, sort, order, tag)
        return JSONResponse(  # already JSON values: no second pass through FastAPI's encoder
            {
                "models": [{**fleet.to_json(row), "links": pages.links(row, found.ctx)} for row in rows],
                "tags": fleet.all_tags(found.rows),
                "registry": {"reachable": found.registry_error is None, "error": found.registry_error},
            }
        )

    def read_detail(request: Request, user: Any, name: str) -> tuple[Fleet, fleet.ModelDetail]:
        found = read_fleet(request, user, only=name)
        row = next((row for row in found.rows if row.name == name), None)
        if row is None:
            raise HTTPException(404, f"no model {name!r}")
        if found.registry_error is not None:
            return found, fleet.build_detail(row)
        try:
            registry = registry_factory()
            versions = registry.versions(name)
            champion = next((v for v in versions if row.champion and v.version == row.champion.version), None)
            history = getattr(registry, "champion_history", None)  # issue 17 adds it
            detail = fleet.build_detail(
                row,
                versions,
                aliases={alias: v for alias, v in (("champion", row.champion and row.champion.version),
                                                   ("previous", row.previous)) if v},
                champion_history=history(name) if history else (),
                model_card=registry.artifact_names(champion.run_id, fleet.MODEL_CARD_FOLDER)
                if champion and champion.run_id
                else (),
            )  # fmt: skip
        except Exception as error:  # noqa: BLE001 - the summary above is still worth showing
            log.warning("fleet page: registry unreachable for %s: %s", name, error)
            return Fleet(found.rows, found.facts, error_line(error), found.ctx), fleet.build_detail(row)
        return found, detail

    @app.get("/models/{name}", response_class=HTMLResponse)
    def model_page(request: Request, user: GetUserDep, name: str) -> Response:
        """The Model page."""
        found, detail = read_detail(request, user, name)
        return html_response(pages.model_page(detail, found.ctx, found.registry_error))

    @app.get("/api/models/{name}")
    def model_api(request: Request, user: GetUserDep, name: str) -> JSONResponse:
        """One model: its row, every version with its report URLs, the metric and champion histories."""
        found, detail = read_detail(request, user, name)
        ctx = found.ctx
        body = fleet.to_json(detail)
        for version in body["versions"]:
            version["reports"] = [
                {"name": f, "url": ctx.report_url(name, version["version"], fleet.REPORTS_FOLDER, f)}
                for f in version["reports"]
            ]
        if detail.row.champion:
            body["model_card"] = [
                {"name": f, "url": ctx.report_url(name, detail.row.champion.version, fleet.MODEL_CARD_FOLDER, f)}
                for f in detail.model_card
            ]
        body["links"] = pages.links(detail.row, ctx)
        body["registry"] = {"reachable": found.registry_error is None, "error": found.registry_error}
        return JSONResponse(body)

    @app.get("/models/{name}/versions/{version}/{folder}/{file}")
    def artifact(request: Request, user: GetUserDep, name: str, version: str, folder: str, file: str) -> Response:
        """A report or model card file of a version, streamed from its MLflow run's artifacts. Only a plain
        file name listed in that run's folder is fetched; anything else is a 404."""
        if folder not in ARTIFACT_FOLDERS or not version.isdigit() or not is_plain_file_name(file):
            raise HTTPException(404, "no such artifact")
        entry = next((e for e in catalog.entries() if e.name == name), None)
        if entry is None or not visible_dag_ids(get_auth_manager(), user, [entry.dag_id], _teams(entry.dag_id)):
            raise HTTPException(404, f"no model {name!r}")
        try:
            registry = registry_factory()
            found = registry.find_version(name, version)
            if found is None or not found.run_id:
                raise HTTPException(404, f"model {name!r} has no version {version}")
            content = registry.read_artifact(found.run_id, folder, file)
        except ArtifactNotFound:
            raise HTTPException(404, "no such artifact") from None
        except HTTPException:
            raise
        except Exception as error:  # noqa: BLE001 - MLflow down or failing: say so, do not crash
            log.warning("fleet page: cannot read %s/%s of %s v%s: %s", folder, file, name, version, error)
            raise HTTPException(503, f"the model registry is unreachable: {error_line(error)}") from None
        kind, inline = fleet.media_type(file)
        return Response(
            content,
            media_type=kind,
            headers={
                "Content-Security-Policy": ARTIFACT_POLICY,
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "private, no-store",
                "Content-Disposition": f"{'inline' if inline else 'attachment'}; filename*=UTF-8''{quote(file)}",
            },
        )

    def _teams(dag_id: str) -> dict[str, str | None]:
        dag = facts_reader([dag_id], ()).dags.get(dag_id)
        return {dag_id: None if dag is None else dag.team}

    return app


def html_response(page: str, status_code: int = 200) -> HTMLResponse:
    """A page with the headers every page of ours carries: no script, no framing by others, no caching."""
    return HTMLResponse(
        page,
        status_code=status_code,
        headers={
            "Content-Security-Policy": pages.PAGE_POLICY,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
            "Cache-Control": "private, no-store",
        },
    )
