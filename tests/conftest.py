"""Test harness: real PostgreSQL and real Redis, one migrated database, a transaction per test.

Under CI=true the machine's PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379) must
answer, or the session fails. Elsewhere, when neither answers, the harness falls back to
the embedded PostgreSQL and an in-memory Redis and says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn
from arq.connections import ArqRedis, RedisSettings, create_pool
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker

from nscl_api.auth.cache import CallerCache
from nscl_api.auth.tokens import KeyRing
from nscl_api.main import create_app
from nscl_api.resources import Resources, upload_parsers
from nscl_domain import embedded, schema
from nscl_domain.clock import utcnow
from nscl_domain.composition.seed import load_seed
from nscl_domain.db import create_engine, create_sessionmaker
from nscl_domain.identity import SYSTEM, Permission, Role, permissions_of
from nscl_domain.identity import service as identity
from nscl_domain.identity.service import Grant
from nscl_domain.offload import ProcessPool
from nscl_domain.settings import Settings
from nscl_domain.uow import UnitOfWork
from nscl_worker.inmemory import in_memory_arq_redis

IN_CI = os.environ.get("CI", "").lower() == "true"
# Where the test servers are (docs/testing.md): a superuser URL of PostgreSQL's maintenance
# database, and a Redis URL whose database number the run uses (keys of its own in it).
_PG_HOST = os.environ.get("NSCL_TEST_PG_HOST", "127.0.0.1")
TEST_DATABASE_URL = make_url(
    os.environ.get("NSCL_TEST_DATABASE_URL", f"postgresql://postgres@{_PG_HOST}:5432/postgres")
).set(drivername="postgresql+asyncpg")
TEST_REDIS_URL = os.environ.get(
    "NSCL_TEST_REDIS_URL", f"redis://{os.environ.get('NSCL_TEST_REDIS_HOST', '127.0.0.1')}:6379/0"
)
PG_HOST, PG_PORT = TEST_DATABASE_URL.host or "127.0.0.1", TEST_DATABASE_URL.port or 5432
_redis = urlsplit(TEST_REDIS_URL)
REDIS_HOST, REDIS_PORT = _redis.hostname or "127.0.0.1", _redis.port or 6379
# Every Redis key a test run writes starts with this (queues, token limits, arq's cron
# runs are named after the queue; arq's job keys carry the job's uuid): never FLUSHALL.
REDIS_PREFIX = f"nscl:test:{os.getpid()}"
# Databases of this test run only: two runs on one machine never touch each other's data.
TEST_DB = f"nscl_test_{os.getpid()}"
FUZZ_DB = f"nscl_fuzz_{os.getpid()}"
# The app connects as a role that owns nothing, granted as `nscl db upgrade` grants it; the
# harness (migrations, seed, cleanup of committed tables) works as the superuser.
SERVICE_ROLE = f"nscl_app_{os.getpid()}"
OWN_UNIT, OTHER_UNIT = "bk-doh", "bk-cho-don"
# The test clients' units are Bắc Kạn's, which ended on 2025-07-01, and a client acts only
# while its unit exists: the service under test lives in the 2024 reporting season (time
# still runs). Tests of later years, or of the 2025 mergers, set a clock of their own.
HARNESS_DAY = datetime(2024, 11, 15, 3, 0, tzinfo=UTC)
_STARTED = utcnow()


def harness_clock() -> datetime:
    """Now, moved back to the harness's day."""
    return HARNESS_DAY + (utcnow() - _STARTED)


