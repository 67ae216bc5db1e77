"""`nscl worker`: the arq worker kept alive through Redis and PostgreSQL outages.

arq's worker stops for good when Redis goes away, and refuses to start while PostgreSQL
is down. This runner wraps it: when the worker stops on a connection error it logs, waits
(with a growing back-off) and builds a new worker and Redis pool, while the attempts the
old one was running finish on their own. A small HTTP endpoint says what it waits for.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from dataclasses import dataclass, field
from typing import Any

import structlog
from arq.connections import RedisSettings, create_pool
from arq.worker import Worker
from prometheus_client import CONTENT_TYPE_LATEST
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from nscl_domain.composition.metrics import pool_families, render, shared_state_families
from nscl_domain.db import create_engine
from nscl_domain.schema import SchemaOutOfDate
from nscl_domain.settings import Settings
from nscl_worker.metrics import REGISTRY, WORKER_RUNNING
from nscl_worker.settings import build_worker

log = structlog.get_logger(__name__)

FIRST_BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 10.0
CHECK_TIMEOUT_SECONDS = 2.0


@dataclass
class WorkerState:
    """What the runner is doing, for the health endpoint."""

    started_at: float = field(default_factory=time.monotonic)
    running: bool = False
    waiting_for: str | None = "start"
    last_error: str | None = None
    restarts: int = 0
    # The running worker: /metrics reads the shared state through its pools.
    worker: Worker | None = None


def _waiting_for(exc: BaseException) -> str:
    """Name the dependency an error says is missing."""
    if isinstance(exc, SchemaOutOfDate):
        return "schema upgrade"
    if isinstance(exc, RedisError):
        return "redis"
    if isinstance(exc, SQLAlchemyError | DBAPIError):
        return "database"
    module = type(exc).__module__
    if module.startswith("asyncpg"):
        return "database"
    if module.startswith("redis"):
        return "redis"
    # Redis's client wraps its socket errors; a bare one comes from connecting to PostgreSQL.
    if isinstance(exc, OSError):
        return "database"
    return "recovery"


async def run_supervised(
    settings: Settings,
    *,
    burst: bool = False,
    health_port: int | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Run the worker until ``stop`` (SIGTERM, SIGINT), rebuilding it after outages."""
    assert settings.redis_url is not None
    assert settings.database_url is not None
    stop = stop or _stop_on_signals()
    state = WorkerState()
    health = await serve_health(settings, state, health_port) if health_port else None
    draining: set[asyncio.Task[None]] = set()
    backoff = FIRST_BACKOFF_SECONDS
    try:
        while not stop.is_set():
            worker: Worker | None = None
            try:
                redis_settings = RedisSettings.from_dsn(str(settings.redis_url))
                # The runner does the retrying, with its back-off and its health answer.
                redis_settings.conn_retries = 0
                redis = await create_pool(redis_settings)
                worker = build_worker(
                    settings,
                    database_url=str(settings.database_url),
                    redis=redis,
                    burst=burst,
                    handle_signals=False,
                )
                state.worker = worker
                running = asyncio.create_task(worker.async_run(), name="arq-worker")
                stopping = asyncio.create_task(stop.wait())
                state.running, state.waiting_for = True, None
                await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
                stopping.cancel()
                if not running.done():
                    # Asked to stop: arq cancels the running attempts, which hand their
                    # jobs back at once.
                    await worker.close()
                    return
                running.result()
                await worker.close()
                return  # a burst run found the queue empty
            except Exception as exc:
                connected = worker is not None and "deps" in worker.ctx
                if connected:
                    backoff = FIRST_BACKOFF_SECONDS
                state.running = False
                state.waiting_for = _waiting_for(exc)
                state.last_error = f"{type(exc).__name__}: {exc}"[:500]
                state.restarts += 1
                log.warning(
                    "worker.waiting",
                    waiting_for=state.waiting_for,
                    error=state.last_error,
                    retry_in=backoff,
                )
                if worker is not None:
                    task = asyncio.create_task(_drain(worker))
                    draining.add(task)
                    task.add_done_callback(draining.discard)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=backoff)
                backoff = min(MAX_BACKOFF_SECONDS, backoff * 2)
    finally:
        for task in draining:
            task.cancel()
        if health is not None:
            health.close()


