"""Long-lived resources of the API process, opened in the lifespan and shared by requests."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import structlog
from arq.connections import ArqRedis, RedisSettings, create_pool
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from nscl_api.auth.cache import CallerCache
from nscl_api.auth.tokens import KeyRing
from nscl_api.rollups.published import PublishedRollups
from nscl_domain import embedded, schema
from nscl_domain.clock import Clock, utcnow
from nscl_domain.composition.process import (
    Process,
    open_engine,
    open_process,
    unit_of_work_factory,
)
from nscl_domain.composition.registry import DEFAULT_REGISTRY
from nscl_domain.composition.seed import load_seed
from nscl_domain.db import create_sessionmaker
from nscl_domain.identity import SYSTEM, Role
from nscl_domain.identity import service as identity
from nscl_domain.identity.sealing import KeySealer
from nscl_domain.identity.service import SecretChecker
from nscl_domain.jobs.queue import ArqJobQueue
from nscl_domain.jobs.registry import JobRegistry
from nscl_domain.offload import ProcessPool
from nscl_domain.settings import Settings
from nscl_domain.uow import UnitOfWork

log = structlog.get_logger(__name__)

# A token naming a key this process does not know reloads the ring at most this often
# (a key rotated in elsewhere, before the poll sees it); the poll does the rest.
KEY_RELOAD_INTERVAL_SECONDS = 10.0


@dataclass
class Resources:
    settings: Settings
    database_url: str
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: ArqRedis
    keys: KeyRing
    registry: JobRegistry = field(default_factory=lambda: DEFAULT_REGISTRY)
    callers: CallerCache = field(default_factory=CallerCache)
    rollups: PublishedRollups = field(default_factory=PublishedRollups)
    secrets: SecretChecker = field(default_factory=SecretChecker)
    # Uploads are parsed here, off the event loop; no process starts until the first upload.
    parsers: ProcessPool = field(default_factory=lambda: upload_parsers(Settings.model_construct()))
    clock: Clock = utcnow
    _keys_loaded_at: float = 0.0
    _keys_version: tuple[object, ...] | None = None

    async def reload_keys(self) -> bool:
        """A token names a key unknown here: look for a rotation now rather than at the next
        poll (throttled); say whether the ring changed."""
        if time.monotonic() - self._keys_loaded_at < KEY_RELOAD_INTERVAL_SECONDS:
            return False
        self._keys_loaded_at = time.monotonic()
        return await self.refresh_keys()

    async def refresh_keys(self) -> bool:
        """Reload the key ring if a key was added or retired anywhere; say whether it was."""
        version = await identity.signing_key_version(self.new_uow())
        if version == self._keys_version:
            return False
        await self._load_keys(version)
        return True

    async def _load_keys(self, version: tuple[object, ...]) -> None:
        # The version was read before the keys: a change between the two reads makes the
        # next poll load again rather than be missed.
        keys = await identity.signing_keys(self.new_uow())
        # A new ring also starts with an empty cache of verified tokens, so tokens of a
        # retired key stop being accepted at once.
        self.keys = KeyRing(
            keys,
            max_lifetime_seconds=self.settings.token_ttl_seconds,
            sealer=KeySealer.from_settings(self.settings),
        )
        self._keys_version = version
        log.info("keys.loaded", kids=sorted(self.keys.kids))

    async def watch_keys(self) -> None:
        """Poll the key table for the life of the process, so every process sees a rotation
        or a retirement within ``key_ring_poll_seconds``."""
        while True:
            await asyncio.sleep(self.settings.key_ring_poll_seconds)
            try:
                await self.refresh_keys()
            except Exception:
                # A database hiccup must not end the watch; the next poll tries again.
                log.warning("keys.poll_failed", exc_info=True)

    @property
    def queue(self) -> ArqJobQueue:
        return ArqJobQueue(self.redis, self.settings.queue_name)

    def new_uow(self) -> UnitOfWork:
        return unit_of_work_factory(self.settings, self.sessionmaker, self.queue, self.clock)

    @property
    def process(self) -> Process:
        """This process's wiring, as the domain's composition root describes it."""
        return Process(
            settings=self.settings,
            engine=self.engine,
            sessionmaker=self.sessionmaker,
            queue=self.queue,
            registry=self.registry,
            clock=self.clock,
        )


class Companion(Protocol):
    """What runs beside the API in its process when there is no Redis to share (the
    embedded default): an in-memory queue and the worker on it. The entry points supply
    it (the worker package's ``InProcessWorker``), so this package imports no worker."""

    def redis(self) -> ArqRedis:
        """The in-memory Redis both sides use."""
        ...

    def run(
        self, settings: Settings, database_url: str, redis: ArqRedis, process: Process
    ) -> AbstractAsyncContextManager[None]:
        """Run the worker while the block runs; its exit closes ``redis``."""
        ...


def upload_parsers(settings: Settings) -> ProcessPool:
    """The pool of processes that parse uploaded spreadsheets, as the settings size it."""
    # One second over the parse's own time limit: the parser stops itself and answers
    # first; the kill is for a parse that cannot.
    return ProcessPool(
        settings.upload_parsers,
        timeout_seconds=settings.upload_parse_seconds + 1,
        wait_seconds=settings.upload_wait_seconds,
    )


async def resolve_database_url(settings: Settings) -> str:
    """Return the configured database, or start the embedded one, migrate and seed it.

    The embedded server's superuser migrates and seeds; the service gets the URL of a
    role that owns nothing (``embedded.SERVICE_ROLE``), as in production.
    """
    if settings.database_url is not None:
        return str(settings.database_url)
    url = await asyncio.to_thread(embedded.start_postgres, settings.data_dir)
    await asyncio.to_thread(schema.upgrade, url)
    await schema.grant_role(url, embedded.SERVICE_ROLE, create_role=True)
    if settings.seed_on_start:
        engine = open_engine(settings, url, pooled=False)
        try:
            sessionmaker = create_sessionmaker(engine)
            async with sessionmaker() as session:
                await load_seed(session)
                await session.commit()
            await bootstrap_dev_client(sessionmaker, settings.data_dir)
        finally:
            await engine.dispose()
    return embedded.service_url(url)


DEV_CLIENT_ID = "dev-admin"


async def bootstrap_dev_client(
    sessionmaker: async_sessionmaker[AsyncSession], data_dir: Path
) -> Path:
    """Give the embedded default a client with every role; its secret goes to a private file.

    Only the embedded default does this, so that `make run` can be tried at once; a
    configured database gets its clients from `nscl clients create`.
    """
    path = data_dir / "dev-client.json"
    existing = {v.client.client_id for v in await identity.list_clients(UnitOfWork(sessionmaker))}
    if DEV_CLIENT_ID in existing and path.exists():
        return path
    if DEV_CLIENT_ID in existing:
        _, secret = await identity.rotate_secret(UnitOfWork(sessionmaker), SYSTEM, DEV_CLIENT_ID)
    else:
        _, secret = await identity.create_client(
            UnitOfWork(sessionmaker),
            SYSTEM,
            client_id=DEV_CLIENT_ID,
            name="Development client of the embedded default",
            # Today's DOST: Bắc Kạn's ended with the 2025 merger, and a client acts for its
            # unit only while the unit exists.
            unit="tn-dost",
            roles=[role.value for role in Role],
        )
    path.write_text(
        json.dumps({"client_id": DEV_CLIENT_ID, "client_secret": secret}, indent=2) + "\n"
    )
    path.chmod(0o600)
    log.info("dev_client.ready", client_id=DEV_CLIENT_ID, credentials_file=str(path))
    return path


async def connect_redis(settings: Settings, companion: Companion | None = None) -> ArqRedis:
    if settings.redis_url is None:
        if companion is None:
            raise RuntimeError(
                "without NSCL_REDIS_URL the worker runs inside the API: start it through an "
                "entry point (`nscl serve` or `uvicorn nscl_api.asgi:app`)"
            )
        return companion.redis()
    return await create_pool(RedisSettings.from_dsn(str(settings.redis_url)))


@contextlib.asynccontextmanager
async def open_resources(
    settings: Settings, companion: Companion | None = None
) -> AsyncIterator[Resources]:
    """Open the database and Redis; on the in-memory Redis, run ``companion`` (the worker)
    in this process."""
    settings.refuse_unsafe_production(signs_tokens=True)
    database_url = await resolve_database_url(settings)
    redis = await connect_redis(settings, companion)
    process = open_process(settings, database_url)
    engine, sessionmaker = process.engine, process.sessionmaker
    async with engine.connect() as conn:
        risks = await schema.connected_role_risks(conn)
    if risks:
        log.warning(
            "database.service_role_can_bypass_audit",
            risks=risks,
            hint="connect as a role that owns nothing; see NSCL_MIGRATION_DATABASE_URL",
        )
    await identity.ensure_signing_key(UnitOfWork(sessionmaker), KeySealer.from_settings(settings))
    resources = Resources(
        settings=settings,
        database_url=database_url,
        engine=engine,
        sessionmaker=sessionmaker,
        redis=redis,
        keys=KeyRing([]),
        callers=CallerCache(settings.auth_cache_seconds),
        secrets=SecretChecker(
            concurrency=settings.auth_hash_concurrency,
            wait_seconds=settings.auth_hash_wait_seconds,
        ),
        parsers=upload_parsers(settings),
    )
    await resources.refresh_keys()
    beside: AbstractAsyncContextManager[None] | None = None
    key_watch = asyncio.create_task(resources.watch_keys(), name="nscl-key-watch")
    try:
        if settings.uses_embedded_redis and companion is not None:
            beside = companion.run(settings, database_url, redis, resources.process)
            await beside.__aenter__()
        yield resources
    finally:
        key_watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await key_watch
        resources.parsers.close()
        if beside is not None:
            await beside.__aexit__(None, None, None)
        else:
            await redis.aclose()
        await engine.dispose()
