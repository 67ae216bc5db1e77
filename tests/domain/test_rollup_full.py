"""A `full` refresh recomputes every cell even when its inputs did not change, and
publishes a new run only when the result differs from the published one."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from nscl_domain.jobs.registry import JobContext
from nscl_domain.rollups import service as rollups
from tests.domain.test_rollup_incremental import YEAR, World, make_world


@pytest.fixture
async def superuser_connection(owner_engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """As db_connection, but as the superuser: only it may step past the frozen-run trigger."""
    async with owner_engine.connect() as conn:
        outer = await conn.begin()
        yield conn
        await outer.rollback()


async def _runs(world: World) -> int:
    return int(
        await world.scalar(
            "SELECT count(*) FROM rollup_run WHERE programme_id = :p AND year = :y",
            p=world.programme_id,
            y=YEAR,
        )
    )


class TestFullRefreshOfUnchangedInputs:
    async def test_recomputes_and_keeps_the_published_run_when_the_result_is_identical(
        self, db_connection: AsyncConnection
    ) -> None:
        session = AsyncSession(bind=db_connection, join_transaction_mode="create_savepoint")
        world = await make_world(session)
        await world.file("bk-doh", {(0, 0): Decimal(3)})
        context = JobContext(session=session, job_id=uuid.uuid4(), attempt=1, now=datetime.now(UTC))
        args = rollups.RefreshRollupArgs(programme_id=world.programme_id, year=YEAR)
        first = await rollups.refresh(context, args)

        again = await rollups.refresh(context, args.model_copy(update={"full": True}))

        assert again == {
            "run_id": first["run_id"],
            "unchanged": True,
            "recomputed": True,
            "published": False,
            "reason": "result identical to the published run",
            "kind": "full",
        }
        assert await _runs(world) == 1

    async def test_publishes_a_new_run_when_the_recomputed_cells_differ(
        self, superuser_connection: AsyncConnection
    ) -> None:
        session = AsyncSession(bind=superuser_connection, join_transaction_mode="create_savepoint")
        world = await make_world(session)
        await world.file("bk-doh", {(0, 0): Decimal(3)})
        context = JobContext(session=session, job_id=uuid.uuid4(), attempt=1, now=datetime.now(UTC))
        args = rollups.RefreshRollupArgs(programme_id=world.programme_id, year=YEAR)
        first = await rollups.refresh(context, args)
        # A published figure that no longer follows from its sources (as after a fix of
        # the computation): the inputs' fingerprint is the same, the result is not.
        # (Cells are frozen by a trigger; the test, a superuser, bypasses it for one update.)
        await session.execute(text("SET LOCAL session_replication_role = replica"))
        await session.execute(
            text("UPDATE rollup_cell SET value = value + 1 WHERE run_id = :r"),
            {"r": uuid.UUID(first["run_id"])},
        )
        await session.execute(text("SET LOCAL session_replication_role = origin"))

        fixed = await rollups.refresh(context, args.model_copy(update={"full": True}))

        assert fixed["recomputed"] is True
        assert fixed["published"] is True
        assert fixed["run_id"] != first["run_id"]
        assert await _runs(world) == 2
        published = await world.scalar(
            "SELECT run_id FROM rollup_publication WHERE programme_id = :p AND year = :y",
            p=world.programme_id,
            y=YEAR,
        )
        assert str(published) == fixed["run_id"]
        values = await world.scalar(
            "SELECT array_agg(DISTINCT value) FROM rollup_cell WHERE run_id = :r "
            "AND indicator_id = :i AND breakdown = '' AND disaggregation = ''",
            r=published,
            i=world.indicators[0],
        )
        assert values == [Decimal(3)]

    async def test_without_full_unchanged_inputs_stay_a_no_op(
        self, db_connection: AsyncConnection
    ) -> None:
        session = AsyncSession(bind=db_connection, join_transaction_mode="create_savepoint")
        world = await make_world(session)
        await world.file("bk-doh", {(0, 0): Decimal(3)})
        context = JobContext(session=session, job_id=uuid.uuid4(), attempt=1, now=datetime.now(UTC))
        args = rollups.RefreshRollupArgs(programme_id=world.programme_id, year=YEAR)
        first = await rollups.refresh(context, args)

        assert await rollups.refresh(context, args) == {
            "run_id": first["run_id"],
            "unchanged": True,
        }
