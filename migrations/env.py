"""Alembic environment: async engine, the domain's metadata, PostgreSQL only."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from nscl_domain.models import metadata
from nscl_domain.settings import Settings

config = context.config


def _database_url() -> str:
    url = config.attributes.get("database_url")
    if url:
        return str(url)
    # The schema's owner migrates; the service role (NSCL_DATABASE_URL) owns nothing.
    configured = Settings().owner_database_url
    if configured is None:
        raise SystemExit(
            "set NSCL_MIGRATION_DATABASE_URL (or use `nscl db upgrade`, which knows the "
            "embedded default and grants the service role afterwards)"
        )
    return configured


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        compare_type=True,
        compare_server_default=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_async_engine(_database_url(), poolclass=NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_database_url(), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_async())
