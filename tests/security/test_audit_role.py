"""The service role cannot change the audit trail, nor switch off what keeps it and frozen rows.

Two service roles are tried, each set up by the code a shipped configuration runs: the
production shape (deploy/postgres-roles.sql creates an owner and a service role, `nscl db
upgrade` migrates as the owner and grants the service role), and the embedded default's
(the superuser migrates, `schema.grant_role(..., create_role=True)` makes the role; the
test harness's app role is made that way).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from typer.testing import CliRunner

from nscl_api.cli import app
from nscl_domain import schema
from nscl_domain.db import create_engine
from tests.conftest import (
    IN_CI,
    SERVICE_ROLE,
    Services,
    _admin_execute,
    drop_database,
    recreate_database,
)

PROD_DB = f"nscl_roles_{os.getpid()}"
PROD_OWNER = f"nscl_owner_{os.getpid()}"
PROD_APP = f"nscl_app_prod_{os.getpid()}"
ROLES_SQL = os.path.join(os.path.dirname(__file__), "..", "..", "deploy", "postgres-roles.sql")

# Refused by privileges ("permission denied") or ownership ("must be owner"), never reaching
# the trigger: the service role has no way around them.
REFUSED = r"permission denied|must be owner"

AUDIT_BYPASSES = [
    "UPDATE audit_event SET action = 'nothing.happened'",
    "DELETE FROM audit_event",
    "TRUNCATE audit_event",
    "ALTER TABLE audit_event DISABLE TRIGGER ALL",
    "ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only",
    "SET session_replication_role = replica",
    "SET LOCAL session_replication_role = replica",
    "DROP TRIGGER audit_event_append_only ON audit_event",
    "DROP TRIGGER audit_event_no_truncate ON audit_event",
    "ALTER TABLE audit_event OWNER TO CURRENT_USER",
    "DROP TABLE audit_event",
    "DROP TABLE audit_event CASCADE",
    "ALTER TABLE audit_event RENAME TO audit_event_old",
    "CREATE OR REPLACE FUNCTION audit_event_refuse_change() RETURNS trigger "
    "LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
    "DROP FUNCTION audit_event_refuse_change() CASCADE",
    "ALTER FUNCTION audit_event_refuse_change() OWNER TO CURRENT_USER",
    "CREATE TRIGGER audit_event_extra AFTER INSERT ON audit_event "
    "FOR EACH ROW EXECUTE FUNCTION audit_event_refuse_change()",
    # A table of its own in the schema (to shadow or copy the trail) is refused too.
    "CREATE TABLE audit_event_copy (id uuid)",
    "CREATE SCHEMA shadow",
]
# Tables whose written rows triggers freeze (submitted reports, plans, rollup runs, dossiers);
# the test tries every trigger of the schema, these must be among them.
FROZEN_TABLES = {
    "report_version",
    "indicator_value",
    "plan_version",
    "rollup_run",
    "budget_dossier",
}


@dataclass(frozen=True)
class Roles:
    """A database's service role and its owner, by URL."""

    service_url: str
    owner_url: str
    service_role: str


def _with_user(url: str, user: str) -> str:
    return url.replace("://postgres@", f"://{user}:secret@", 1)


