"""Database schema versions: migrate up and down, and tell whether a database is current."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.ext.asyncio import AsyncConnection

from nscl_domain.db import create_engine

_PACKAGE_DIR = Path(__file__).resolve().parent


def migrations_dir() -> Path:
    """Return the Alembic scripts: the repository's ``migrations/`` (installs are editable)."""
    return _PACKAGE_DIR.parents[2] / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.attributes["database_url"] = database_url
    return config


def head_revision() -> str:
    heads = ScriptDirectory.from_config(alembic_config("")).get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"migrations must have exactly one head, found {heads}")
    return heads[0]


class UnknownRevision(RuntimeError):
    """The database was migrated by a chain of revisions these migrations no longer hold."""


def upgrade(database_url: str, revision: str = "head") -> None:
    """Migrate to ``revision``. Synchronous: call it outside a running event loop."""
    try:
        command.upgrade(alembic_config(database_url), revision)
    except CommandError as exc:
        # Before the first release the migrations were squashed into one baseline: a
        # database migrated earlier names a revision that no longer exists.
        if "Can't locate revision" not in str(exc):
            raise
        raise UnknownRevision(
            f"{exc}. The database was migrated by revisions that were squashed into the "
            f"baseline {head_revision()} before the first release: recreate it (for the "
            "embedded default, remove its data folder, .nscl/ by default: `make clean`)."
        ) from exc


def downgrade(database_url: str, revision: str) -> None:
    """Migrate down to ``revision`` ("base" removes every table)."""
    command.downgrade(alembic_config(database_url), revision)


@dataclass(frozen=True)
class SchemaState:
    current: str | None
    head: str

    @property
    def is_current(self) -> bool:
        return self.current == self.head


async def schema_state(conn: AsyncConnection) -> SchemaState:
    """Read the database's revision and compare it with the code's."""
    try:
        async with conn.begin_nested():
            current = (
                await conn.execute(text("SELECT version_num FROM alembic_version"))
            ).scalar_one_or_none()
    except ProgrammingError:
        current = None
    return SchemaState(current=current, head=head_revision())


class SchemaOutOfDate(RuntimeError):
    """The database's schema is not the one the code was written for."""

    def __init__(self, state: SchemaState) -> None:
        super().__init__(
            f"database schema is at {state.current or 'nothing'}, the code needs {state.head}: "
            "run `nscl db upgrade`"
        )
        self.state = state


# --- Database roles -------------------------------------------------------------------------
#
# Two roles share a database. The owner (the migration role) owns the schema, its tables,
# triggers and functions, and runs the migrations. The service role (the API and the worker)
# owns nothing and is not a superuser, so it can neither disable the triggers that keep the
# audit trail append-only and submitted rows frozen (`ALTER TABLE ... DISABLE TRIGGER` needs
# ownership, `session_replication_role` a superuser) nor drop or replace them.

SERVICE_TABLE_PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE"
# Tables the service may read and append to, never change: privileges bind it even where a
# trigger would not (TRUNCATE, a disabled trigger).
APPEND_ONLY_TABLES = ("audit_event",)
# Tables the service only reads (`/ready` and the worker compare the schema's revision).
READ_ONLY_TABLES = ("alembic_version",)

_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class ServiceRoleError(RuntimeError):
    """The service role is missing, or could bypass what the schema protects."""


def role_identifier(role: str) -> str:
    """Return ``role`` quoted for SQL; refuse names that are not plain lower-case identifiers."""
    if not _ROLE_NAME.fullmatch(role):
        raise ServiceRoleError(f"role name {role!r}: use lower-case letters, digits and _")
    return f'"{role}"'


