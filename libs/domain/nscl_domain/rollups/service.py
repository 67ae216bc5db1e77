"""Use cases of rollups: the refresh jobs (incremental, full, nightly rebuild, national) and
what readers ask of published runs — a year, a phase against its targets, the runs kept,
and the submission versions behind a figure. What happens, here; how, in the repository."""

from __future__ import annotations

import dataclasses
import itertools
import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from nscl_domain.audit.repository import AuditRepository
from nscl_domain.catalogue import models as cm
from nscl_domain.catalogue.baselines import BaselineRepository, BaselineUsed, combine
from nscl_domain.catalogue.service import check_programme_year, programme_or_404
from nscl_domain.catalogue.targets import TargetKind, TargetSpec, judge
from nscl_domain.db import new_id
from nscl_domain.errors import FieldProblem, Invalid, NotFound
from nscl_domain.identity import Caller, Permission
from nscl_domain.jobs import JobName
from nscl_domain.jobs.models import Job
from nscl_domain.jobs.registry import JobActor, JobContext, Location, Progress, requester_of
from nscl_domain.jobs.repository import JobRepository
from nscl_domain.jobs.requests import refresh_args, refresh_key
from nscl_domain.repositories import RepositorySource
from nscl_domain.rollups.models import TOTAL, RollupRun
from nscl_domain.rollups.repository import RollupRepository
from nscl_domain.rollups.runs import Inputs, NewRun, Published, plan_runs
from nscl_domain.rollups.upstream import PUSH_ATTEMPTS, push_args, push_key
from nscl_domain.rollups.views import (
    Contribution,
    Filters,
    PhaseView,
    PublishedState,
    RollupView,
    RunInput,
    TargetProgress,
)
from nscl_domain.uow import OUTBOX_HANDOVERS, UnitOfWork

# The national refresh is due at once, like the provincial ones, and coalesces the same way
# (one in flight, one trailing). A debounce here was pushed back by every provincial
# publication (the later start wins), so steady activity in any province kept the national
# run waiting indefinitely.
NATIONAL_DEBOUNCE: timedelta | None = None


def _repo(uow: UnitOfWork) -> RollupRepository:
    return uow.get(RollupRepository)


@dataclasses.dataclass(frozen=True)
class _Job:
    """What a job handler works through: the rollups, the audit trail and the outbox, all
    in the job's transaction."""

    rollups: RollupRepository
    audit: AuditRepository
    jobs: JobRepository


def _job(ctx: JobContext) -> _Job:
    # The one place a job handler gets its repositories; the context gives the rollups
    # repository a second connection (if it has one) for what reads only committed rows.
    return _Job(
        ctx.get(RollupRepository),
        ctx.get(AuditRepository),
        ctx.get(JobRepository),
    )


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
    years: list[Annotated[int, Field(ge=2000, le=2100)]] | None = Field(
        default=None,
        max_length=100,
        description="Only these years: a rebuild fanned out across workers gives each a share "
        "(programme-years are independent; each is locked by the worker computing it).",
    )


async def _programme(repo: RollupRepository, programme_id: uuid.UUID) -> cm.Programme:
    programme = await repo.programme(programme_id)
    if programme is None:
        raise NotFound(f"Programme {programme_id} does not exist.", code="programme_not_found")
    return programme


async def _known_programme(
    repo: RollupRepository, programme_id: uuid.UUID, at: Location
) -> cm.Programme:
    programme = await repo.programme(programme_id)
    if programme is None:
        raise Invalid(
            f"Programme {programme_id} does not exist.",
            code="unknown_programme",
            fields=[FieldProblem((*at, "programme_id"), "No such programme.")],
        )
    return programme


async def check_refresh(
    repositories: RepositorySource, args: RefreshRollupArgs, at: Location
) -> None:
    """The programme exists and runs in the year (the validator of ``rollups.refresh``)."""
    await _check_refresh(repositories.get(RollupRepository), args, at)


