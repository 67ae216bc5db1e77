"""Migrations go up and down cleanly, and the models match them."""

from __future__ import annotations

import asyncio

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from nscl_domain import schema
from nscl_domain.db import create_engine
from nscl_domain.models import metadata


def _run_sync(url: str, fn):  # type: ignore[no-untyped-def]
    async def main():  # type: ignore[no-untyped-def]
        engine = create_engine(url, pooled=False)
        async with engine.connect() as conn:
            result = await conn.run_sync(fn)
        await engine.dispose()
        return result

    return asyncio.run(main())


def _tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


def _model_differences(conn: Connection) -> list[object]:
    context = MigrationContext.configure(
        conn, opts={"compare_type": True, "compare_server_default": True}
    )
    return list(compare_metadata(context, metadata))


def test_upgrade_downgrade_upgrade(scratch_database: str) -> None:
    schema.upgrade(scratch_database)
    assert set(metadata.tables) <= _run_sync(scratch_database, _tables)

    schema.downgrade(scratch_database, "base")
    assert _run_sync(scratch_database, _tables) == {"alembic_version"}

    schema.upgrade(scratch_database)
    assert set(metadata.tables) <= _run_sync(scratch_database, _tables)
    version = _run_sync(
        scratch_database,
        lambda c: c.execute(text("SELECT version_num FROM alembic_version")).scalar_one(),
    )
    assert version == schema.head_revision()


def test_models_match_the_migrations(database_url: str) -> None:
    assert _run_sync(database_url, _model_differences) == []


def test_one_head() -> None:
    assert schema.head_revision()


def test_a_database_from_before_the_baseline_is_told_to_be_recreated(
    scratch_database: str,
) -> None:
    def stamp_squashed_revision(conn: Connection) -> None:
        conn.execute(text("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)"))
        conn.execute(text("INSERT INTO alembic_version VALUES ('9c1f7e2a4b60')"))
        conn.commit()

    _run_sync(scratch_database, stamp_squashed_revision)
    with pytest.raises(schema.UnknownRevision, match="recreate it"):
        schema.upgrade(scratch_database)
