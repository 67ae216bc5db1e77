"""The embedded default: a real PostgreSQL started from the ``pgserver`` package."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger(__name__)

_servers: dict[Path, Any] = {}

# The role the API and the in-process worker connect as; the superuser `postgres` migrates.
SERVICE_ROLE = "nscl_app"


def start_postgres(data_dir: Path) -> str:
    """Start (or join) a PostgreSQL 16 whose data lives under ``data_dir``; return its URL.

    The URL is the superuser's (it migrates and seeds); the service connects as
    ``service_url(url)``.

    pgserver bundles the server binaries, listens on a Unix socket inside the data folder
    and, when run as root, runs them as a system user of its own. The server stops when
    the last process that started it exits.
    """
    from pgserver.postgres_server import get_server

    pgdata = (data_dir / "postgres").resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    if pgdata not in _servers:
        _servers[pgdata] = get_server(pgdata, cleanup_mode="stop")
        log.info("embedded_postgres.started", data_dir=str(pgdata))
    return f"postgresql+asyncpg://postgres@/postgres?host={pgdata}"


def service_url(superuser_url: str, role: str = SERVICE_ROLE) -> str:
    """The embedded server's URL for ``role`` (local connections are trusted: no password)."""
    return superuser_url.replace("://postgres@", f"://{role}@", 1)