async def _check_refresh(repo: RollupRepository, args: RefreshRollupArgs, at: Location) -> None:
    programme = await _known_programme(repo, args.programme_id, at)
    check_programme_year(programme, args.year, (*at, "year"))


async def check_rebuild(
    repositories: RepositorySource, args: RebuildRollupsArgs, at: Location
) -> None:
    """The programme named, if any, exists (the validator of ``rollups.rebuild``)."""
    await _check_rebuild(repositories.get(RollupRepository), args, at)


async def _check_rebuild(repo: RollupRepository, args: RebuildRollupsArgs, at: Location) -> None:
    if args.programme_id is not None:
        await _known_programme(repo, args.programme_id, at)


# A refresh already waits behind the one in flight and will read the inputs after it: this
# one has nothing to add (the change that asked for it committed before it started).
_COALESCED: dict[str, Any] = {"unchanged": True, "coalesced": True}


async def refresh(
    ctx: JobContext, args: RefreshRollupArgs, *, upstream: bool = False
) -> dict[str, Any]:
    """Recompute a programme-year: only the cells that changed sources touch, or all of them
    (``full``, or when nothing was published yet). A no-op when the inputs did not change,
    or when the published run was pushed by the province's own instance. ``upstream``: a
    provincial publication is also sent to the national instance (through the outbox)."""
    job = _job(ctx)
    repo = job.rollups
    programme = await _programme(repo, args.programme_id)
    if programme.level == "national":
        return await _refresh_national(ctx, job, args)
    key = (args.programme_id, args.year)
    if await repo.refresh_waiting(key):
        return _COALESCED
    await repo.lock([key])
    inputs = (await repo.provincial_inputs([key], with_sources=True))[key]
    published = await repo.published([key])
    previous = published.get(key)
    if previous is not None and previous.pushed:
        return {"run_id": str(previous.run_id), "unchanged": True, "pushed": True}
    planned = plan_runs([inputs], published)
    if not planned and args.full:
        assert previous is not None
        return await _recompute_unchanged(ctx, job, inputs, previous, upstream=upstream)
    if not planned:
        assert previous is not None
        return {"run_id": str(previous.run_id), "unchanged": True}
    [run] = planned
    if previous is None or args.full:
        await repo.compute_full([run], job_id=ctx.job_id, now=ctx.now)
        detail: dict[str, Any] = {"kind": "full"}
    else:
        counts = await repo.compute_incremental(run, previous, job_id=ctx.job_id, now=ctx.now)
        detail = {"kind": "incremental", **counts}
    await repo.publish([run], ctx.now)
    actor = await requester_of(ctx)
    _audit_published(ctx, job, actor, [run], {programme.id: programme.key})
    await _schedule_national(ctx, job, actor, programme.parent_id, [args.year])
    if upstream:
        await _schedule_upstream(job, actor, [run], {programme.id: programme})
    return {"run_id": str(run.run_id), "unchanged": False, "sources": inputs.source_count} | detail


async def _recompute_unchanged(
    ctx: JobContext, job: _Job, inputs: Inputs, previous: Published, *, upstream: bool
) -> dict[str, Any]:
    """``full`` on unchanged inputs: recompute every cell anyway (a check that the published
    figures still follow from their sources), and publish only if the result differs."""
    repo = job.rollups
    run = NewRun(inputs, new_id(), previous.seq + 1)
    if not await repo.compute_full_unless_same(
        run, previous.run_id, job_id=ctx.job_id, now=ctx.now
    ):
        return {
            "run_id": str(previous.run_id),
            "unchanged": True,
            "recomputed": True,
            "published": False,
            "reason": "result identical to the published run",
            "kind": "full",
        }
    await repo.publish([run], ctx.now)
    programme = await _programme(repo, inputs.programme_id)
    actor = await requester_of(ctx)
    _audit_published(ctx, job, actor, [run], {programme.id: programme.key})
    await _schedule_national(ctx, job, actor, programme.parent_id, [inputs.year])
    if upstream:
        await _schedule_upstream(job, actor, [run], {programme.id: programme})
    return {
        "run_id": str(run.run_id),
        "unchanged": False,
        "recomputed": True,
        "published": True,
        "reason": "result differs from the published run",
        "sources": inputs.source_count,
        "kind": "full",
    }


