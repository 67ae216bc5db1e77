"""Database schema versions: migrate up and down, and tell whether a database is current."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.ext.asyncio import AsyncConnection

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


def upgrade(database_url: str, revision: str = "head") -> None:
    """Migrate to ``revision``. Synchronous: call it outside a running event loop."""
    command.upgrade(alembic_config(database_url), revision)


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
