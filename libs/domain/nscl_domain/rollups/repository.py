"""The rollups repository: every statement of the rollups context, on one session.

Computation is set-based in PostgreSQL (the text is in nscl_domain.rollups.sql); nothing
but a handful of small rows reaches Python. A rebuild may use a second connection beside
the job's transaction, for work that reads only committed rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from nscl_domain.catalogue import models as cm
from nscl_domain.jobs.requests import refresh_key
from nscl_domain.reports.models import ReportVersion
from nscl_domain.repositories import AnotherSession
from nscl_domain.rollups import sql
from nscl_domain.rollups.models import NationalIntake, RollupCell, RollupRun
from nscl_domain.rollups.runs import (
    Digests,
    Inputs,
    NewRun,
    ProgrammeYear,
    Published,
    Source,
    fingerprint,
    source_digest,
)
from nscl_domain.rollups.views import Cell, Contribution, RunInput
from nscl_domain.types import render_quantity

# Programme-years a rebuild writes per statement: their sections pass through the worker, so
# its memory is bounded by the batch, not by the programme-years rebuilt.
REBUILD_BATCH = 64


def _keys(runs: Sequence[NewRun]) -> list[ProgrammeYear]:
    return [(run.inputs.programme_id, run.inputs.year) for run in runs]


def _arrays(programme_years: Sequence[ProgrammeYear]) -> dict[str, Any]:
    return {
        "programme_ids": [programme_id for programme_id, _ in programme_years],
        "years": [year for _, year in programme_years],
    }


class RollupRepository:
    """Runs, their cells and sources, publications, and what readers ask of them.

    ``another_session`` opens a second connection for work beside this transaction (a
    rebuild's digests and sections); without one, that work runs here, one after another.
    """

    # A job's context hands its sessionmaker over (see ``Repositories``).
    takes_another_session: ClassVar[bool] = True

    def __init__(
        self, session: AsyncSession, *, another_session: AnotherSession | None = None
    ) -> None:
        self._session = session
        self._another = another_session

    # --- computing ------------------------------------------------------------------------

    async def lock(self, programme_years: Sequence[ProgrammeYear]) -> None:
        """Hold the programme-years until the transaction ends: their refreshes queue."""
        await self._session.execute(
            text(sql.LOCK),
            {"keys": [refresh_key(programme_id, year) for programme_id, year in programme_years]},
        )

    async def refresh_waiting(self, programme_year: ProgrammeYear) -> bool:
        """Whether another refresh of the programme-year waits for its lock (behind one in
        flight): it has not read its inputs yet, so it covers every change committed now."""
        waiting: int = await self._session.scalar(
            text(sql.LOCK_WAITERS), {"key": refresh_key(*programme_year)}
        )
        return waiting > 0

    async def includes_accepted_until(self, run_id: uuid.UUID) -> datetime | None:
        """The latest acceptance of a report version the run includes."""
        found: datetime | None = await self._session.scalar(
            text(sql.INCLUDES_ACCEPTED_UNTIL), {"run_id": run_id}
        )
        return found

    async def programme(self, programme_id: uuid.UUID) -> cm.Programme | None:
        """A programme by id (from the transaction's identity map when loaded)."""
        return await self._session.get(cm.Programme, programme_id)

    async def provincial_programmes(self, programme_id: uuid.UUID | None) -> Sequence[cm.Programme]:
        """Every provincial programme, or the one named if it is provincial."""
        stmt = select(cm.Programme).where(cm.Programme.level != "national")
        if programme_id is not None:
            stmt = stmt.where(cm.Programme.id == programme_id)
        return (await self._session.scalars(stmt)).all()

    async def collect_sources(self, programme_years: Sequence[ProgrammeYear]) -> None:
        """Read the sources of programme-years once, for provincial_inputs and compute_full."""
        await self._session.execute(text(sql.COLLECT), _arrays(programme_years))
        await self._session.execute(text(sql.INDEX_COLLECTED))
        await self._session.execute(text(sql.ANALYZE_COLLECTED))

    async def collect_sources_while_digesting(
        self, programme_years: Sequence[ProgrammeYear]
    ) -> Digests | None:
        """Read the sources on this connection while a second one digests the rest of the
        inputs (they read only committed rows); without a second connection, only collect
        (provincial_inputs digests them afterwards)."""
        if self._another is None:
            await self.collect_sources(programme_years)
            return None
        another = self._another

        async def digest_elsewhere() -> Digests:
            async with another() as other:
                return await RollupRepository(other).other_inputs_digests(programme_years)

        pending = asyncio.create_task(digest_elsewhere())
        try:
            await self.collect_sources(programme_years)
        finally:
            digests = await pending
        return digests

    async def drop_collected(self) -> None:
        """Drop what collect_sources read (the transaction would drop it at its end)."""
        await self._session.execute(text(sql.DROP_COLLECTED))

    async def other_inputs_digests(self, programme_years: Sequence[ProgrammeYear]) -> Digests:
        """The digests of what a run shows besides its figures: obligations, estimates, money,
        plans."""
        return {
            (row.programme_id, row.year): (row.obligations, row.estimates, row.money, row.plans)
            for row in await self._session.execute(text(sql.DIGEST), _arrays(programme_years))
        }

    async def provincial_inputs(
        self,
        programme_years: Sequence[ProgrammeYear],
        *,
        with_sources: bool = False,
        digests: Digests | None = None,
    ) -> dict[ProgrammeYear, Inputs]:
        """Fingerprints of programme-years, set-based: with their sources fetched, or from the
        sources collect_sources read (a rebuild, which may bring the other digests along)."""
        params = _arrays(programme_years)
        if digests is None:
            digests = await self.other_inputs_digests(programme_years)
        if with_sources:
            # The sources are wanted anyway: digest them here as PostgreSQL would.
            sources: dict[ProgrammeYear, set[Source]] = {k: set() for k in programme_years}
            for row in await self._session.execute(text(sql.SOURCES), params):
                sources[(row.programme_id, row.year)].add(
                    Source(row.source_id, row.unit_id, row.breakdown)
                )
            return {
                key: Inputs(
                    programme_id=key[0],
                    year=key[1],
                    source_count=len(found),
                    fingerprint=fingerprint([], (source_digest(found), *digests[key])),
                    sources=frozenset(found),
                    other_inputs="|".join(digests[key]),
                )
                for key, found in sources.items()
            }
        inputs = {}
        for row in await self._session.execute(text(sql.BUILD_DIGEST), params):
            key = (row.programme_id, row.year)
            inputs[key] = Inputs(
                programme_id=row.programme_id,
                year=row.year,
                source_count=row.sources,
                fingerprint=fingerprint([], (row.digest, *digests[key])),
                other_inputs="|".join(digests[key]),
            )
        return inputs

    async def national_inputs(self, programme_id: uuid.UUID, year: int) -> Inputs:
        """The provincial runs published for the year, one per child programme."""
        rows = await self._session.execute(
            text(sql.NATIONAL_SOURCES), {"programme_id": programme_id, "year": year}
        )
        sources = [Source(row.run_id, None, row.breakdown) for row in rows]
        return Inputs(
            programme_id, year, len(sources), fingerprint(sources, ()), frozenset(sources)
        )

    async def published(
        self, programme_years: Sequence[ProgrammeYear]
    ) -> dict[ProgrammeYear, Published]:
        """The runs published for programme-years (those with none are absent)."""
        rows = await self._session.execute(text(sql.PUBLISHED), _arrays(programme_years))
        return {
            (row.programme_id, row.year): Published(
                row.id, row.seq, row.fingerprint, row.other_inputs, pushed=row.kind == "pushed"
            )
            for row in rows
        }

    async def _insert_runs(
        self,
        runs: Sequence[NewRun],
        *,
        level: str,
        kind: str,
        job_id: uuid.UUID | None,
        now: datetime,
        with_sections: bool,
        sections: dict[ProgrammeYear, str] | None = None,
    ) -> None:
        """Runs with their sources (fetched ones for a single run, or those collect_sources
        read) and their sections (given, or computed in the statement)."""
        keys = [(run.inputs.programme_id, run.inputs.year) for run in runs]
        fetched = runs[0].inputs.sources if len(runs) == 1 else None
        source_params: dict[str, Any]
        if fetched is not None:
            ordered = sorted(fetched, key=lambda source: source.source_id.bytes)
            sources_sql = sql.FETCHED_SOURCES
            source_params = {
                "source_ids": [source.source_id for source in ordered],
                "source_units": [source.unit_id for source in ordered],
                "source_breakdowns": [source.breakdown for source in ordered],
            }
        else:
            sources_sql = sql.COLLECTED_SOURCES
            source_params = {}
        if sections is not None:
            sections_sql = sql.GIVEN_SECTIONS
            source_params["sections"] = [sections.get(key, "{}") for key in keys]
        elif with_sections:
            sections_sql = sql.COMPUTED_SECTIONS
        else:
            sections_sql = sql.NO_SECTIONS
        await self._session.execute(
            text(sql.INSERT_RUNS + f"LEFT JOIN {sources_sql} {sections_sql}"),
            {
                **_arrays(keys),
                **source_params,
                "ids": [run.run_id for run in runs],
                "seqs": [run.seq for run in runs],
                "fingerprints": [run.inputs.fingerprint for run in runs],
                "source_counts": [run.inputs.source_count for run in runs],
                "other_inputs": [run.inputs.other_inputs for run in runs],
                "level": level,
                "kind": kind,
                "job_id": job_id,
                "now": now,
            },
        )

    async def publish(self, runs: Sequence[NewRun], now: datetime) -> None:
        """Point readers at the new runs, in the transaction that wrote them."""
        await self._session.execute(
            text(sql.PUBLISH),
            {
                **_arrays([(run.inputs.programme_id, run.inputs.year) for run in runs]),
                "run_ids": [run.run_id for run in runs],
                "now": now,
            },
        )

    async def compute_full(
        self, runs: Sequence[NewRun], *, job_id: uuid.UUID | None, now: datetime
    ) -> None:
        """Write provincial runs from scratch: sources, sections, then every cell in one pass."""
        if not runs:
            return
        await self._session.execute(text(sql.ROOMY_WORK_MEM))
        await self._insert_runs(
            runs, level="provincial", kind="full", job_id=job_id, now=now, with_sections=True
        )
        await self._session.execute(
            text(sql.CELLS.format(sources=sql.FROM_RUNS, only_keys="", only_breakdowns="")),
            {"run_ids": [run.run_id for run in runs]},
        )

    async def compute_full_collected(
        self,
        runs: Sequence[NewRun],
        *,
        job_id: uuid.UUID | None,
        now: datetime,
        batch: int | None = None,
        progress: Callable[[int], Awaitable[None]] | None = None,
    ) -> None:
        """compute_full for a rebuild, after collect_sources, a batch of programme-years at
        a time (``progress`` hears how many are written). With a second connection the
        cells of a batch are computed on this one while the other builds the next batch's
        sections from the committed inputs they read, so PostgreSQL works on both at once
        and no more than two batches' sections are ever held here."""
        if self._another is None:
            await self.compute_full(runs, job_id=job_id, now=now)
            if progress is not None:
                await progress(len(runs))
            return
        if not runs:
            return
        another = self._another

        async def sections_elsewhere(keys: list[ProgrammeYear]) -> dict[ProgrammeYear, str]:
            async with another() as other:
                return await RollupRepository(other).sections_of(keys)

        # Neighbouring programme-years have neighbouring sources (a programme's reports are
        # written together), so a batch reads one stretch of the values' index.
        ordered = sorted(runs, key=lambda run: (run.inputs.programme_id.bytes, run.inputs.year))
        size = batch or REBUILD_BATCH
        batches = [ordered[i : i + size] for i in range(0, len(ordered), size)]
        await self._session.execute(text(sql.ROOMY_WORK_MEM))
        pending = asyncio.create_task(sections_elsewhere(_keys(batches[0])))
        done = 0
        try:
            for number, current in enumerate(batches):
                keys = _keys(current)
                await self._session.execute(
                    text(
                        sql.CELLS.format(sources=sql.FROM_BUILD, only_keys="", only_breakdowns="")
                    ),
                    {**_arrays(keys), "run_ids": [run.run_id for run in current]},
                )
                built = await pending
                if number + 1 < len(batches):
                    pending = asyncio.create_task(sections_elsewhere(_keys(batches[number + 1])))
                await self._insert_runs(
                    current, level="provincial", kind="full", job_id=job_id, now=now,
                    with_sections=True, sections=built,
                )  # fmt: skip
                done += len(current)
                if progress is not None:
                    await progress(done)
        finally:
            if not pending.done():
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pending

    async def compute_full_unless_same(
        self, run: NewRun, previous_run_id: uuid.UUID, *, job_id: uuid.UUID | None, now: datetime
    ) -> bool:
        """compute_full of one run, kept only if its cells or sections differ from the
        previous run's; whether it was kept."""
        # Runs are frozen once written: an identical result is rolled back, not deleted.
        attempt = await self._session.begin_nested()
        await self.compute_full([run], job_id=job_id, now=now)
        same = await self._session.scalar(
            text(sql.SAME_RESULT), {"a": run.run_id, "b": previous_run_id}
        )
        if same:
            await attempt.rollback()
            return False
        await attempt.commit()
        return True

    async def sections_of(
        self, programme_years: Sequence[ProgrammeYear]
    ) -> dict[ProgrammeYear, str]:
        """The sections of programme-years as JSON text, ready to store."""
        await self._session.execute(text(sql.ROOMY_WORK_MEM))
        rows = await self._session.execute(text(sql.SECTIONS_AS_TEXT), _arrays(programme_years))
        return {(row.programme_id, row.year): row.sections for row in rows}

    async def compute_incremental(
        self, run: NewRun, previous: Published, *, job_id: uuid.UUID | None, now: datetime
    ) -> dict[str, int]:
        """Write a provincial run from the previous one: cells the changed sources do not
        touch are copied; the touched ones are recomputed from the new sources."""
        session = self._session
        old = {
            Source(row.source_id, row.unit_id, row.breakdown)
            for row in await session.execute(text(sql.SOURCES_OF_RUN), {"run_id": previous.run_id})
        }
        assert run.inputs.sources is not None, "an incremental run compares its sources"
        changed = old ^ run.inputs.sources
        touched_breakdowns = sorted({"", *(source.breakdown for source in changed)})
        indicators = (
            await session.scalars(
                text(sql.INDICATORS_OF_VERSIONS),
                {"version_ids": list({source.source_id for source in changed})},
            )
        ).all()
        kept = None
        if previous.other_inputs and previous.other_inputs == run.inputs.other_inputs:
            # Nothing but figures changed: keep the sections, and redo the task matrix,
            # which comes from the accepted versions.
            kept = await session.scalar(
                text(sql.SECTIONS_KEPT),
                {
                    "previous_run_id": previous.run_id,
                    **_arrays([(run.inputs.programme_id, run.inputs.year)]),
                },
            )
        await self._insert_runs(
            [run], level="provincial", kind="incremental", job_id=job_id, now=now,
            with_sections=True,
            sections={(run.inputs.programme_id, run.inputs.year): kept} if kept else None,
        )  # fmt: skip
        touched = {
            "run_id": run.run_id,
            "previous_run_id": previous.run_id,
            "touched_breakdowns": touched_breakdowns,
            "touched_indicators": list(indicators),
        }
        await session.execute(text(sql.COPY_UNTOUCHED), touched)
        if indicators:
            await session.execute(
                text(
                    sql.CELLS.format(
                        sources=sql.FROM_RUNS,
                        only_keys="AND " + sql.TOUCHED_KEYS,
                        only_breakdowns=(
                            "WHERE c.breakdown = ANY(CAST(:touched_breakdowns AS text[]))"
                        ),
                    )
                ),
                {**touched, "run_ids": [run.run_id]},
            )
        return {
            "changed_sources": len(changed),
            "touched_indicators": len(indicators),
            "touched_breakdowns": len(touched_breakdowns),
        }

    async def compute_national(
        self, run: NewRun, *, job_id: uuid.UUID | None, now: datetime
    ) -> None:
        """A national run: the published provincial totals, combined by national indicator."""
        await self._insert_runs(
            [run], level="national", kind="full", job_id=job_id, now=now, with_sections=False
        )
        await self._session.execute(text(sql.NATIONAL_CELLS), {"run_id": run.run_id})

    # --- the national intake ----------------------------------------------------------------

    async def total_cells(self, run_id: uuid.UUID) -> list[dict[str, Any]]:
        """A run's cells over every unit, by indicator key, as JSON values."""
        return [
            {
                "indicator": row.indicator,
                "disaggregation": row.disaggregation,
                "value": render_quantity(row.value),
                "value_sum": render_quantity(row.value_sum),
                "value_count": row.value_count,
                "value_min": render_quantity(row.value_min),
                "value_max": render_quantity(row.value_max),
            }
            for row in await self._session.execute(text(sql.TOTAL_CELLS), {"run_id": run_id})
        ]

    async def intake_of(self, programme_id: uuid.UUID, run_id: uuid.UUID) -> NationalIntake | None:
        """The submission of a province's run, if it was received."""
        return await self._session.scalar(
            select(NationalIntake).where(
                NationalIntake.programme_id == programme_id, NationalIntake.run_id == run_id
            )
        )

    async def latest_intake(self, programme_id: uuid.UUID, year: int) -> NationalIntake | None:
        """The programme-year's submission with the highest seq."""
        return await self._session.scalar(
            select(NationalIntake)
            .where(NationalIntake.programme_id == programme_id, NationalIntake.year == year)
            .order_by(NationalIntake.seq.desc())
            .limit(1)
        )

    async def intakes(self, programme_id: uuid.UUID, year: int) -> Sequence[NationalIntake]:
        """Every submission of a programme-year, the latest first."""
        return (
            await self._session.scalars(
                select(NationalIntake)
                .where(NationalIntake.programme_id == programme_id, NationalIntake.year == year)
                .order_by(NationalIntake.seq.desc())
            )
        ).all()

    async def indicator_ids(self, programme_id: uuid.UUID) -> dict[str, uuid.UUID]:
        """The programme's indicators by key."""
        rows = await self._session.execute(
            select(cm.Indicator.key, cm.Indicator.id).where(
                cm.Indicator.programme_id == programme_id
            )
        )
        return {row.key: row.id for row in rows}

    async def write_pushed_run(
        self,
        intake: NationalIntake,
        cells: Sequence[dict[str, Any]],
        *,
        now: datetime,
    ) -> NewRun:
        """A frozen run of the province's figures (its id the province's run id), its cells
        over every unit, and the submission that brought it; published at once."""
        seq = int(
            await self._session.scalar(
                text(sql.NEXT_SEQ), {"programme_id": intake.programme_id, "year": intake.year}
            )
        )
        self._session.add(
            RollupRun(
                id=intake.run_id,
                programme_id=intake.programme_id,
                year=intake.year,
                seq=seq,
                level="provincial",
                kind="pushed",
                fingerprint=intake.fingerprint,
                other_inputs=(
                    f"pushed run={intake.run_id} seq={intake.seq} fingerprint={intake.fingerprint}"
                ),
                computed_at=intake.computed_at,
                job_id=None,
                sources=0,
                source_ids=[],
                source_units=[],
                source_breakdowns=[],
                sections={},
            )
        )
        await self._session.flush()
        if cells:
            await self._session.execute(
                insert(RollupCell), [{"run_id": intake.run_id, **cell} for cell in cells]
            )
        self._session.add(intake)
        await self._session.flush()
        run = NewRun(
            Inputs(intake.programme_id, intake.year, 0, intake.fingerprint), intake.run_id, seq
        )
        await self.publish([run], now)
        return run

    async def run_exists(self, run_id: uuid.UUID) -> bool:
        """Whether a run has the id."""
        found = await self._session.scalar(select(RollupRun.id).where(RollupRun.id == run_id))
        return found is not None

    # --- reading --------------------------------------------------------------------------

    async def publication(
        self, programme_id: uuid.UUID, year: int
    ) -> tuple[RollupRun, datetime] | None:
        """The run published for a programme-year, and when it was published."""
        found = (
            await self._session.execute(
                text(sql.PUBLICATION), {"programme_id": programme_id, "year": year}
            )
        ).one_or_none()
        if found is None:
            return None
        run = await self._session.get(RollupRun, found.run_id)
        assert run is not None
        return run, found.published_at

    async def published_run_id(self, programme_id: uuid.UUID, year: int) -> uuid.UUID | None:
        """The id of the run published for a programme-year."""
        run_id: uuid.UUID | None = await self._session.scalar(
            text(sql.PUBLISHED_RUN_ID), {"programme_id": programme_id, "year": year}
        )
        return run_id

    async def published_state(
        self, programme_id: uuid.UUID, year: int
    ) -> tuple[uuid.UUID | None, str | None]:
        """The run published for the year, and a tag of the publications up to it: one
        indexed read."""
        found = (
            await self._session.execute(
                text(sql.PUBLISHED_STATE), {"programme_id": programme_id, "year": year}
            )
        ).one()
        return (None if found.run_id is None else uuid.UUID(found.run_id)), found.tag

    async def run(self, run_id: uuid.UUID) -> RollupRun | None:
        """A run by id."""
        return await self._session.get(RollupRun, run_id)

    async def runs(
        self,
        programme_id: uuid.UUID,
        year: int,
        *,
        report_id: uuid.UUID | None = None,
        version_no: int | None = None,
    ) -> Sequence[RollupRun]:
        """Every run of a programme-year, newest first; with ``report_id`` (and
        ``version_no``), only the runs computed from that report (that version of it)."""
        stmt = select(RollupRun).where(
            RollupRun.programme_id == programme_id, RollupRun.year == year
        )
        if report_id is not None:
            versions = select(ReportVersion.id).where(ReportVersion.report_id == report_id)
            if version_no is not None:
                versions = versions.where(ReportVersion.version_no == version_no)
            stmt = stmt.where(RollupRun.source_ids.overlap(func.array(versions.scalar_subquery())))
        return (await self._session.scalars(stmt.order_by(RollupRun.seq.desc()))).all()

    async def run_inputs(self, run_id: uuid.UUID) -> list[RunInput]:
        """What the run was computed from, each once."""
        return [
            RunInput(r.source_id, r.kind, r.unit, r.programme, r.report_id, r.version_no)
            for r in await self._session.execute(text(sql.RUN_INPUTS), {"run_id": run_id})
        ]

    async def cells(
        self, run_id: uuid.UUID, *, indicator: str | None, unit: str | None
    ) -> list[Cell]:
        """A run's cells, or (``unit``) the figures of a unit subtree from the run's own
        sources: units below the breakdowns the cells keep are aggregated on request."""
        query = sql.CELLS_OF_SUBTREE if unit is not None else sql.CELLS_OF_RUN
        params = {"run_id": run_id, "indicator": indicator, "unit": unit}
        return [
            Cell(r.indicator, r.disaggregation, r.breakdown, r.value, r.value_count)
            for r in await self._session.execute(text(query), params)
        ]

    async def unit_exists(self, key: str) -> bool:
        """Whether an organisation unit has the key."""
        found = await self._session.scalar(select(cm.OrgUnit.id).where(cm.OrgUnit.key == key))
        return found is not None

    async def targets_in_force(
        self, programme_id: uuid.UUID, year: int, indicator: str | None
    ) -> Sequence[tuple[cm.Target, str, cm.Phase]]:
        """The targets of the programme's phases that contain the year, with their
        indicator's key and their phase."""
        stmt = (
            select(cm.Target, cm.Indicator.key, cm.Phase)
            .join(cm.Indicator, cm.Indicator.id == cm.Target.indicator_id)
            .join(cm.Phase, cm.Phase.id == cm.Target.phase_id)
            .where(
                cm.Target.programme_id == programme_id,
                cm.Phase.start_year <= year,
                cm.Phase.end_year >= year,
            )
            .order_by(cm.Target.key)
        )
        if indicator is not None:
            stmt = stmt.where(cm.Indicator.key == indicator)
        return [(t, i, p) for t, i, p in (await self._session.execute(stmt)).all()]

    async def baseline_period(self, period_id: uuid.UUID | None) -> cm.BaselinePeriod | None:
        """A baseline period by id."""
        return await self._session.get(cm.BaselinePeriod, period_id)

    async def yearly_totals(
        self, programme_id: uuid.UUID, indicator_id: uuid.UUID, start: int, end: int
    ) -> list[tuple[int, str, Decimal]]:
        """An indicator's published totals (over every unit) by year and disaggregation."""
        rows = await self._session.execute(
            text(sql.YEARLY_TOTALS),
            {
                "programme_id": programme_id,
                "indicator_id": indicator_id,
                "start": start,
                "end": end,
            },
        )
        return [(row.year, row.disaggregation, row.value) for row in rows]

    async def indicator_id(self, programme_id: uuid.UUID, key: str) -> uuid.UUID | None:
        """The id of a programme's indicator by key."""
        return await self._session.scalar(
            select(cm.Indicator.id).where(
                cm.Indicator.key == key, cm.Indicator.programme_id == programme_id
            )
        )

    async def contributions(
        self,
        run: RollupRun,
        *,
        indicator_id: uuid.UUID,
        disaggregation: str,
        breakdown: str,
    ) -> list[Contribution]:
        """The accepted report and record versions (or, of a national run, the provincial
        runs) behind one figure of the run, each with what it contributed."""
        params = {
            "run_id": run.id,
            "indicator_id": indicator_id,
            "disaggregation": disaggregation,
            "breakdown": breakdown,
        }
        if run.level == "national":
            return [
                Contribution(
                    r.source_id,
                    "rollup_run",
                    None,
                    r.programme,
                    None,
                    None,
                    r.value,
                    pushed_seq=r.pushed_seq,
                    pushed_fingerprint=r.pushed_fingerprint,
                )
                for r in await self._session.execute(text(sql.RUN_PROVENANCE), params)
            ]
        return [
            Contribution(
                r.source_id,
                "report_version" if r.record_id is None else "record_version",
                r.unit,
                None,
                r.report_id,
                r.version_no,
                r.value,
                record_id=r.record_id,
                record_kind=r.record_kind,
            )
            for r in await self._session.execute(text(sql.VERSION_PROVENANCE), params)
        ]

    async def phase(self, programme_id: uuid.UUID, key: str) -> cm.Phase | None:
        """A programme's phase by key."""
        return await self._session.scalar(
            select(cm.Phase).where(cm.Phase.key == key, cm.Phase.programme_id == programme_id)
        )

    async def published_years(
        self, programme_id: uuid.UUID, start: int, end: int
    ) -> dict[int, uuid.UUID]:
        """The run published for each year of a period that has one."""
        rows = await self._session.execute(
            text(sql.PUBLISHED_YEARS), {"p": programme_id, "start": start, "end": end}
        )
        return {row.year: row.run_id for row in rows}

    async def phase_cells(
        self, programme_id: uuid.UUID, start: int, end: int, indicator: str | None
    ) -> list[Cell]:
        """Each year's published cells combined by each indicator's rule across time."""
        return [
            Cell(r.indicator, r.disaggregation, r.breakdown, r.value, r.value_count)
            for r in await self._session.execute(
                text(sql.PHASE_CELLS),
                {"programme_id": programme_id, "start": start, "end": end, "indicator": indicator},
            )
        ]


@dataclass(frozen=True)
class Freshness:
    """How far a programme-year's published rollup is behind its latest accepted report."""

    programme: str
    year: int
    latest_acceptance: datetime
    published_computed_at: datetime | None

    @property
    def lag_seconds(self) -> float:
        """0 when the published run was computed after the latest acceptance."""
        if self.published_computed_at is None:
            return float("inf")
        return max(0.0, (self.latest_acceptance - self.published_computed_at).total_seconds())


async def freshness(session: AsyncSession) -> list[Freshness]:
    """Every programme-year with an accepted report: its latest acceptance and when its
    published run was computed (None: nothing published yet)."""
    rows = await session.execute(text(sql.FRESHNESS))
    return [Freshness(*row) for row in rows]