async def _refresh_national(ctx: JobContext, job: _Job, args: RefreshRollupArgs) -> dict[str, Any]:
    """Combine the provincial runs published for the year into the national run."""
    repo = job.rollups
    key = (args.programme_id, args.year)
    if await repo.refresh_waiting(key):
        return _COALESCED
    await repo.lock([key])
    inputs = await repo.national_inputs(args.programme_id, args.year)
    previous = await repo.published([key])
    planned = plan_runs([inputs], previous)
    if not planned:
        return {"run_id": str(previous[key].run_id), "unchanged": True}
    await repo.compute_national(planned[0], job_id=ctx.job_id, now=ctx.now)
    await repo.publish(planned, ctx.now)
    programme = await _programme(repo, args.programme_id)
    _audit_published(ctx, job, await requester_of(ctx), planned, {programme.id: programme.key})
    return {"run_id": str(planned[0].run_id), "unchanged": False, "provinces": inputs.source_count}


def _audit_published(
    ctx: JobContext,
    job: _Job,
    actor: JobActor,
    runs: Sequence[NewRun],
    programme_keys: dict[uuid.UUID, str],
) -> None:
    """One event per run published, in the transaction that publishes it."""
    for run in runs:
        job.audit.record(
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
    ctx: JobContext,
    job: _Job,
    actor: JobActor,
    national_id: uuid.UUID | None,
    years: Sequence[int],
) -> None:
    if national_id is None:
        return
    for year in years:
        _hand_over_after_commit(
            job,
            await job.jobs.add(
                name=JobName.REFRESH_ROLLUP,
                args=refresh_args(national_id, year),
                dedup_key=refresh_key(national_id, year),
                not_before=ctx.now + NATIONAL_DEBOUNCE if NATIONAL_DEBOUNCE else None,
                max_attempts=5,
                # The national run follows from the provincial change: the same client asked.
                requested_by=actor.client_id,
            ),
        )


def _hand_over_after_commit(job: _Job, follow_up: Job) -> None:
    # The job runner rings the queue for it once the publishing transaction commits,
    # rather than leaving it to the next sweep.
    job.jobs.session.info.setdefault(OUTBOX_HANDOVERS, []).append(follow_up)


async def _schedule_upstream(
    job: _Job, actor: JobActor, runs: Sequence[NewRun], programmes: dict[uuid.UUID, cm.Programme]
) -> None:
    """Send each provincial publication to the national instance, through the outbox in the
    publishing transaction. One pending push per programme-year: a later publication joins
    it, and the push sends whatever run is published when it runs."""
    for run in runs:
        programme = programmes[run.inputs.programme_id]
        if programme.parent_id is None:
            continue
        pushing = await job.jobs.add(
            name=JobName.PUSH_UPSTREAM,
            args=push_args(programme.id, run.inputs.year, run.run_id),
            dedup_key=push_key(programme.id, run.inputs.year),
            not_before=None,
            max_attempts=PUSH_ATTEMPTS,
            requested_by=actor.client_id,
        )
        _hand_over_after_commit(job, pushing)


