"""Use cases of rollups: the refresh jobs (incremental, full, nightly rebuild, national) and
what readers ask of published runs — a year, a phase against its targets, the runs kept,
and the submission versions behind a figure."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from nscl_domain.audit.repository import AuditRepository
from nscl_domain.catalogue import models as cm
from nscl_domain.catalogue.service import programme_or_404
from nscl_domain.catalogue.targets import Achievement, TargetKind, TargetSpec, judge
from nscl_domain.db import new_id
from nscl_domain.errors import FieldProblem, Invalid, NotFound
from nscl_domain.identity import Caller, Permission
from nscl_domain.jobs import JobName
from nscl_domain.jobs.models import Job
from nscl_domain.jobs.registry import JobActor, JobContext, Location, requester_of
from nscl_domain.jobs.repository import JobRepository
from nscl_domain.rollups import engine
from nscl_domain.rollups.models import TOTAL, RollupRun
from nscl_domain.rollups.triggers import refresh_args, refresh_key
from nscl_domain.uow import UnitOfWork

# A burst of acceptances makes one national refresh.
NATIONAL_DEBOUNCE = timedelta(seconds=30)


class RefreshRollupArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    programme_id: uuid.UUID
    year: int = Field(ge=2000, le=2100)
    full: bool = Field(
        default=False, description="Recompute every cell instead of those changes touch."
    )


class RebuildRollupsArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    programme_id: uuid.UUID | None = Field(
        default=None, description="One programme; every provincial programme when absent."
    )
    force: bool = Field(
        default=False, description="Recompute even the programme-years whose inputs did not change."
    )


async def _lock(session: AsyncSession, keys: Sequence[tuple[uuid.UUID, int]]) -> None:
    # Two refreshes of one programme-year run one after the other, never interleaved.
    await session.execute(
        text(
            "SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) "
            "FROM unnest(CAST(:keys AS text[])) AS k"
        ),
        {"keys": [refresh_key(programme_id, year) for programme_id, year in keys]},
    )


async def _programme(session: AsyncSession, programme_id: uuid.UUID) -> cm.Programme:
    programme = await session.get(cm.Programme, programme_id)
    if programme is None:
        raise NotFound(f"Programme {programme_id} does not exist.", code="programme_not_found")
    return programme


async def _known_programme(
    session: AsyncSession, programme_id: uuid.UUID, at: Location
) -> cm.Programme:
    programme = await session.get(cm.Programme, programme_id)
    if programme is None:
        raise Invalid(
            f"Programme {programme_id} does not exist.",
            code="unknown_programme",
            fields=[FieldProblem((*at, "programme_id"), "No such programme.")],
        )
    return programme


def check_year(programme: cm.Programme, year: int, at: Location) -> None:
    """A rollup exists only for the years the programme runs: a run for any other year
    would be published, frozen, and never read."""
    if not programme.start_year <= year <= programme.end_year:
        raise Invalid(
            f"The programme runs {programme.start_year}–{programme.end_year}.",
            code="year_outside_programme",
            fields=[FieldProblem(at, "Outside the programme.")],
        )


async def check_refresh(session: AsyncSession, args: RefreshRollupArgs, at: Location) -> None:
    """The programme exists and runs in the year (the validator of ``rollups.refresh``)."""
    programme = await _known_programme(session, args.programme_id, at)
    check_year(programme, args.year, (*at, "year"))


async def check_rebuild(session: AsyncSession, args: RebuildRollupsArgs, at: Location) -> None:
    """The programme named, if any, exists (the validator of ``rollups.rebuild``)."""
    if args.programme_id is not None:
        await _known_programme(session, args.programme_id, at)


async def refresh(ctx: JobContext, args: RefreshRollupArgs) -> dict[str, Any]:
    """Recompute a programme-year: only the cells that changed sources touch, or all of them
    (``full``, or when nothing was published yet). A no-op when the inputs did not change."""
    session = ctx.session
    programme = await _programme(session, args.programme_id)
    if programme.level == "national":
        return await refresh_national(ctx, args)
    key = (args.programme_id, args.year)
    await _lock(session, [key])
    inputs = (await engine.provincial_inputs(session, [key], with_sources=True))[key]
    published = await engine.published(session, [key])
    previous = published.get(key)
    planned = engine.plan_runs([inputs], published)
    if not planned and args.full:
        assert previous is not None
        return await _recompute_unchanged(ctx, inputs, previous)
    if not planned:
        assert previous is not None
        return {"run_id": str(previous.run_id), "unchanged": True}
    [run] = planned
    if previous is None or args.full:
        await engine.compute_full(session, [run], job_id=ctx.job_id, now=ctx.now)
        detail: dict[str, Any] = {"kind": "full"}
    else:
        counts = await engine.compute_incremental(
            session, run, previous, job_id=ctx.job_id, now=ctx.now
        )
        detail = {"kind": "incremental", **counts}
    await engine.publish(session, [run], ctx.now)
    actor = await requester_of(ctx)
    _audit_published(ctx, actor, [run], {programme.id: programme.key})
    await _schedule_national(ctx, actor, programme.parent_id, [args.year])
    return {"run_id": str(run.run_id), "unchanged": False, "sources": inputs.source_count} | detail


_CELL_COLUMNS = (
    "indicator_id, disaggregation, breakdown, value, value_sum, value_count, value_min, value_max"
)


async def _same_result(session: AsyncSession, run_id: uuid.UUID, other_id: uuid.UUID) -> bool:
    """Whether two runs hold the same cells and sections (set difference both ways)."""
    same = await session.scalar(
        text(
            "SELECT NOT EXISTS ("
            f"  (SELECT {_CELL_COLUMNS} FROM rollup_cell WHERE run_id = :a "
            f"   EXCEPT SELECT {_CELL_COLUMNS} FROM rollup_cell WHERE run_id = :b) "
            "  UNION ALL "
            f"  (SELECT {_CELL_COLUMNS} FROM rollup_cell WHERE run_id = :b "
            f"   EXCEPT SELECT {_CELL_COLUMNS} FROM rollup_cell WHERE run_id = :a)"
            ") AND (SELECT a.sections::jsonb = b.sections::jsonb "
            "       FROM rollup_run a, rollup_run b WHERE a.id = :a AND b.id = :b)"
        ),
        {"a": run_id, "b": other_id},
    )
    return bool(same)


async def _recompute_unchanged(
    ctx: JobContext, inputs: engine.Inputs, previous: engine.Published
) -> dict[str, Any]:
    """``full`` on unchanged inputs: recompute every cell anyway (a check that the published
    figures still follow from their sources), and publish only if the result differs."""
    session = ctx.session
    run = engine.NewRun(inputs, new_id(), previous.seq + 1)
    # Runs are frozen once written: an identical result is rolled back, not deleted.
    attempt = await session.begin_nested()
    await engine.compute_full(session, [run], job_id=ctx.job_id, now=ctx.now)
    if await _same_result(session, run.run_id, previous.run_id):
        await attempt.rollback()
        return {
            "run_id": str(previous.run_id),
            "unchanged": True,
            "recomputed": True,
            "published": False,
            "reason": "result identical to the published run",
            "kind": "full",
        }
    await attempt.commit()
    await engine.publish(session, [run], ctx.now)
    programme = await _programme(session, inputs.programme_id)
    actor = await requester_of(ctx)
    _audit_published(ctx, actor, [run], {programme.id: programme.key})
    await _schedule_national(ctx, actor, programme.parent_id, [inputs.year])
    return {
        "run_id": str(run.run_id),
        "unchanged": False,
        "recomputed": True,
        "published": True,
        "reason": "result differs from the published run",
        "sources": inputs.source_count,
        "kind": "full",
    }


async def refresh_national(ctx: JobContext, args: RefreshRollupArgs) -> dict[str, Any]:
    """Combine the provincial runs published for the year into the national run."""
    session = ctx.session
    key = (args.programme_id, args.year)
    await _lock(session, [key])
    inputs = await engine.national_inputs(session, args.programme_id, args.year)
    previous = await engine.published(session, [key])
    planned = engine.plan_runs([inputs], previous)
    if not planned:
        return {"run_id": str(previous[key].run_id), "unchanged": True}
    await engine.compute_national(session, planned[0], job_id=ctx.job_id, now=ctx.now)
    await engine.publish(session, planned, ctx.now)
    programme = await _programme(session, args.programme_id)
    _audit_published(ctx, await requester_of(ctx), planned, {programme.id: programme.key})
    return {"run_id": str(planned[0].run_id), "unchanged": False, "provinces": inputs.source_count}


def _audit_published(
    ctx: JobContext,
    actor: JobActor,
    runs: Sequence[engine.NewRun],
    programme_keys: dict[uuid.UUID, str],
) -> None:
    """One event per run published, in the transaction that publishes it."""
    audit = AuditRepository(ctx.session)
    for run in runs:
        audit.record(
            actor,
            "rollup.published",
            "rollup_run",
            run.run_id,
            after={
                "job_id": str(ctx.job_id),
                "requested_by": actor.client_id,
                "programme": programme_keys[run.inputs.programme_id],
                "year": run.inputs.year,
                "seq": run.seq,
                "fingerprint": run.inputs.fingerprint,
            },
        )


async def _schedule_national(
    ctx: JobContext, actor: JobActor, national_id: uuid.UUID | None, years: Sequence[int]
) -> None:
    if national_id is None:
        return
    repo = JobRepository(ctx.session)
    for year in years:
        await repo.add(
            name=JobName.REFRESH_ROLLUP,
            args=refresh_args(national_id, year),
            dedup_key=refresh_key(national_id, year),
            not_before=ctx.now + NATIONAL_DEBOUNCE,
            max_attempts=5,
            # The national run follows from the provincial change: the same client asked.
            requested_by=actor.client_id,
        )


async def rebuild(ctx: JobContext, args: RebuildRollupsArgs) -> dict[str, Any]:
    """Recompute every programme-year whose inputs changed, set-based, then the national
    runs of the years that changed. The nightly schedule runs it."""
    session = ctx.session
    stmt = select(cm.Programme).where(cm.Programme.level != "national")
    if args.programme_id is not None:
        stmt = stmt.where(cm.Programme.id == args.programme_id)
    programmes = (await session.scalars(stmt)).all()
    keys = [(p.id, year) for p in programmes for year in range(p.start_year, p.end_year + 1)]
    await _lock(session, keys)
    await _progress(ctx, stage="fingerprints", done=0, total=len(keys))
    digests = await _collect_while_digesting(ctx, keys)
    inputs = await engine.provincial_inputs(session, keys, digests=digests)
    previous = await engine.published(session, keys)
    if args.force:
        # Nothing counts as unchanged: every programme-year gets a new full run.
        previous = {k: dataclasses.replace(p, fingerprint="") for k, p in previous.items()}
    planned = engine.plan_runs(list(inputs.values()), previous)
    await _progress(ctx, stage="cells", done=0, total=len(planned))
    if ctx.sessionmaker is not None:
        await engine.compute_full_concurrently(
            session, ctx.sessionmaker, planned, job_id=ctx.job_id, now=ctx.now
        )
    else:
        await engine.compute_full(session, planned, job_id=ctx.job_id, now=ctx.now)
    await engine.drop_collected(session)
    await engine.publish(session, planned, ctx.now)
    actor = await requester_of(ctx)
    _audit_published(ctx, actor, planned, {p.id: p.key for p in programmes})
    # One national refresh per parent programme and changed year, however many provinces.
    parents = {p.id: p.parent_id for p in programmes}
    national_years: dict[uuid.UUID, set[int]] = defaultdict(set)
    for run in planned:
        parent = parents[run.inputs.programme_id]
        if parent is not None:
            national_years[parent].add(run.inputs.year)
    for parent, years in national_years.items():
        await _schedule_national(ctx, actor, parent, sorted(years))
    await _progress(ctx, stage="published", done=len(planned), total=len(planned))
    return {"programme_years": len(keys), "recomputed": len(planned)}


async def _collect_while_digesting(
    ctx: JobContext, keys: Sequence[tuple[uuid.UUID, int]]
) -> engine.Digests | None:
    """Read the sources on the job's connection while a second one digests the rest of the
    inputs (they read only committed rows); without a second connection, one after another."""
    if ctx.sessionmaker is None:
        await engine.collect_sources(ctx.session, keys)
        return None
    sessionmaker = ctx.sessionmaker

    async def digest_elsewhere() -> engine.Digests:
        async with sessionmaker() as other:
            return await engine.other_inputs_digests(other, keys)

    pending = asyncio.create_task(digest_elsewhere())
    try:
        await engine.collect_sources(ctx.session, keys)
    finally:
        digests = await pending
    return digests


async def _progress(ctx: JobContext, **progress: Any) -> None:
    if ctx.report_progress is not None:
        await ctx.report_progress(progress)


async def request_refresh(
    uow: UnitOfWork, caller: Caller, programme_ref: str, year: int | None, *, full: bool
) -> Job:
    """Queue a refresh of one programme-year, or a rebuild of every year of the programme."""
    caller.require(Permission.JOBS_RUN)
    async with uow:
        programme = await programme_or_404(uow, programme_ref)
        # The checks of the generic job route, on the same arguments.
        args: RefreshRollupArgs | RebuildRollupsArgs
        if year is None:
            args = RebuildRollupsArgs(programme_id=programme.id)
            await check_rebuild(uow.session, args, ("body",))
            job = await uow.schedule(
                JobName.REBUILD_ROLLUPS,
                args.model_dump(mode="json", exclude_defaults=True),
                dedup_key=f"rebuild:{programme.id}",
                requested_by=caller.client_id,
            )
        else:
            args = RefreshRollupArgs(programme_id=programme.id, year=year, full=full)
            await check_refresh(uow.session, args, ("body",))
            job = await uow.schedule(
                JobName.REFRESH_ROLLUP,
                args.model_dump(mode="json"),
                requested_by=caller.client_id,
            )
        uow.audit.record(
            caller, "rollup.requested", "job", job.id, after={"year": year, "full": full}
        )
        await uow.commit()
    return job


# --- reading ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    indicator: str
    disaggregation: str
    breakdown: str
    value: Decimal
    contributors: int


@dataclass(frozen=True)
class TargetProgress:
    key: str
    indicator: str
    phase: str
    text_en: str
    achievement: Achievement | None
    note: str = ""


@dataclass(frozen=True)
class RollupView:
    run: RollupRun
    programme_key: str
    published_at: Any
    cells: list[Cell]
    targets: list[TargetProgress]
    sections: dict[str, Any]


@dataclass(frozen=True)
class Filters:
    indicator: str | None = None
    unit: str | None = None  # a unit whose subtree the figures are limited to
    task_group: int | None = None


async def _published_run(
    session: AsyncSession, programme: cm.Programme, year: int
) -> tuple[RollupRun, Any]:
    found = (
        await session.execute(
            text(
                "SELECT run_id, published_at FROM rollup_publication "
                "WHERE programme_id = :programme_id AND year = :year"
            ),
            {"programme_id": programme.id, "year": year},
        )
    ).one_or_none()
    if found is None:
        raise _not_published(programme, year)
    run = await session.get(RollupRun, found.run_id)
    assert run is not None
    return run, found.published_at


def _not_published(programme: cm.Programme, year: int) -> NotFound:
    return NotFound(
        f"No rollup of {programme.key} for {year} is published yet.", code="rollup_not_found"
    )


@dataclass(frozen=True)
class PublishedState:
    """The run published for a year, and a tag of every year's publication up to it: the
    targets of a year are judged on the years before it, so their change changes it too."""

    run_id: uuid.UUID
    tag: str


async def published_state(
    uow: UnitOfWork, caller: Caller, programme_ref: str, year: int
) -> PublishedState:
    """What an ETag needs, in one indexed read."""
    caller.require(Permission.ROLLUPS_READ)
    async with uow:
        programme = await programme_or_404(uow, programme_ref)
        found = (
            await uow.session.execute(
                text(
                    "SELECT max(run_id::text) FILTER (WHERE year = :year) AS run_id, "
                    "md5(string_agg(run_id::text, ',' ORDER BY year)) AS tag "
                    "FROM rollup_publication WHERE programme_id = :programme_id AND year <= :year"
                ),
                {"programme_id": programme.id, "year": year},
            )
        ).one()
    if found.run_id is None:
        raise _not_published(programme, year)
    return PublishedState(uuid.UUID(found.run_id), found.tag)


_CELLS_OF_RUN = """
SELECT i.key AS indicator, c.disaggregation, c.breakdown, c.value, c.value_count
FROM rollup_cell c JOIN indicator i ON i.id = c.indicator_id
WHERE c.run_id = :run_id AND (CAST(:indicator AS text) IS NULL OR i.key = :indicator)
ORDER BY i.key, c.disaggregation, c.breakdown
"""

# Figures of a unit subtree, from the run's own sources: units below the breakdowns the
# cells keep are aggregated on request.
_CELLS_OF_SUBTREE = f"""
WITH RECURSIVE subtree AS (
  SELECT id FROM org_unit WHERE key = :unit
  UNION ALL
  SELECT u.id FROM org_unit u JOIN subtree s ON u.parent_id = s.id
)
SELECT i.key AS indicator, iv.disaggregation, '' AS breakdown,
       {engine.VALUE_BY_RULE} AS value, count(*) AS value_count