# One client per role in a reporting department, the same in a district, and one with all.
TEST_CLIENTS: dict[str, tuple[str, list[str]]] = {
    "test-all": ("bk-dost", [r.value for r in Role]),
    **{f"test-{r.value}": (OWN_UNIT, [r.value]) for r in Role},
    **{f"test-{r.value}-other": (OTHER_UNIT, [r.value]) for r in Role},
}
# Tables that tests with real commits write to; emptied after each of them.
# Reporting tables: emptied after tests that commit reports (frozen rows refuse DELETE).
REPORTING_TABLES = (
    "webhook_attempt",
    "webhook_delivery",
    "webhook_event",
    "webhook_subscription",
    "job",
    "plan_version",
    "plan_change_request",
    "plan",
    "budget_spending",
    "budget_allocation",
    "budget_dossier",
    "estimate_line",
    "budget_estimate",
    "job_progress",
    "document_artefact",
    "national_intake",
    "rollup_publication",
    "rollup_cell",
    "rollup_run",
    "task_progress",
    "indicator_value",
    "record_figure",
    "programme_record_version",
    "programme_record",
    "report_version",
    "report",
    "reminder_sent",
    "reporting_obligation",
    "reporting_request",
    "baseline_figure",
    "idempotency_key",
)
COMMITTED_TABLES = REPORTING_TABLES


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def serve_in_thread(settings: Settings) -> Iterator[str]:
    """The real service on a loopback port, in a thread, for clients that need a socket
    (generated clients, Node, schemathesis); its base URL. The seeded clients' units
    are Bắc Kạn's (ended 2025-07-01): the service lives in the season they act in."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    app = create_app(settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        threading.Event().wait(0.05)
    assert server.started, "the service did not start"
    app.state.resources.clock = harness_clock
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@dataclass(frozen=True)
class Services:
    """Where the test session's PostgreSQL and Redis are."""

    server_url: str  # a URL of the server's maintenance database, with a {db} placeholder
    redis_url: str | None  # None: in-memory Redis
    embedded: bool

    def database_url(self, name: str) -> str:
        return self.server_url.format(db=name)

    def role_url(self, name: str, role: str) -> str:
        """The URL of database ``name`` for ``role`` (the test servers trust local logins)."""
        return embedded.service_url(self.database_url(name), role)


def _admin_execute(services: Services, *statements: str) -> None:
    async def run() -> None:
        engine = create_engine(services.database_url("postgres"), pooled=False)
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            for statement in statements:
                await conn.execute(text(statement))
        await engine.dispose()

    asyncio.run(run())