async def rebuild(
    ctx: JobContext, args: RebuildRollupsArgs, *, upstream: bool = False
) -> dict[str, Any]:
    """Recompute every programme-year whose inputs changed, set-based, then the national
    runs of the years that changed. The nightly schedule runs it. ``upstream``: as in
    ``refresh``."""
    job = _job(ctx)
    repo = job.rollups
    programmes = await repo.provincial_programmes(args.programme_id)
    keys = [
        (p.id, year)
        for p in programmes
        for year in range(p.start_year, p.end_year + 1)
        if args.years is None or year in args.years
    ]
    await repo.lock(keys)
    await _progress(ctx, stage="fingerprints", done=0, total=len(keys))
    digests = await repo.collect_sources_while_digesting(keys)
    inputs = await repo.provincial_inputs(keys, digests=digests)
    previous = await repo.published(keys)
    if args.force:
        # Nothing counts as unchanged: every programme-year gets a new full run.
        previous = {k: dataclasses.replace(p, fingerprint="") for k, p in previous.items()}
    planned = plan_runs(list(inputs.values()), previous)
    await _progress(ctx, stage="cells", done=0, total=len(planned))

    async def cells_written(done: int) -> None:
        await _progress(ctx, stage="cells", done=done, total=len(planned))

    await repo.compute_full_collected(
        planned, job_id=ctx.job_id, now=ctx.now, progress=cells_written
    )
    await repo.drop_collected()
    await repo.publish(planned, ctx.now)
    actor = await requester_of(ctx)
    _audit_published(ctx, job, actor, planned, {p.id: p.key for p in programmes})
    # One national refresh per parent programme and changed year, however many provinces.
    parents = {p.id: p.parent_id for p in programmes}
    national_years: dict[uuid.UUID, set[int]] = defaultdict(set)
    for run in planned:
        parent = parents[run.inputs.programme_id]
        if parent is not None:
            national_years[parent].add(run.inputs.year)
    for parent, years in national_years.items():
        await _schedule_national(ctx, job, actor, parent, sorted(years))
    if upstream:
        await _schedule_upstream(job, actor, planned, {p.id: p for p in programmes})
    await _progress(ctx, stage="published", done=len(planned), total=len(planned))
    return {"programme_years": len(keys), "recomputed": len(planned)}


async def _progress(ctx: JobContext, *, stage: str, done: int, total: int) -> None:
    if ctx.report_progress is not None:
        await ctx.report_progress(Progress(stage=stage, done=done, total=total))


async def request_refresh(
    uow: UnitOfWork, caller: Caller, programme_ref: str, year: int | None, *, full: bool
) -> Job:
    """Queue a refresh of one programme-year, or a rebuild of every year of the programme."""
    caller.require(Permission.JOBS_RUN)
    async with uow:
        repo = _repo(uow)
        programme = await programme_or_404(uow, programme_ref)
        # The checks of the generic job route, on the same arguments.
        args: RefreshRollupArgs | RebuildRollupsArgs
        if year is None:
            args = RebuildRollupsArgs(programme_id=programme.id)
            await _check_rebuild(repo, args, ("body",))
            job = await uow.schedule(
                JobName.REBUILD_ROLLUPS,
                args.model_dump(mode="json", exclude_defaults=True),
                dedup_key=f"rebuild:{programme.id}",
                requested_by=caller.client_id,
            )
        else:
            args = RefreshRollupArgs(programme_id=programme.id, year=year, full=full)
            await _check_refresh(repo, args, ("body",))
            job = await uow.schedule(
                JobName.REFRESH_ROLLUP,
                args.model_dump(mode="json"),
                requested_by=caller.client_id,
            )
        uow.get(AuditRepository).record(
            caller, "rollup.requested", "job", job.id, after={"year": year, "full": full}
        )
        await uow.commit()
    return job


# --- reading ------------------------------------------------------------------------------


def _not_published(programme: cm.Programme, year: int) -> NotFound:
    return NotFound(
        f"No rollup of {programme.key} for {year} is published yet.", code="rollup_not_found"
    )


async def _published_run(
    repo: RollupRepository, programme: cm.Programme, year: int
) -> tuple[RollupRun, Any]:
    found = await repo.publication(programme.id, year)
    if found is None:
        raise _not_published(programme, year)
    return found


async def published_state(
    uow: UnitOfWork, caller: Caller, programme_ref: str, year: int
) -> PublishedState:
    """What an ETag needs, in one indexed read."""
    caller.require(Permission.ROLLUPS_READ)
    async with uow:
        programme = await programme_or_404(uow, programme_ref)
        run_id, tag = await _repo(uow).published_state(programme.id, year)
    if run_id is None or tag is None:
        raise _not_published(programme, year)
    return PublishedState(run_id, tag)


