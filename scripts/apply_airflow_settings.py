"""Apply airflow_settings.yaml (Astro CLI format) to the Airflow metadata DB of AIRFLOW_HOME.

Idempotent: connections, pools and variables are created or updated in place.
Usage: python scripts/apply_airflow_settings.py [airflow_settings.yaml]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml


def main(path: str = "airflow_settings.yaml") -> None:
    settings = (yaml.safe_load(Path(path).read_text()) or {}).get("airflow") or {}

    # An admin script writing the metadata DB (as `airflow connections import` does); the SDK's
    # Connection and Variable are read-only views for tasks, so the ORM models are the right tool here.
    from airflow.models import Connection, Pool, Variable
    from airflow.utils.session import create_session

    with create_session() as session:
        for item in settings.get("connections") or []:
            extra = item.get("conn_extra")
            fields = {
                "conn_type": item.get("conn_type"),
                "host": item.get("conn_host"),
                "schema": item.get("conn_schema"),
                "login": item.get("conn_login"),
                "password": item.get("conn_password"),
                "port": item.get("conn_port"),
                "extra": json.dumps(extra) if isinstance(extra, dict) else extra,
            }
            conn = session.query(Connection).filter(Connection.conn_id == item["conn_id"]).one_or_none()  # noqa: AIR311
            if conn is None:
                session.add(Connection(conn_id=item["conn_id"], **fields))  # noqa: AIR311
            else:
                for key, value in fields.items():
                    setattr(conn, key, value)
        session.commit()
        for item in settings.get("pools") or []:
            Pool.create_or_update_pool(
                name=item["pool_name"],
                slots=int(item["pool_slot"]),
                description=item.get("pool_description", ""),
                include_deferred=False,
                session=session,
            )
        session.commit()
    for item in settings.get("variables") or []:
        Variable.set(item["variable_name"], item.get("variable_value"))  # noqa: AIR311
    print(
        f"applied {path}: {len(settings.get('connections') or [])} connections, "
        f"{len(settings.get('pools') or [])} pools, {len(settings.get('variables') or [])} variables"
    )


if __name__ == "__main__":
    main(*sys.argv[1:])