async def _drain(worker: Worker) -> None:
    """Let a stopped worker's running attempts finish, then release its connections."""
    with contextlib.suppress(Exception):
        await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
    deps = worker.ctx.get("deps")
    if deps is not None:
        with contextlib.suppress(Exception):
            await deps.engine.dispose()
    with contextlib.suppress(Exception):
        await worker.pool.close(close_connection_pool=True)


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def check_dependencies(settings: Settings, state: WorkerState) -> dict[str, Any]:
    """Ask Redis and PostgreSQL whether they answer, and say what the worker waits for."""

    async def redis_ok() -> bool:
        client = Redis.from_url(str(settings.redis_url), socket_timeout=CHECK_TIMEOUT_SECONDS)
        try:
            return bool(await client.ping())
        finally:
            await client.aclose()

    async def database_ok() -> bool:
        engine = create_engine(str(settings.database_url), pooled=False)
        try:
            async with engine.connect() as conn:
                return bool((await conn.scalar(text("SELECT 1"))) == 1)
        finally:
            await engine.dispose()

    async def answer(check: Any) -> bool:
        try:
            return bool(await asyncio.wait_for(check(), CHECK_TIMEOUT_SECONDS))
        except Exception:
            return False

    redis, database = await asyncio.gather(answer(redis_ok), answer(database_ok))
    waiting = [name for name, ok in (("redis", redis), ("database", database)) if not ok]
    if state.waiting_for and state.waiting_for not in waiting:
        waiting.append(state.waiting_for)
    return {
        "status": "ok" if state.running and not waiting else "waiting",
        "redis": redis,
        "database": database,
        "worker_running": state.running,
        "waiting_for": waiting,
        "last_error": state.last_error,
        "restarts": state.restarts,
        "uptime_seconds": round(time.monotonic() - state.started_at, 1),
    }


async def worker_metrics(state: WorkerState) -> bytes:
    """The worker's counters and process figures, and the shared state read through the
    running worker's pools (left out while it waits for them)."""
    WORKER_RUNNING.set(1 if state.running else 0)
    families = []
    worker = state.worker
    deps = worker.ctx.get("deps") if worker is not None else None
    if worker is not None and deps is not None and state.running:
        families = [
            *pool_families(deps.engine),
            *await shared_state_families(deps.sessionmaker, worker.pool, deps.settings.queue_name),
        ]
    return render(REGISTRY, families)


async def serve_health(settings: Settings, state: WorkerState, port: int) -> asyncio.Server:
    """Serve GET /health (200 while the process runs), GET /ready (503 while waiting) and
    GET /metrics (Prometheus)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = await asyncio.wait_for(reader.readline(), CHECK_TIMEOUT_SECONDS)
            while (await asyncio.wait_for(reader.readline(), CHECK_TIMEOUT_SECONDS)) not in (
                b"\r\n",
                b"\n",
                b"",
            ):
                pass
            parts = request_line.decode("latin-1").split()
            path = parts[1] if len(parts) > 1 else "/"
            if path == "/metrics":
                text_ = await worker_metrics(state)
                writer.write(
                    f"HTTP/1.1 200 OK\r\nContent-Type: {CONTENT_TYPE_LATEST}\r\n"
                    f"Content-Length: {len(text_)}\r\nConnection: close\r\n\r\n".encode()
                    + text_
                )
                await writer.drain()
                return
            if path not in ("/health", "/ready"):
                status, body = "404 Not Found", {"detail": "GET /health, /ready or /metrics"}
            else:
                body = await check_dependencies(settings, state)
                ready = body["status"] == "ok"
                # A liveness probe must not restart a worker that waits for Redis: it
                # would wait just the same after the restart.
                status = "200 OK" if path == "/health" or ready else "503 Service Unavailable"
            payload = json.dumps(body).encode()
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
        except Exception:
            log.debug("worker.health_request_failed", exc_info=True)
        finally:
            writer.close()

    server = await asyncio.start_server(handle, host="0.0.0.0", port=port)
    log.info("worker.health", port=port)
    return server