async def get_rollup(
    uow: UnitOfWork, caller: Caller, programme_ref: str, year: int, filters: Filters
) -> RollupView:
    """The published rollup of a programme-year, with its targets' achievement so far."""
    caller.require(Permission.ROLLUPS_READ)
    async with uow:
        repo = _repo(uow)
        programme = await programme_or_404(uow, programme_ref)
        run, published_at = await _published_run(repo, programme, year)
        if filters.unit is not None and not await repo.unit_exists(filters.unit):
            raise NotFound(
                f"Organisation unit {filters.unit!r} does not exist.", code="unit_not_found"
            )
        cells = await repo.cells(run.id, indicator=filters.indicator, unit=filters.unit)
        targets = await _targets(
            repo, uow.get(BaselineRepository), programme, year, filters.indicator
        )
        return RollupView(
            run=run,
            includes_accepted_until=await repo.includes_accepted_until(run.id),
            programme_key=programme.key,
            published_at=published_at,
            cells=cells,
            targets=targets,
            sections=_filter_sections(run.sections, filters),
        )


def _filter_sections(sections: dict[str, Any], filters: Filters) -> dict[str, Any]:
    if filters.task_group is None:
        return sections
    return {
        **sections,
        "budget": [r for r in sections.get("budget", []) if r["task_group"] == filters.task_group],
        "tasks": [r for r in sections.get("tasks", []) if _task_group(r) == filters.task_group],
    }


def _task_group(row: dict[str, Any]) -> int:
    # Runs stored before the field was renamed say "group".
    return int(row["task_group"] if "task_group" in row else row["group"])


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


async def _targets(
    repo: RollupRepository,
    baselines: BaselineRepository,
    programme: cm.Programme,
    as_of_year: int,
    indicator: str | None,
) -> list[TargetProgress]:
    """Every target of the phases that contain the year, judged on the published years and,
    where a target looks before the programme, on the baseline figures recorded."""
    progress = []
    for target, indicator_key, phase in await repo.targets_in_force(
        programme.id, as_of_year, indicator
    ):
        wanted = set(disaggregations_of(target.disaggregation))
        values: dict[int, Decimal] = defaultdict(Decimal)
        # The year before the phase gives the first year its growth.
        totals = await repo.yearly_totals(
            programme.id, target.indicator_id, phase.start_year - 1, as_of_year
        )
        for year, disaggregation, value in totals:
            if disaggregation in wanted:
                values[year] += value
        spec = TargetSpec(
            kind=TargetKind(target.kind),
            value=target.value,
            min_pct=target.min_pct,
            max_pct=target.max_pct,
            phase_start=phase.start_year,
            phase_end=phase.end_year,
            approximate=target.approximate,
        )
        head = (target.key, indicator_key, phase.key, target.text_en)
        used: BaselineUsed | None = None
        baseline: Decimal | None = None
        if spec.kind is TargetKind.BASELINE_PERCENTAGE:
            period = (
                await repo.baseline_period(target.baseline_period_id)
                if target.baseline_period_id is not None
                else None
            )
            if period is not None:
                figures = await baselines.used_figures(programme.id, target.indicator_id)
                used = combine(
                    figures, wanted, period=(period.key, period.start_year, period.end_year)
                )
            if used is None:
                label = f"{period.start_year}–{period.end_year}" if period else "its baseline"
                progress.append(
                    TargetProgress(
                        *head, None,
                        note=f"No baseline figures are recorded for {label}: record them "
                        f"(POST /v1/programmes/{programme.key}/baselines) to judge this target.",
                    )
                )  # fmt: skip
                continue
            baseline = used.total
        elif spec.kind is TargetKind.YEARLY_GROWTH_RANGE:
            base_year = phase.start_year - 1
            # A year before the programme has no reports: its figure is a base-year figure.
            if base_year < programme.start_year and base_year not in values:
                figures = await baselines.used_figures(programme.id, target.indicator_id)
                used = combine(figures, wanted, year=base_year)
                if used is not None:
                    values[base_year] = used.total
        achievement = judge(spec, dict(values), as_of_year, baseline)
        if used is not None:
            achievement = dataclasses.replace(
                achievement, explanation=f"{achievement.explanation}; {used.describe()}"
            )
        progress.append(TargetProgress(*head, achievement, baseline=used))
    return progress


