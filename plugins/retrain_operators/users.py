"""Who can answer an approval request, as far as the DAG processor can tell (read at parse time)."""

from __future__ import annotations


def known_user_ids() -> set[str] | None:
    """The user ids the simple auth manager knows ([core] simple_auth_manager_users), read from the config
    without importing the API server; None when they cannot be listed here (another auth manager, or every
    user an admin), and then approvers are not checked at parse time."""
    from airflow.configuration import conf

    if not conf.get("core", "auth_manager", fallback="").endswith(".SimpleAuthManager"):
        return None
    if conf.getboolean("core", "simple_auth_manager_all_admins", fallback=False):
        return None
    return {entry.split(":")[0].strip() for entry in conf.getlist("core", "simple_auth_manager_users") if entry}
