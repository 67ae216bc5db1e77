"""The embedded default: a real PostgreSQL started from the ``pgserver`` package.

pgserver stops the server when the last process that started it exits: each process
writes its pid into ``<data>/.handle_pids.json`` and an ``atexit`` hook takes it out,
stopping the server when none is left. Two gaps are closed here. A process killed hard
(SIGKILL, OOM) never takes its pid out, so every later run would believe another user
remains and leave the server running: dead pids are dropped before joining. And its
``pg_ctl`` command lines are logged at debug, not info.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger(__name__)

_servers: dict[Path, Any] = {}

# The role the API and the in-process worker connect as; the superuser `postgres` migrates.
SERVICE_ROLE = "nscl_app"
HANDLE_FILE = ".handle_pids.json"


class _PgserverAtDebug(logging.Filter):
    """pgserver logs every command line it runs, and its whole output, at info."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.INFO:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger().isEnabledFor(logging.DEBUG)
        return True


_pgserver_logger = logging.getLogger("pgserver")
if not any(isinstance(f, _PgserverAtDebug) for f in _pgserver_logger.filters):
    _pgserver_logger.addFilter(_PgserverAtDebug())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    # A killed child its parent has not reaped yet is dead all the same.
    with contextlib.suppress(OSError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


def drop_stale_handles(pgdata: Path) -> list[int]:
    """Remove the pids of processes that died without saying so; return those removed."""
    path = pgdata / HANDLE_FILE
    try:
        pids = [int(p) for p in json.loads(path.read_text())]
    except (OSError, ValueError, TypeError):
        return []
    stale = [pid for pid in pids if pid != os.getpid() and not _alive(pid)]
    if stale:
        path.write_text(json.dumps([pid for pid in pids if pid not in stale]))
        log.warning("embedded_postgres.stale_handles", data_dir=str(pgdata), pids=stale)
    return stale


def start_postgres(data_dir: Path) -> str:
    """Start (or join) a PostgreSQL 16 whose data lives under ``data_dir``; return its URL.

    The URL is the superuser's (it migrates and seeds); the service connects as
    ``service_url(url)``.

    pgserver bundles the server binaries, listens on a Unix socket inside the data folder
    and, when run as root, runs them as a system user of its own. The server stops when
    the last process that started it exits (``stop_postgres``, or at exit).
    """
    from pgserver.postgres_server import PostgresServer, get_server

    pgdata = (data_dir / "postgres").resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    if pgdata not in _servers:
        # pgserver's own lock: no other process joins or leaves while the list is mended.
        with PostgresServer._lock:
            drop_stale_handles(pgdata)
        _servers[pgdata] = get_server(pgdata, cleanup_mode="stop")
        log.info("embedded_postgres.started", data_dir=str(pgdata))
    return f"postgresql+asyncpg://postgres@/postgres?host={pgdata}"


def stop_postgres() -> None:
    """Leave every embedded server this process joined; the last process out stops it."""
    while _servers:
        pgdata, server = _servers.popitem()
        with contextlib.suppress(Exception):
            server._cleanup()
            log.info("embedded_postgres.left", data_dir=str(pgdata))


def service_url(superuser_url: str, role: str = SERVICE_ROLE) -> str:
    """The embedded server's URL for ``role`` (local connections are trusted: no password)."""
    return superuser_url.replace("://postgres@", f"://{role}@", 1)