FROM rollup_run r
CROSS JOIN LATERAL unnest(r.source_ids, r.source_units) AS s(source_id, unit_id)
JOIN subtree ON subtree.id = s.unit_id
JOIN indicator_value iv ON iv.version_id = s.source_id
JOIN indicator i ON i.id = iv.indicator_id
WHERE r.id = :run_id AND (CAST(:indicator AS text) IS NULL OR i.key = :indicator)
GROUP BY i.key, i.aggregation_across_units, iv.disaggregation
ORDER BY i.key, iv.disaggregation
"""


async def get_rollup(
    uow: UnitOfWork, caller: Caller, programme_ref: str, year: int, filters: Filters
) -> RollupView:
    """The published rollup of a programme-year, with its targets' achievement so far."""
    caller.require(Permission.ROLLUPS_READ)
    async with uow:
        session = uow.session
        programme = await programme_or_404(uow, programme_ref)
        run, published_at = await _published_run(session, programme, year)
        params = {"run_id": run.id, "indicator": filters.indicator, "unit": filters.unit}
        if filters.unit is not None:
            await _unit_or_404(session, filters.unit)
        query = _CELLS_OF_SUBTREE if filters.unit is not None else _CELLS_OF_RUN
        cells = [
            Cell(r.indicator, r.disaggregation, r.breakdown, r.value, r.value_count)
            for r in await session.execute(text(query), params)
        ]
        targets = await _targets(session, programme, year, filters.indicator)
        return RollupView(
            run=run,
            programme_key=programme.key,
            published_at=published_at,
            cells=cells,
            targets=targets,
            sections=_filter_sections(run.sections, filters),
        )


