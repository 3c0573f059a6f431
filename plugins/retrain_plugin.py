"""The Airflow plugin of this package: the fleet page ("Models" in the UI's navigation) at /retrain.

Airflow's plugin loader imports this file in every process that loads plugins, task processes
included; the FastAPI app (and Airflow's API-server modules it needs) is built only when the API
server asks for `fastapi_apps`, so tasks do not pay for it.
"""

from __future__ import annotations

import functools
from typing import Any

from airflow.plugins_manager import AirflowPlugin

from retrain_ui import MOUNT


@functools.cache
def fleet_app() -> Any:
    """The fleet page's app, built once per process."""
    from retrain_ui.app import create_app

    return create_app()


class RetrainPlugin(AirflowPlugin):
    """Mounts the fleet page under /retrain and adds "Models" to the navigation (shown inside the UI)."""

    name = "retrain"
    external_views = [
        {"name": "Models", "href": f"{MOUNT}/", "destination": "nav", "url_route": "models", "nav_top_level": True}
    ]

    @property
    def fastapi_apps(self) -> list[dict[str, Any]]:  # type: ignore[override]
        return [{"app": fleet_app(), "url_prefix": MOUNT, "name": "Retraining fleet"}]