@pytest.fixture(scope="module")
def production_roles(services: Services) -> Iterator[Roles]:
    """A database set up as compose and Kubernetes set one up."""
    psql = shutil.which("psql")
    if psql is None or services.embedded:
        message = "needs psql and the machine's PostgreSQL to run deploy/postgres-roles.sql"
        if IN_CI:  # CI has both: a missing one is a broken machine, not a reason to skip
            pytest.fail(message)
        pytest.skip(message)
    admin = services.database_url("postgres")
    recreate_database(services, PROD_DB)
    _admin_execute(
        services, f'DROP ROLE IF EXISTS "{PROD_APP}"', f'DROP ROLE IF EXISTS "{PROD_OWNER}"'
    )
    host = urlsplit(admin.replace("+asyncpg", ""))
    subprocess.run(
        [
            psql,
            "-h", str(host.hostname), "-p", str(host.port or 5432), "-U", "postgres",
            "-d", "postgres", "-q", "-v", "ON_ERROR_STOP=1",
            "-v", f"db={PROD_DB}",
            "-v", f"owner={PROD_OWNER}", "-v", "owner_password=secret",
            "-v", f"app={PROD_APP}", "-v", "app_password=secret",
            "-f", ROLES_SQL,
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    roles = Roles(
        service_url=_with_user(services.database_url(PROD_DB), PROD_APP),
        owner_url=_with_user(services.database_url(PROD_DB), PROD_OWNER),
        service_role=PROD_APP,
    )
    upgraded = CliRunner().invoke(
        app,
        ["db", "upgrade"],
        env={
            "NSCL_DATABASE_URL": roles.service_url,
            "NSCL_MIGRATION_DATABASE_URL": roles.owner_url,
            "NSCL_LOG_LEVEL": "WARNING",
        },
    )
    assert upgraded.exit_code == 0, upgraded.output
    assert f"granted the service role {PROD_APP}" in upgraded.output
    yield roles
    drop_database(services, PROD_DB)
    _admin_execute(
        services, f'DROP ROLE IF EXISTS "{PROD_APP}"', f'DROP ROLE IF EXISTS "{PROD_OWNER}"'
    )


@pytest.fixture(scope="module")
def embedded_roles(database_url: str, service_database_url: str) -> Roles:
    """The test database: migrated by the superuser, served as a role made like the embedded one."""
    return Roles(
        service_url=service_database_url, owner_url=database_url, service_role=SERVICE_ROLE
    )


@pytest.fixture(params=["production", "embedded"])
def roles(request: pytest.FixtureRequest) -> Roles:
    return request.getfixturevalue(f"{request.param}_roles")  # type: ignore[no-any-return]


@pytest.fixture
async def as_service(roles: Roles) -> AsyncIterator[AsyncConnection]:
    """A connection as the service role; what it does is rolled back."""
    engine = create_engine(roles.service_url, pooled=False)
    async with engine.connect() as conn:
        outer = await conn.begin()
        yield conn
        await outer.rollback()
    await engine.dispose()


async def _insert_event(conn: AsyncConnection) -> uuid.UUID:
    event_id = uuid.uuid4()
    await conn.execute(
        text(
            "INSERT INTO audit_event (id, client_id, action, object_type, object_id) "
            "VALUES (:id, 'security-test', 'security.tested', 'test', 'x')"
        ),
        {"id": event_id},
    )
    return event_id


async def _refused(conn: AsyncConnection, statement: str) -> str:
    with pytest.raises(DBAPIError) as refused:
        async with conn.begin_nested():
            await conn.execute(text(statement))
    return str(refused.value.orig)


async def test_service_role_is_no_superuser_and_owns_nothing(
    roles: Roles, as_service: AsyncConnection
) -> None:
    me = (
        await as_service.execute(
            text(
                "SELECT current_user AS name, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls "
                "FROM pg_roles WHERE rolname = current_user"
            )
        )
    ).one()
    assert me.name == roles.service_role
    assert not me.rolsuper
    assert not me.rolcreaterole
    assert not me.rolcreatedb
    assert not me.rolbypassrls
    assert await schema.service_role_owns(as_service, roles.service_role) == []


async def test_service_role_may_read_and_append_to_the_trail(as_service: AsyncConnection) -> None:
    event_id = await _insert_event(as_service)
    found = await as_service.scalar(
        text("SELECT action FROM audit_event WHERE id = :id"), {"id": event_id}
    )
    assert found == "security.tested"
    # /ready and the worker read the schema's revision.
    assert (await schema.schema_state(as_service)).is_current


@pytest.mark.parametrize("statement", AUDIT_BYPASSES)
async def test_service_role_cannot_change_or_unprotect_the_trail(
    as_service: AsyncConnection, statement: str
) -> None:
    event_id = await _insert_event(as_service)
    message = await _refused(as_service, statement)
    assert _matches(REFUSED, message), message
    # The event is still there, unchanged, and the triggers still stand.
    assert (
        await as_service.scalar(
            text("SELECT action FROM audit_event WHERE id = :id"), {"id": event_id}
        )
        == "security.tested"
    )
    enabled = await as_service.scalar(
        text(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'audit_event'::regclass "
            "AND NOT tgisinternal AND tgenabled = 'O'"
        )
    )
    assert enabled == 2


async def test_replication_role_cannot_be_set_to_skip_the_triggers(
    as_service: AsyncConnection,
) -> None:
    await _insert_event(as_service)
    message = await _refused(as_service, "SET session_replication_role = replica")
    assert "permission denied to set parameter" in message
    assert await as_service.scalar(text("SHOW session_replication_role")) == "origin"
    assert _matches(REFUSED, await _refused(as_service, "DELETE FROM audit_event"))


async def test_service_role_cannot_unfreeze_frozen_rows(as_service: AsyncConnection) -> None:
    triggers = (
        await as_service.execute(
            text(
                "SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND NOT t.tgisinternal ORDER BY 1, 2"
            )
        )
    ).all()
    assert {table for table, _ in triggers} >= FROZEN_TABLES
    for table, trigger in triggers:
        for statement in (
            f"ALTER TABLE {table} DISABLE TRIGGER {trigger}",
            f"ALTER TABLE {table} DISABLE TRIGGER ALL",
            f"DROP TRIGGER {trigger} ON {table}",
            f"TRUNCATE {table} CASCADE",
        ):
            message = await _refused(as_service, statement)
            assert _matches(REFUSED, message), (statement, message)


async def test_the_owner_is_held_by_the_trigger(roles: Roles) -> None:
    # Privileges do not bind the owner; the trigger does, as long as nobody switches it off
    # (which is why the service is not the owner).
    engine = create_engine(roles.owner_url, pooled=False)
    async with engine.connect() as conn:
        outer = await conn.begin()
        await _insert_event(conn)
        message = await _refused(conn, "DELETE FROM audit_event")
        assert "audit_event is append-only" in message
        await outer.rollback()
    await engine.dispose()


async def test_grant_refuses_a_role_that_could_bypass_the_triggers(roles: Roles) -> None:
    engine = create_engine(roles.owner_url, pooled=False)
    async with engine.connect() as conn:
        owner = await conn.scalar(text("SELECT current_user"))
        with pytest.raises(schema.ServiceRoleError, match=r"superuser|owns"):
            await schema.grant_service_role(conn, str(owner))
        with pytest.raises(schema.ServiceRoleError, match="does not exist"):
            await schema.grant_service_role(conn, "nscl_no_such_role")
        await conn.rollback()
    await engine.dispose()


def _matches(pattern: str, message: str) -> bool:
    return re.search(pattern, message) is not None


async def test_tables_of_later_migrations_are_granted_to_the_service(roles: Roles) -> None:
    owner = create_engine(roles.owner_url, pooled=False)
    service = create_engine(roles.service_url, pooled=False)
    try:
        async with owner.begin() as conn:
            await conn.execute(text("CREATE TABLE later_table (id serial PRIMARY KEY, v text)"))
        async with service.begin() as conn:
            await conn.execute(text("INSERT INTO later_table (v) VALUES ('x')"))
            await conn.execute(text("UPDATE later_table SET v = 'y'"))
            assert await conn.scalar(text("SELECT v FROM later_table")) == "y"
            await conn.execute(text("DELETE FROM later_table"))
    finally:
        async with owner.begin() as conn:
            await conn.execute(text("DROP TABLE IF EXISTS later_table"))
        await owner.dispose()
        await service.dispose()


def test_upgrade_with_one_role_warns_that_the_service_owns_the_schema(database_url: str) -> None:
    upgraded = CliRunner().invoke(
        app, ["db", "upgrade"], env={"NSCL_DATABASE_URL": database_url, "NSCL_LOG_LEVEL": "WARNING"}
    )
    assert upgraded.exit_code == 0, upgraded.output
    assert "warning: NSCL_MIGRATION_DATABASE_URL is not set" in upgraded.output


def test_grant_refuses_a_superuser_at_the_console(database_url: str) -> None:
    granted = CliRunner().invoke(
        app, ["db", "grant", "postgres"], env={"NSCL_DATABASE_URL": database_url}
    )
    assert granted.exit_code == 1
    assert "superuser" in granted.output


async def test_the_service_says_when_its_role_could_bypass_the_trail(roles: Roles) -> None:
    for url, risky in ((roles.service_url, False), (roles.owner_url, True)):
        engine = create_engine(url, pooled=False)
        async with engine.connect() as conn:
            assert bool(await schema.connected_role_risks(conn)) is risky
        await engine.dispose()
