"""Notifications through an Airflow connection, none required.

Create an HTTP connection `retrain_webhook` (host = the full webhook URL, optional password = bearer
token) and failures and promotions are posted there as JSON. Without it, notifiers only log.
"""

from __future__ import annotations

import json
import logging
import urllib.request

from airflow.sdk import BaseNotifier

WEBHOOK_CONN_ID = "retrain_webhook"
log = logging.getLogger(__name__)


class WebhookNotifier(BaseNotifier):
    template_fields = ("message",)

    def __init__(self, message: str, conn_id: str = WEBHOOK_CONN_ID) -> None:
        super().__init__()
        self.message = message
        self.conn_id = conn_id

    def notify(self, context) -> None:
        from airflow.sdk import BaseHook

        try:
            conn = BaseHook.get_connection(self.conn_id)
        except Exception:  # noqa: BLE001 - no connection configured means notifications are off
            log.info("no connection %r: notification not sent: %s", self.conn_id, self.message)
            return
        url = conn.host if "://" in (conn.host or "") else f"{conn.schema or 'https'}://{conn.host}"
        ti = context.get("ti")
        body = {
            "text": self.message,
            "dag_id": getattr(context.get("dag"), "dag_id", None),
            "run_id": context.get("run_id"),
            "task_id": getattr(ti, "task_id", None),
        }
        headers = {"Content-Type": "application/json"}
        if conn.password:
            headers["Authorization"] = f"Bearer {conn.password}"
        request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")  # noqa: S310 - URL from an admin's connection
        try:
            with urllib.request.urlopen(request, timeout=10):  # noqa: S310
                pass
        except OSError as error:
            log.warning("notification to %s failed: %s", self.conn_id, error)


def failure_notifiers() -> list[WebhookNotifier]:
    return [WebhookNotifier("Retraining task {{ ti.task_id }} of {{ dag.dag_id }} failed (run {{ run_id }})")]


def promotion_notifiers() -> list[WebhookNotifier]:
    return [WebhookNotifier("{{ dag.dag_id }} promoted a new champion (run {{ run_id }})")]