async def _unit_or_404(session: AsyncSession, unit: str) -> None:
    if await session.scalar(select(cm.OrgUnit.id).where(cm.OrgUnit.key == unit)) is None:
        raise NotFound(f"Organisation unit {unit!r} does not exist.", code="unit_not_found")


def _filter_sections(sections: dict[str, Any], filters: Filters) -> dict[str, Any]:
    if filters.task_group is None:
        return sections
    return {
        **sections,
        "budget": [r for r in sections.get("budget", []) if r["task_group"] == filters.task_group],
        "tasks": [r for r in sections.get("tasks", []) if r["group"] == filters.task_group],
    }


_MONEY = ("estimated", "allocated", "spent")


def budget_totals(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The budget section summed over units and task groups, by funding source ×
    destination: the grain every reader of the rollup sees."""
    totals: dict[tuple[str, str | None], dict[str, Any]] = {}
    for row in rows:
        key = (row["funding_source"], row["destination"])
        total = totals.setdefault(
            key, {"funding_source": key[0], "destination": key[1], **dict.fromkeys(_MONEY, 0)}
        )
        for money in _MONEY:
            total[money] += row[money]
    return [totals[k] for k in sorted(totals, key=lambda k: (k[0], k[1] is None, k[1] or ""))]


def disaggregations_of(wanted: dict[str, Any] | None) -> list[str]:
    """Canonical disaggregation strings a target covers ({"level": ["a", "b"]} → two)."""
    if not wanted:
        return [TOTAL]
    dimensions = sorted(wanted)
    choices = [v if isinstance(v, list) else [v] for v in (wanted[d] for d in dimensions)]
    return [
        ";".join(f"{d}={v}" for d, v in zip(dimensions, combo, strict=True))
        for combo in itertools.product(*choices)
    ]


_YEARLY_TOTALS = """
SELECT pub.year, c.disaggregation, c.value
FROM rollup_publication pub
JOIN rollup_cell c ON c.run_id = pub.run_id AND c.breakdown = ''
WHERE pub.programme_id = :programme_id AND c.indicator_id = :indicator_id
  AND pub.year BETWEEN :start AND :end
"""


async def _targets(
    session: AsyncSession, programme: cm.Programme, as_of_year: int, indicator: str | None
) -> list[TargetProgress]:
    """Every target of the phases that contain the year, judged on the published years."""
    stmt = (
        select(cm.Target, cm.Indicator.key, cm.Phase)
        .join(cm.Indicator, cm.Indicator.id == cm.Target.indicator_id)
        .join(cm.Phase, cm.Phase.id == cm.Target.phase_id)
        .where(
            cm.Target.programme_id == programme.id,
            cm.Phase.start_year <= as_of_year,
            cm.Phase.end_year >= as_of_year,
        )
        .order_by(cm.Target.key)
    )
    if indicator is not None:
        stmt = stmt.where(cm.Indicator.key == indicator)
    progress = []
    for target, indicator_key, phase in (await session.execute(stmt)).all():
        wanted = set(disaggregations_of(target.disaggregation))
        values: dict[int, Decimal] = defaultdict(Decimal)
        rows = await session.execute(
            text(_YEARLY_TOTALS),
            {
                "programme_id": programme.id,
                "indicator_id": target.indicator_id,
                # The year before the phase gives the first year its growth.
                "start": phase.start_year - 1,
                "end": as_of_year,
            },
        )
        for row in rows:
            if row.disaggregation in wanted:
                values[row.year] += row.value
        spec = TargetSpec(
            kind=TargetKind(target.kind),
            value=target.value,
            min_pct=target.min_pct,
            max_pct=target.max_pct,
            phase_start=phase.start_year,
            phase_end=phase.end_year,
            approximate=target.approximate,
        )
        baseline: Decimal | None = None
        if spec.kind is TargetKind.BASELINE_PERCENTAGE:
            baseline = await _baseline_total(session, programme, target, wanted)
            if baseline is None:
                progress.append(
                    TargetProgress(
                        target.key, indicator_key, phase.key, target.text_en, None,
                        "The baseline period has no published figures to compare with.",
                    )
                )  # fmt: skip
                continue
        progress.append(
            TargetProgress(
                key=target.key,
                indicator=indicator_key,
                phase=phase.key,
                text_en=target.text_en,
                achievement=judge(spec, dict(values), as_of_year, baseline),
            )
        )
    return progress


async def _baseline_total(
    session: AsyncSession, programme: cm.Programme, target: cm.Target, wanted: set[str]
) -> Decimal | None:
    period = await session.get(cm.BaselinePeriod, target.baseline_period_id)
    if period is None:
        return None
    rows = (
        await session.execute(
            text(_YEARLY_TOTALS),
            {
                "programme_id": programme.id,
                "indicator_id": target.indicator_id,
                "start": period.start_year,
                "end": period.end_year,
            },
        )
    ).all()
    found = [row.value for row in rows if row.disaggregation in wanted]
    return sum(found, Decimal(0)) if found else None


async def list_runs(
    uow: UnitOfWork, caller: Caller, programme_ref: str, year: int
) -> tuple[Sequence[RollupRun], uuid.UUID | None]:
    """Every run of a programme-year, newest first, and which one is published."""
    caller.require(Permission.ROLLUPS_READ)
    async with uow:
        programme = await programme_or_404(uow, programme_ref)
        runs = (
            await uow.session.scalars(
                select(RollupRun)
                .where(RollupRun.programme_id == programme.id, RollupRun.year == year)
                .order_by(RollupRun.seq.desc())
            )
        ).all()
        published_id = await uow.session.scalar(
            text(
                "SELECT run_id FROM rollup_publication "
                "WHERE programme_id = :programme_id AND year = :year"
            ),
            {"programme_id": programme.id, "year": year},
        )
        return runs, published_id


@dataclass(frozen=True)
class Contribution:
    """One submission (or provincial run) behind a figure, with what it contributed."""

    source_id: uuid.UUID
    kind: str  # "report_version" or "rollup_run"
    unit: str | None
    programme: str | None
    report_id: uuid.UUID | None
    version_no: int | None
    value: Decimal


_VERSION_PROVENANCE = """
SELECT s.source_id, u.key AS unit, v.report_id, v.version_no, iv.value
FROM rollup_run r
CROSS JOIN LATERAL unnest(r.source_ids, r.source_units, r.source_breakdowns)
  AS s(source_id, unit_id, breakdown)
JOIN indicator_value iv ON iv.version_id = s.source_id
JOIN report_version v ON v.id = s.source_id
JOIN org_unit u ON u.id = s.unit_id
WHERE r.id = :run_id AND iv.indicator_id = :indicator_id
  AND iv.disaggregation = :disaggregation
  AND (:breakdown = '' OR s.breakdown = :breakdown)
ORDER BY u.key
"""

_RUN_PROVENANCE = """
SELECT s.source_id, p.key AS programme, c.value
FROM rollup_run national
CROSS JOIN LATERAL unnest(national.source_ids, national.source_breakdowns)
  AS s(source_id, breakdown)
JOIN rollup_run r ON r.id = s.source_id
JOIN programme p ON p.id = r.programme_id
JOIN rollup_cell c ON c.run_id = s.source_id AND c.breakdown = ''
JOIN indicator i ON i.id = c.indicator_id AND i.national_indicator_id = :indicator_id
WHERE national.id = :run_id AND c.disaggregation = :disaggregation
  AND (:breakdown = '' OR s.breakdown = :breakdown)
ORDER BY p.key
"""


async def provenance(
    uow: UnitOfWork,
    caller: Caller,
    programme_ref: str,
    year: int,
    *,
    indicator: str,
    disaggregation: str,
    breakdown: str,
    run_id: uuid.UUID | None,
) -> tuple[RollupRun, list[Contribution]]:
    """The accepted versions (or, nationally, the provincial runs) behind one figure of the
    published run, or of an earlier run when ``run_id`` names one."""
    caller.require(Permission.ROLLUPS_READ)
    async with uow:
        session = uow.session
        programme = await programme_or_404(uow, programme_ref)
        if run_id is None:
            run, _ = await _published_run(session, programme, year)
        else:
            found = await session.get(RollupRun, run_id)
            if found is None or (found.programme_id, found.year) != (programme.id, year):
                raise NotFound(f"Run {run_id} is not a run of that year.", code="run_not_found")
            run = found
        indicator_id = await session.scalar(
            select(cm.Indicator.id).where(
                cm.Indicator.key == indicator, cm.Indicator.programme_id == programme.id
            )
        )
        if indicator_id is None:
            raise NotFound(
                f"No indicator {indicator!r} in {programme.key}.", code="indicator_not_found"
            )
        params = {
            "run_id": run.id,
            "indicator_id": indicator_id,
            "disaggregation": disaggregation,
            "breakdown": breakdown,
        }
        if run.level == "national":
            contributions = [
                Contribution(r.source_id, "rollup_run", None, r.programme, None, None, r.value)
                for r in await session.execute(text(_RUN_PROVENANCE), params)
            ]
        else:
            contributions = [
                Contribution(
                    r.source_id, "report_version", r.unit, None, r.report_id, r.version_no, r.value
                )
                for r in await session.execute(text(_VERSION_PROVENANCE), params)
            ]
        return run, contributions


@dataclass(frozen=True)
class PhaseView:
    phase: cm.Phase
    programme_key: str
    years: dict[int, uuid.UUID]  # the published run of each year counted
    cells: list[Cell]
    targets: list[TargetProgress]


_PHASE_CELLS = """
SELECT i.key AS indicator, c.disaggregation, c.breakdown,
       CASE i.aggregation_across_time
            WHEN 'sum' THEN sum(c.value)
            WHEN 'maximum' THEN max(c.value)
            ELSE (array_agg(c.value ORDER BY pub.year DESC))[1]
       END AS value,
       sum(c.value_count) AS value_count
FROM rollup_publication pub
JOIN rollup_cell c ON c.run_id = pub.run_id
JOIN indicator i ON i.id = c.indicator_id
WHERE pub.programme_id = :programme_id AND pub.year BETWEEN :start AND :end
  AND (CAST(:indicator AS text) IS NULL OR i.key = :indicator)
GROUP BY i.key, i.aggregation_across_time, c.disaggregation, c.breakdown
ORDER BY i.key, c.disaggregation, c.breakdown
"""


async def get_phase(
    uow: UnitOfWork, caller: Caller, programme_ref: str, phase_key: str, indicator: str | None
) -> PhaseView:
    """A phase: each year's published cells combined by each indicator's rule across time
    (a sum of flows, the latest level, the maximum), and its targets judged as of now."""
    caller.require(Permission.ROLLUPS_READ)
    async with uow:
        session = uow.session
        programme = await programme_or_404(uow, programme_ref)
        phase = await session.scalar(
            select(cm.Phase).where(cm.Phase.key == phase_key, cm.Phase.programme_id == programme.id)
        )
        if phase is None:
            raise NotFound(f"No phase {phase_key!r} in {programme.key}.", code="phase_not_found")
        rows = await session.execute(
            text(
                "SELECT year, run_id FROM rollup_publication WHERE programme_id = :p "
                "AND year BETWEEN :start AND :end ORDER BY year"
            ),
            {"p": programme.id, "start": phase.start_year, "end": phase.end_year},
        )
        years: dict[int, uuid.UUID] = {row.year: row.run_id for row in rows}
        if not years:
            raise NotFound(f"No year of {phase_key} is published yet.", code="rollup_not_found")
        cells = [
            Cell(r.indicator, r.disaggregation, r.breakdown, r.value, r.value_count)
            for r in await session.execute(
                text(_PHASE_CELLS),
                {
                    "programme_id": programme.id,
                    "start": phase.start_year,
                    "end": phase.end_year,
                    "indicator": indicator,
                },
            )
        ]
        as_of = max(years)
        targets = [
            t for t in await _targets(session, programme, as_of, indicator) if t.phase == phase.key
        ]
        return PhaseView(phase, programme.key, years, cells, targets)
