"""Incremental rollups equal a computation from scratch, whatever the order of events.

Hypothesis plays random sequences of accepted submissions, corrections and restructurings
(a unit moving to another kind, so into another breakdown) against the real PostgreSQL;
after every event the published incremental run must hold exactly the cells a full
computation over the same inputs gives.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from nscl_domain.db import create_sessionmaker
from nscl_domain.jobs.registry import JobContext
from nscl_domain.rollups import service as rollups
from nscl_domain.rollups.repository import RollupRepository
from nscl_domain.rollups.runs import NewRun

YEAR = 2024
UNITS = ["bk-doit", "bk-dard", "bk-doh", "bk-ba-be", "bk-na-ri", "bk-cho-moi"]
KINDS = ["department", "district_peoples_committee", "office"]
# Indicators made for the test, one per rule across units, with two disaggregations.
RULES = ["sum", "maximum", "minimum", "average"]
DISAGGREGATIONS = ["", "level=a", "level=b"]

values = st.decimals(min_value=0, max_value=10_000, places=2, allow_nan=False)
figures = st.dictionaries(
    st.tuples(st.integers(0, len(RULES) - 1), st.integers(0, len(DISAGGREGATIONS) - 1)),
    values,
    min_size=0,
    max_size=6,
)
events = st.lists(
    st.one_of(
        st.tuples(st.just("file"), st.integers(0, len(UNITS) - 1), figures),
        st.tuples(st.just("restructure"), st.integers(0, len(UNITS) - 1), st.sampled_from(KINDS)),
    ),
    min_size=1,
    max_size=8,
)


@dataclass
class World:
    session: AsyncSession
    programme_id: uuid.UUID
    regime_id: uuid.UUID
    units: dict[str, uuid.UUID]
    indicators: list[uuid.UUID]
    reports: dict[str, uuid.UUID]
    versions: dict[str, int]

    async def scalar(self, sql: str, **params: Any) -> Any:
        return await self.session.scalar(text(sql), params)

    async def file(self, unit: str, figures: dict[tuple[int, int], Decimal]) -> None:
        """The unit's report gets a new version, accepted (a submission or a correction)."""
        if unit not in self.reports:
            obligation = await self.scalar(
                "INSERT INTO reporting_obligation (id, programme_id, regime_id, unit_id, year, "
                "due_date, cutoff_date) VALUES (gen_random_uuid(), :p, :r, :u, :y, :d, :d) "
                "RETURNING id",
                p=self.programme_id, r=self.regime_id, u=self.units[unit], y=YEAR,
                d=date(YEAR, 11, 30),
            )  # fmt: skip
            self.reports[unit] = await self.scalar(
                "INSERT INTO report (id, obligation_id, unit_id, status, draft) "
                "VALUES (gen_random_uuid(), :o, :u, 'accepted', '{}') RETURNING id",
                o=obligation, u=self.units[unit],
            )  # fmt: skip
            self.versions[unit] = 0
        self.versions[unit] += 1
        version_no = self.versions[unit]
        version_id = await self.scalar(
            "INSERT INTO report_version (id, report_id, version_no, kind, content, warnings, "
            "submitted_at, submitted_by) VALUES (gen_random_uuid(), :r, :n, :k, '{}', '[]', "
            "now(), 'test') RETURNING id",
            r=self.reports[unit], n=version_no, k="submission" if version_no == 1 else "correction",
        )  # fmt: skip
        for (indicator, disaggregation), value in figures.items():
            await self.session.execute(
                text(
                    "INSERT INTO indicator_value (version_id, indicator_id, disaggregation, "
                    "unit_id, year, value, derived) VALUES (:v, :i, :d, :u, :y, :value, false)"
                ),
                {
                    "v": version_id,
                    "i": self.indicators[indicator],
                    "d": DISAGGREGATIONS[disaggregation],
                    "u": self.units[unit],
                    "y": YEAR,
                    "value": value,
                },
            )
        await self.session.execute(
            text(
                "UPDATE report SET accepted_version_no = :n, latest_version_no = :n, "
                "first_submitted_at = coalesce(first_submitted_at, now()) WHERE id = :r"
            ),
            {"n": version_no, "r": self.reports[unit]},
        )

    async def restructure(self, unit: str, kind: str) -> None:
        await self.session.execute(
            text("UPDATE org_unit SET kind = :k WHERE id = :u"), {"k": kind, "u": self.units[unit]}
        )

    async def sections(self, run_id: uuid.UUID) -> Any:
        found = await self.scalar("SELECT sections::text FROM rollup_run WHERE id = :r", r=run_id)
        return json.loads(found)

    async def cells(self, run_id: uuid.UUID) -> set[tuple[Any, ...]]:
        rows = await self.session.execute(
            text(
                "SELECT indicator_id, disaggregation, breakdown, value, value_sum, value_count, "
                "value_min, value_max FROM rollup_cell WHERE run_id = :r"
            ),
            {"r": run_id},
        )
        return {tuple(row) for row in rows}