def grant_statements(role: str) -> list[str]:
    """The statements that give ``role`` what the service needs on the current schema.

    The default privileges are those of the role that runs them (the owner), so tables,
    sequences and functions that later migrations create are granted too; a later
    append-only table must revoke UPDATE and DELETE in its own migration (or be added to
    APPEND_ONLY_TABLES).
    """
    r = role_identifier(role)
    statements = [
        f"GRANT USAGE ON SCHEMA public TO {r}",
        f"GRANT {SERVICE_TABLE_PRIVILEGES} ON ALL TABLES IN SCHEMA public TO {r}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {r}",
        f"GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO {r}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public "
        f"GRANT {SERVICE_TABLE_PRIVILEGES} ON TABLES TO {r}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {r}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT EXECUTE ON FUNCTIONS TO {r}",
    ]
    for table in APPEND_ONLY_TABLES:
        statements.append(
            f"DO $$ BEGIN IF to_regclass('public.{table}') IS NOT NULL THEN "
            f"REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON public.{table} FROM {r}; "
            "END IF; END $$"
        )
    for table in READ_ONLY_TABLES:
        statements.append(
            f"DO $$ BEGIN IF to_regclass('public.{table}') IS NOT NULL THEN "
            f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER "
            f"ON public.{table} FROM {r}; END IF; END $$"
        )
    return statements


async def grant_service_role(conn: AsyncConnection, role: str) -> None:
    """Grant ``role`` the service's privileges (idempotent); run it as the schema's owner.

    Refuses a role that is missing, a superuser, or owns anything in the schema: such a
    role could switch the audit trail's triggers off.
    """
    found = (
        await conn.execute(
            text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = :role"),
            {"role": role},
        )
    ).first()
    if found is None:
        raise ServiceRoleError(
            f"role {role} does not exist: create it (CREATE ROLE {role} LOGIN PASSWORD ...) "
            "as in deploy/postgres-init.sh"
        )
    if found.rolsuper:
        raise ServiceRoleError(f"role {role} is a superuser: the service must not be one")
    owned = await service_role_owns(conn, role)
    if owned:
        raise ServiceRoleError(
            f"role {role} owns {', '.join(owned)}: the service must own nothing "
            "(run migrations as another role)"
        )
    for statement in grant_statements(role):
        await conn.execute(text(statement))


async def service_role_owns(conn: AsyncConnection, role: str) -> list[str]:
    """Name the relations and functions of the public schema that ``role`` owns."""
    rows = await conn.execute(
        text(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND pg_get_userbyid(c.relowner) = :role "
            "UNION ALL SELECT p.proname FROM pg_proc p "
            "JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = 'public' AND pg_get_userbyid(p.proowner) = :role "
            "UNION ALL SELECT 'schema public' FROM pg_namespace "
            "WHERE nspname = 'public' AND pg_get_userbyid(nspowner) = :role "
            "ORDER BY 1"
        ),
        {"role": role},
    )
    return list(rows.scalars())


async def connected_role_risks(conn: AsyncConnection) -> list[str]:
    """Say why the connection's role could bypass the audit trail's triggers (empty: it cannot)."""
    role = str(await conn.scalar(text("SELECT current_user")))
    risks = []
    if await conn.scalar(text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")):
        risks.append(f"{role} is a superuser")
    owned = await service_role_owns(conn, role)
    if owned:
        risks.append(f"{role} owns {len(owned)} objects of the schema (e.g. {owned[0]})")
    return risks


async def ensure_login_role(conn: AsyncConnection, role: str) -> None:
    """Create ``role`` as a plain LOGIN role if it is absent (needs CREATEROLE or superuser).

    Only the embedded default and the tests do this; elsewhere the database's administrator
    creates the role with its password (deploy/postgres-init.sh).
    """
    r = role_identifier(role)
    await conn.execute(
        text(
            f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN "
            f"CREATE ROLE {r} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
            "NOBYPASSRLS; END IF; END $$"
        )
    )


async def grant_role(owner_url: str, role: str, *, create_role: bool = False) -> None:
    """Connect as the owner and grant ``role`` the service's privileges.

    ``create_role`` first creates it as a LOGIN role without a password (the embedded
    default and the tests: their PostgreSQL trusts local connections).
    """
    engine = create_engine(owner_url, pooled=False)
    try:
        async with engine.begin() as conn:
            if create_role:
                await ensure_login_role(conn, role)
            await grant_service_role(conn, role)
    finally:
        await engine.dispose()


def grant(owner_url: str, role: str, *, create_role: bool = False) -> None:
    """`grant_role`, synchronous: call it outside a running event loop."""
    asyncio.run(grant_role(owner_url, role, create_role=create_role))