async def list_runs(
    uow: UnitOfWork,
    caller: Caller,
    programme_ref: str,
    year: int,
    *,
    report_id: uuid.UUID | None = None,
    version_no: int | None = None,
) -> tuple[Sequence[RollupRun], uuid.UUID | None]:
    """Every run of a programme-year, newest first, and which one is published; with
    ``report_id`` (and ``version_no``) only the runs that report (version) went into."""
    caller.require(Permission.ROLLUPS_READ)
    async with uow:
        repo = _repo(uow)
        programme = await programme_or_404(uow, programme_ref)
        runs = await repo.runs(programme.id, year, report_id=report_id, version_no=version_no)
        return runs, await repo.published_run_id(programme.id, year)


async def get_run(
    uow: UnitOfWork, caller: Caller, programme_ref: str, year: int, run_id: uuid.UUID
) -> tuple[RollupRun, bool, list[RunInput], datetime | None]:
    """A run of a programme-year, whether it is the published one, what went into it, and
    the latest acceptance it includes."""
    caller.require(Permission.ROLLUPS_READ)
    async with uow:
        repo = _repo(uow)
        programme = await programme_or_404(uow, programme_ref)
        run = await repo.run(run_id)
        if run is None or (run.programme_id, run.year) != (programme.id, year):
            raise NotFound(f"Run {run_id} is not a run of that year.", code="run_not_found")
        published = await repo.published_run_id(programme.id, year) == run.id
        inputs = await repo.run_inputs(run.id)
        return run, published, inputs, await repo.includes_accepted_until(run.id)


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
        repo = _repo(uow)
        programme = await programme_or_404(uow, programme_ref)
        if run_id is None:
            run, _ = await _published_run(repo, programme, year)
        else:
            found = await repo.run(run_id)
            if found is None or (found.programme_id, found.year) != (programme.id, year):
                raise NotFound(f"Run {run_id} is not a run of that year.", code="run_not_found")
            run = found
        indicator_id = await repo.indicator_id(programme.id, indicator)
        if indicator_id is None:
            raise NotFound(
                f"No indicator {indicator!r} in {programme.key}.", code="indicator_not_found"
            )
        contributions = await repo.contributions(
            run, indicator_id=indicator_id, disaggregation=disaggregation, breakdown=breakdown
        )
        return run, contributions


async def get_phase(
    uow: UnitOfWork, caller: Caller, programme_ref: str, phase_key: str, indicator: str | None
) -> PhaseView:
    """A phase: each year's published cells combined by each indicator's rule across time
    (a sum of flows, the latest level, the maximum), and its targets judged as of now."""
    caller.require(Permission.ROLLUPS_READ)
    async with uow:
        repo = _repo(uow)
        programme = await programme_or_404(uow, programme_ref)
        phase = await repo.phase(programme.id, phase_key)
        if phase is None:
            raise NotFound(f"No phase {phase_key!r} in {programme.key}.", code="phase_not_found")
        years = await repo.published_years(programme.id, phase.start_year, phase.end_year)
        if not years:
            raise NotFound(f"No year of {phase_key} is published yet.", code="rollup_not_found")
        cells = await repo.phase_cells(programme.id, phase.start_year, phase.end_year, indicator)
        as_of = max(years)
        targets = [
            t
            for t in await _targets(repo, uow.get(BaselineRepository), programme, as_of, indicator)
            if t.phase == phase.key
        ]
        return PhaseView(phase, programme.key, years, cells, targets)


async def judged_targets(
    repositories: RepositorySource, programme: cm.Programme, as_of_year: int
) -> list[TargetProgress]:
    """Every target in force in the year, judged on the published years up to it: what a
    reader of the year's rollup is shown, for the documents built from it."""
    return await _targets(
        repositories.get(RollupRepository),
        repositories.get(BaselineRepository),
        programme,
        as_of_year,
        None,
    )