async def make_world(session: AsyncSession) -> World:
    programme_id = await session.scalar(text("SELECT id FROM programme WHERE key = 'bac-kan-nscl'"))
    regime_id = await session.scalar(
        text("SELECT id FROM reporting_regime WHERE key = 'bk-annual'")
    )
    units = {
        key: await session.scalar(text("SELECT id FROM org_unit WHERE key = :k"), {"k": key})
        for key in UNITS
    }
    indicators = [
        await session.scalar(
            text(
                "INSERT INTO indicator (id, key, programme_id, name_vi, name_en, unit, "
                "aggregation_across_units, aggregation_across_time, disaggregations) "
                "VALUES (gen_random_uuid(), :k, :p, :name, :name, 'count', :rule, 'sum', '[]') "
                "RETURNING id"
            ),
            {"k": f"property-{rule}", "name": rule, "p": programme_id, "rule": rule},
        )
        for rule in RULES
    ]
    return World(session, programme_id, regime_id, units, indicators, {}, {})


@pytest.fixture
def engine_(engine: AsyncEngine) -> AsyncEngine:
    # The module's `engine` is the rollup engine; the database engine goes by this name.
    return engine


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sequence=events)
async def test_incremental_runs_equal_a_computation_from_scratch(
    db_connection: AsyncConnection, engine_: AsyncEngine, sequence: list[tuple[Any, ...]]
) -> None:
    other_connections = create_sessionmaker(engine_)
    savepoint = await db_connection.begin_nested()
    try:
        session = AsyncSession(bind=db_connection, join_transaction_mode="create_savepoint")
        world = await make_world(session)
        args = rollups.RefreshRollupArgs(programme_id=world.programme_id, year=YEAR)
        kinds = []
        for step, (event, unit_index, detail) in enumerate(sequence):
            unit = UNITS[unit_index]
            if event == "file":
                await world.file(unit, detail)
            else:
                await world.restructure(unit, detail)
            context = JobContext(
                session=session, job_id=uuid.uuid4(), attempt=1, now=datetime.now(UTC)
            )
            result = await rollups.refresh(context, args)
            kinds.append(result.get("kind", "unchanged"))
            published = await world.scalar(
                "SELECT run_id FROM rollup_publication WHERE programme_id = :p AND year = :y",
                p=world.programme_id, y=YEAR,
            )  # fmt: skip
            key = (world.programme_id, YEAR)
            # From scratch the way the nightly rebuild computes, sources read in PostgreSQL.
            repo = RollupRepository(session)
            await repo.collect_sources([key])
            inputs = (await repo.provincial_inputs([key]))[key]
            # Digested in Python (incremental) or in PostgreSQL (rebuild): the same print.
            fetched = (await repo.provincial_inputs([key], with_sources=True))[key]
            assert fetched.fingerprint == inputs.fingerprint
            scratch = NewRun(inputs, uuid.uuid4(), seq=10_000 + step)
            if step % 2:
                await repo.compute_full([scratch], job_id=None, now=datetime.now(UTC))
            else:  # as the rebuild job does: its sections on a second connection
                await RollupRepository(
                    session, another_session=other_connections
                ).compute_full_collected([scratch], job_id=None, now=datetime.now(UTC))
            await repo.drop_collected()
            assert await world.cells(published) == await world.cells(scratch.run_id), (
                f"after {sequence[: step + 1]}"
            )
            if step % 2:  # sections built in this transaction (the other sees none of it)
                assert await world.sections(published) == await world.sections(scratch.run_id)
        # Only the first run is computed in full; later changes are incremental or no-ops.
        assert set(kinds[1:]) <= {"incremental", "unchanged"}
    finally:
        await session.close()
        await savepoint.rollback()


async def test_an_unchanged_input_makes_no_new_run(db_connection: AsyncConnection) -> None:
    session = AsyncSession(bind=db_connection, join_transaction_mode="create_savepoint")
    world = await make_world(session)
    await world.file("bk-doh", {(0, 0): Decimal(3)})
    args = rollups.RefreshRollupArgs(programme_id=world.programme_id, year=YEAR)
    context = JobContext(session=session, job_id=uuid.uuid4(), attempt=1, now=datetime.now(UTC))
    first = await rollups.refresh(context, args)
    again = await rollups.refresh(context, args)
    assert again == {"run_id": first["run_id"], "unchanged": True}
    await world.file("bk-doh", {(0, 0): Decimal(4)})
    corrected = await rollups.refresh(context, args)
    assert corrected["kind"] == "incremental"
    assert corrected["run_id"] != first["run_id"]
    runs = await world.scalar(
        "SELECT count(*) FROM rollup_run WHERE programme_id = :p AND year = :y",
        p=world.programme_id, y=YEAR,
    )  # fmt: skip
    assert runs == 2  # both kept; the publication names the newer
