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
from nscl_domain.errors import Unavailable
from nscl_domain.identity.sealing import KeySealer
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


_BEFORE_SEALING = "7e1a9c3b5d20"
_PLAIN, _PREVIOUS = (
    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
)


def _secrets(conn: Connection) -> tuple[str, str]:
    row = conn.execute(text("SELECT secret, previous_secret FROM webhook_subscription")).one()
    return str(row.secret), str(row.previous_secret)


def test_the_migration_seals_stored_webhook_secrets_and_downgrading_opens_them(
    scratch_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    schema.upgrade(scratch_database, _BEFORE_SEALING)

    def subscribe(conn: Connection) -> None:
        conn.execute(
            text(
                "INSERT INTO webhook_subscription (id, owner_client_id, url, event_types, "
                "secret, previous_secret, created_by) VALUES (gen_random_uuid(), 'operator', "
                "'https://example.org/hook', ARRAY['job.failed'], :secret, :previous, 'test')"
            ),
            {"secret": _PLAIN, "previous": _PREVIOUS},
        )
        conn.commit()

    _run_sync(scratch_database, subscribe)
    monkeypatch.setenv("NSCL_SIGNING_KEY_PASSPHRASE", "migration passphrase")
    schema.upgrade(scratch_database)

    sealed = _run_sync(scratch_database, _secrets)
    for stored, plain in zip(sealed, (_PLAIN, _PREVIOUS), strict=True):
        assert plain.removeprefix("whsec_") not in stored
        assert KeySealer(passphrase="migration passphrase").open_secret("it", stored) == plain

    # Without the passphrase the secrets cannot be opened: the downgrade refuses, unchanged.
    monkeypatch.delenv("NSCL_SIGNING_KEY_PASSPHRASE")
    with pytest.raises(Unavailable):
        schema.downgrade(scratch_database, _BEFORE_SEALING)
    assert _run_sync(scratch_database, _secrets) == sealed

    monkeypatch.setenv("NSCL_SIGNING_KEY_PASSPHRASE", "migration passphrase")
    schema.downgrade(scratch_database, _BEFORE_SEALING)
    assert _run_sync(scratch_database, _secrets) == (_PLAIN, _PREVIOUS)