def drop_database(services: Services, name: str) -> None:
    _admin_execute(services, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def recreate_database(services: Services, name: str) -> str:
    """Drop and create a database; return its URL."""
    _admin_execute(
        services, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"'
    )
    return services.database_url(name)


@pytest.fixture(scope="session")
def services() -> Services:
    pg_up, redis_up = _reachable(PG_HOST, PG_PORT), _reachable(REDIS_HOST, REDIS_PORT)
    if pg_up and redis_up:
        return Services(
            server_url=TEST_DATABASE_URL.set(database="DBNAME")
            .render_as_string(hide_password=False)
            .replace("DBNAME", "{db}"),
            redis_url=TEST_REDIS_URL,
            embedded=False,
        )
    if IN_CI:
        pytest.fail(
            f"CI=true but PostgreSQL {'up' if pg_up else 'DOWN'} at {PG_HOST}:{PG_PORT}, "
            f"Redis {'up' if redis_up else 'DOWN'} at {REDIS_HOST}:{REDIS_PORT}: "
            "the tests need the real services",
            pytrace=False,
        )
    data_dir = Path(tempfile.mkdtemp(prefix="nscl-test-"))
    url = embedded.start_postgres(data_dir)
    print("\n*** PostgreSQL/Redis not reachable: using embedded PostgreSQL and in-memory Redis ***")
    return Services(server_url=url.replace("/postgres?", "/{db}?"), redis_url=None, embedded=True)


@pytest.fixture(scope="session", autouse=True)
def another_clients_redis_keys(services: Services) -> Iterator[None]:
    """Another client of the shared Redis holds keys in the run's database (0 by default):
    the run must leave them as they were, whatever it did to its own keys."""
    if services.redis_url is None:
        yield
        return
    import redis as sync_redis

    client = sync_redis.Redis.from_url(services.redis_url)
    keys = {
        f"someone-else:{os.getpid()}:note": b"kept",
        # Names an arq deployment of its own would use: its default queue, a job's key.
        f"someone-else:{os.getpid()}:arq:queue": b"kept",
    }
    try:
        for key, value in keys.items():
            client.set(key, value, ex=3600)
        yield
        left = {key: client.get(key) for key in keys}
        assert left == keys, f"the test run changed another client's Redis keys: {left}"
    finally:
        client.delete(*keys)
        client.close()


@pytest.fixture(scope="session")
def database_url(services: Services) -> Iterator[str]:
    url = recreate_database(services, TEST_DB)
    schema.upgrade(url)
    SEEDED_SECRETS[url] = asyncio.run(seed_database(url))
    schema.grant(url, SERVICE_ROLE, create_role=True)
    yield url
    drop_database(services, TEST_DB)
    _admin_execute(services, f'DROP ROLE IF EXISTS "{SERVICE_ROLE}"')


@pytest.fixture(scope="session")
def service_database_url(services: Services, database_url: str) -> str:
    """The test database's URL for the service role (what NSCL_DATABASE_URL names)."""
    return services.role_url(TEST_DB, SERVICE_ROLE)


async def seed_database(url: str) -> dict[str, str]:
    """Seed the catalogue, a signing key and a test client per role; return their secrets."""
    engine = create_engine(url, pooled=False)
    sessionmaker = create_sessionmaker(engine)
    async with sessionmaker() as session:
        await load_seed(session)
        await session.commit()
    await identity.ensure_signing_key(UnitOfWork(sessionmaker))
    secrets = {}
    for client_id, (unit, roles) in TEST_CLIENTS.items():
        _, secret = await identity.create_client(
            UnitOfWork(sessionmaker),
            SYSTEM,
            client_id=client_id,
            name=client_id,
            unit=unit,
            roles=roles,
        )
        secrets[client_id] = secret
    await engine.dispose()
    return secrets


@pytest.fixture(scope="session")
def settings(services: Services, database_url: str, service_database_url: str) -> Settings:
    return Settings(
        database_url=service_database_url,  # type: ignore[arg-type]  # validated from str
        redis_url=services.redis_url,  # type: ignore[arg-type]
        environment="test",
        log_json=False,
        queue_name=f"{REDIS_PREFIX}:jobs",
        seed_on_start=False,
        outbox_grace_seconds=0,
        # Webhook receivers of the tests listen on loopback; tests of refusals turn it off.
        webhook_allowed_networks=["127.0.0.0/8"],
        # Token-request limits of this run only: other runs on the shared Redis keep theirs.
        auth_redis_prefix=f"{REDIS_PREFIX}:auth",
    )


@pytest.fixture(scope="session")
def client_secrets(database_url: str, services: Services) -> dict[str, str]:
    return SEEDED_SECRETS[database_url]


SEEDED_SECRETS: dict[str, dict[str, str]] = {}


@pytest.fixture(scope="session")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(str(settings.database_url))
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def owner_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """The superuser's engine: for housekeeping the service role may not do (TRUNCATE)."""
    engine = create_engine(database_url, pooled=False)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def redis(services: Services) -> AsyncIterator[ArqRedis]:
    client = (
        await create_pool(RedisSettings.from_dsn(services.redis_url))
        if services.redis_url
        else in_memory_arq_redis()
    )
    yield client
    await client.aclose()


@pytest.fixture
async def db_connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection inside an outer transaction that is rolled back after the test."""
    async with engine.connect() as conn:
        outer = await conn.begin()
        yield conn
        await outer.rollback()


@pytest.fixture(scope="session")
async def keys(engine: AsyncEngine) -> KeyRing:
    return KeyRing(await identity.signing_keys(UnitOfWork(create_sessionmaker(engine))))


def mint_token(keys: KeyRing, client_id: str, scopes: list[str] | None = None) -> str:
    """A token as the token endpoint would issue it to a test client (no secret check)."""
    unit, role_names = TEST_CLIENTS[client_id]
    roles = frozenset(Role(r) for r in role_names)
    granted = (
        frozenset(Permission(s) for s in scopes) if scopes is not None else permissions_of(roles)
    )
    grant = Grant(client_id=client_id, unit_key=unit, roles=roles, scopes=granted)
    return keys.issue(grant, now=utcnow(), ttl_seconds=900).access_token


@pytest.fixture(scope="session")
def parsers(settings: Settings) -> Iterator[ProcessPool]:
    """The upload parsers' processes, shared by the session's tests and stopped after it."""
    pool = upload_parsers(settings)
    yield pool
    pool.close()


@pytest.fixture
async def resources(
    settings: Settings,
    engine: AsyncEngine,
    redis: ArqRedis,
    db_connection: AsyncConnection,
    keys: KeyRing,
    parsers: ProcessPool,
) -> Resources:
    """The app's resources, with every commit turned into a savepoint of the outer transaction."""
    return Resources(
        keys=keys,
        callers=CallerCache(0),
        clock=harness_clock,
        settings=settings,
        database_url=str(settings.database_url),
        engine=engine,
        sessionmaker=async_sessionmaker(
            bind=db_connection,
            join_transaction_mode="create_savepoint",
            expire_on_commit=False,
            autoflush=False,
        ),
        redis=redis,
        parsers=parsers,
    )


@pytest.fixture
async def committed_resources(
    settings: Settings,
    engine: AsyncEngine,
    owner_engine: AsyncEngine,
    redis: ArqRedis,
    keys: KeyRing,
    parsers: ProcessPool,
) -> AsyncIterator[Resources]:
    """Resources whose commits are real (for tests of concurrency and of the worker).

    The tables such tests write are emptied afterwards (the seeded catalogue stays), and
    the test queue is cleared.
    """
    await redis.delete(settings.queue_name)
    yield Resources(
        keys=keys,
        callers=CallerCache(0),
        clock=harness_clock,
        settings=settings,
        database_url=str(settings.database_url),
        engine=engine,
        sessionmaker=create_sessionmaker(engine),
        redis=redis,
        parsers=parsers,
    )
    async with owner_engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {', '.join(COMMITTED_TABLES)}"))
    await redis.delete(settings.queue_name)


@pytest.fixture(scope="session")
def shared_app(settings: Settings) -> FastAPI:
    # Building an app's routes costs far more than a request: tests share one app and give
    # it their own resources (their transaction is rolled back after each test).
    return create_app(settings)


@pytest.fixture
async def anonymous(shared_app: FastAPI, resources: Resources) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the app that sends no credentials."""
    shared_app.state.resources = resources
    transport = httpx.ASGITransport(app=shared_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://nscl.test") as http:
        yield http


@pytest.fixture
async def client(anonymous: httpx.AsyncClient, keys: KeyRing) -> httpx.AsyncClient:
    """An HTTP client of the app authenticated as a client holding every role."""
    anonymous.headers["Authorization"] = f"Bearer {mint_token(keys, 'test-all')}"
    return anonymous


@pytest.fixture
def scratch_database(services: Services) -> Iterator[str]:
    """An empty database of its own, dropped afterwards."""
    name = f"nscl_scratch_{os.getpid()}"
    url = recreate_database(services, name)
    yield url
    drop_database(services, name)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the size of the access matrix (routes × roles × own/other unit + anonymous)."""
    import sys

    matrix = sys.modules.get("tests.api.test_access_matrix")
    if matrix is not None:
        routes, roles = len(matrix.ROUTES), len(Role)
        terminalreporter.write_line(
            f"access matrix: {routes} routes × {roles} roles × 2 units + {routes} anonymous "
            f"= {matrix.MATRIX_SIZE} cells"
        )
