"""/v1/rollups: published rollups of a year or a phase, their runs and provenance; refreshes."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Request, Response
from pydantic import BaseModel, Field

from nscl_api.deps import JobsRunner, RollupsReader, UowDep
from nscl_api.errors import responses
from nscl_api.idempotency import IDEMPOTENT
from nscl_api.jobs.schemas import JOB_QUEUED, JobRead
from nscl_api.resources import Resources
from nscl_api.types import RequestModel
from nscl_domain.budget.visibility import BudgetVisibility, budget_visibility
from nscl_domain.catalogue.targets import Achievement
from nscl_domain.errors import Invalid, NotFound
from nscl_domain.identity import Permission
from nscl_domain.rollups import service as rollups
from nscl_domain.rollups.service import Cell, Filters, TargetProgress

router = APIRouter(prefix="/v1/rollups", tags=["rollups"])
Year = Annotated[int, Path(ge=2000, le=2100)]
IfNoneMatch = Annotated[str | None, Header(alias="If-None-Match", max_length=200)]
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Unchanged since the ETag given."}
}
JSON = "application/json"


class CellRead(BaseModel):
    indicator: str
    disaggregation: str = Field(description='"dimension=value" pairs joined by ";"; "" total.')
    breakdown: str = Field(
        description='"" over every unit; "unit_kind=…" (provincial) or "programme=…" (national).'
    )
    value: Decimal = Field(description="Aggregated by the indicator's rule across units.")
    contributors: int = Field(description="Units (or provinces' units) whose figures count.")

    @classmethod
    def of(cls, cell: Cell) -> CellRead:
        return cls(
            indicator=cell.indicator,
            disaggregation=cell.disaggregation,
            breakdown=cell.breakdown,
            value=cell.value,
            contributors=cell.contributors,
        )


class YearRead(BaseModel):
    year: int
    value: Decimal | None
    cumulative: Decimal | None
    growth_pct: Decimal | None
    note: str


class TargetRead(BaseModel):
    """A target and how far it is achieved, with the arithmetic."""

    key: str
    indicator: str
    phase: str
    text_en: str
    status: str | None = Field(description="on_track, at_risk, off_track, achieved, missed …")
    actual: Decimal | None
    expected: Decimal | None = Field(description="What linear progress requires by now.")
    ratio_pct: Decimal | None
    explanation: str
    per_year: list[YearRead]

    @classmethod
    def of(cls, target: TargetProgress) -> TargetRead:
        judged: Achievement | None = target.achievement
        return cls(
            key=target.key,
            indicator=target.indicator,
            phase=target.phase,
            text_en=target.text_en,
            status=judged.status.value if judged else None,
            actual=judged.actual if judged else None,
            expected=judged.expected if judged else None,
            ratio_pct=judged.ratio_pct if judged else None,
            explanation=judged.explanation if judged else target.note,
            per_year=[
                YearRead(
                    year=d.year,
                    value=d.value,
                    cumulative=d.cumulative,
                    growth_pct=d.growth_pct,
                    note=d.note,
                )
                for d in (judged.per_year if judged else ())
            ],
        )


class BudgetTotalRow(BaseModel):
    """Accepted estimates of a funding source going to a destination, summed over units."""

    funding_source: str
    destination: str | None = Field(description="Unit key; null: other sources, routed to neither.")
    estimated: int = Field(description="Whole đồng, accepted estimates.")
    allocated: int
    spent: int


class BudgetRow(BaseModel):
    """One unit's money for a funding source, destination and task group."""

    funding_source: str
    destination: str | None = Field(description="Unit key; null: other sources, routed to neither.")
    unit: str
    task_group: int = Field(description="0: lines not tied to a task.")
    estimated: int = Field(description="Whole đồng, accepted estimates.")
    allocated: int
    spent: int


class TaskRow(BaseModel):
    unit: str
    task: str
    group: int
    status: str


class TimelinessRow(BaseModel):
    unit: str
    due_date: str
    submitted_on: str | None
    status: Literal["on_time", "late", "missing"]
    accepted: bool


class PlanProgressRow(BaseModel):
    """An indicator's planned output for the year (accepted annual plans) beside its actual."""

    indicator: str
    planned: Decimal
    actual: Decimal | None = Field(description="The rollup's total; null: nothing reported.")
    ratio_pct: Decimal | None = Field(description="actual / planned × 100, to 2 places.")

    @classmethod
    def rows(cls, planned: list[dict[str, Any]], cells: list[Cell]) -> list[PlanProgressRow]:
        actual = {c.indicator: c.value for c in cells if c.breakdown == "" and not c.disaggregation}
        result = []
        for row in planned:
            target, done = Decimal(str(row["planned"])), actual.get(row["indicator"])
            ratio = (
                (done * 100 / target).quantize(Decimal("0.01"))
                if done is not None and target
                else None
            )
            result.append(
                cls(indicator=row["indicator"], planned=target, actual=done, ratio_pct=ratio)
            )
        return result


class Completeness(BaseModel):
    """Who reported: the year's annual obligations, and how they stand."""

    obligations: int
    submitted: int
    accepted: int
    on_time: int
    late: int
    missing: int

    @classmethod
    def of(cls, rows: list[TimelinessRow]) -> Completeness:
        return cls(
            obligations=len(rows),
            submitted=sum(1 for r in rows if r.submitted_on is not None),
            accepted=sum(1 for r in rows if r.accepted),
            on_time=sum(1 for r in rows if r.status == "on_time"),
            late=sum(1 for r in rows if r.status == "late"),
            missing=sum(1 for r in rows if r.status == "missing"),
        )


class RollupRead(BaseModel):
    """A published rollup: figures, targets, budget, task progress and timeliness."""

    programme: str
    year: int
    run_id: uuid.UUID
    seq: int = Field(description="Runs of the year are numbered from 1.")
    level: Literal["provincial", "national"]
    kind: Literal["full", "incremental"]
    fingerprint: str = Field(description="Of the inputs; an unchanged input makes no new run.")
    computed_at: datetime
    published_at: datetime
    sources: int = Field(description="Accepted versions (or provincial runs) it was made from.")
    indicators: list[CellRead]
    targets: list[TargetRead]
    budget_totals: list[BudgetTotalRow] = Field(
        description="By funding source × destination, over every unit: shown to every reader."
    )
    budget: list[BudgetRow] = Field(
        description="Per-unit rows the caller may see: every unit's for budget reviewers and "
        "auditors, the caller's own unit's for a unit that estimates, those routed to the "
        "caller's unit for Finance and Planning and Investment, none for others."
    )
    tasks: list[TaskRow]
    plan_progress: list[PlanProgressRow] = Field(
        description="Planned outputs of the year's accepted annual plans beside the actuals."
    )
    completeness: Completeness
    timeliness: list[TimelinessRow]


class PhaseRead(BaseModel):
    programme: str
    phase: str
    start_year: int
    end_year: int
    years: dict[int, uuid.UUID] = Field(description="The published run each year counts.")
    indicators: list[CellRead] = Field(description="Years combined by each indicator's rule.")
    targets: list[TargetRead]


class RunRead(BaseModel):
    run_id: uuid.UUID
    seq: int
    level: Literal["provincial", "national"]
    kind: Literal["full", "incremental"]
    fingerprint: str
    computed_at: datetime
    sources: int
    job_id: uuid.UUID | None
    published: bool = Field(description="The run readers see now.")


class RunsRead(BaseModel):
    items: list[RunRead]


class ContributionRead(BaseModel):
    source_id: uuid.UUID
    kind: Literal["report_version", "rollup_run"]
    unit: str | None
    programme: str | None
    report_id: uuid.UUID | None
    version_no: int | None
    value: Decimal


class ProvenanceRead(BaseModel):
    run_id: uuid.UUID
    indicator: str
    disaggregation: str
    breakdown: str
    items: list[ContributionRead]


class RollupRequest(RequestModel):
    programme: str = Field(max_length=100, examples=["bac-kan-nscl"])
    year: int | None = Field(
        default=None, ge=2000, le=2100, description="Absent: every year of the programme."
    )
    full: bool = Field(default=False, description="Recompute every cell of the year.")


# Polled with If-None-Match: a client's own cache may keep a copy to revalidate, no shared
# cache may (the default for private answers, no-store, would forbid keeping the copy).
REVALIDATE = "private, no-cache"


def _etag(tag: str, visibility: BudgetVisibility) -> str:
    # Each class of budget visibility gets its own representation, so its own tag.
    variant = hashlib.sha256("/".join(visibility.cache_class).encode()).hexdigest()[:12]
    return f'"{tag}-{variant}"'


@router.get(
    "/{programme}/{year}",
    operation_id="getRollup",
    summary="Get the published rollup of a year",
    response_model=RollupRead,
    responses={**responses(NotFound), **NOT_MODIFIED},
)
async def get_rollup(
    programme: str,
    year: Year,
    caller: RollupsReader,
    request: Request,
    indicator: Annotated[str | None, Query(max_length=100)] = None,
    unit: Annotated[
        str | None, Query(max_length=100, description="Only this unit and those under it.")
    ] = None,
    task_group: Annotated[int | None, Query(ge=1, le=20)] = None,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """The published rollup; poll with If-None-Match to get 304 while it is unchanged."""
    caller.require(Permission.ROLLUPS_READ)
    resources: Resources = request.app.state.resources
    cache = resources.rollups
    # A unit of work only when the caches miss: most polls need no database at all.
    state = await cache.published_run(
        (programme, year),
        lambda: rollups.published_state(resources.new_uow(), caller, programme, year),
    )
    visibility = budget_visibility(caller)
    tag = _etag(state.tag, visibility)
    if if_none_match == tag:
        return Response(status_code=304, headers={"ETag": tag, "Cache-Control": REVALIDATE})
    key = (state.tag, indicator, unit, task_group)
    body = cache.rendered.get((*key, visibility.cache_class))
    if body is None:
        whole: RollupRead | None = cache.views.get(key)
        untagged = False
        if whole is None:
            filters = Filters(indicator=indicator, unit=unit, task_group=task_group)
            view = await rollups.get_rollup(resources.new_uow(), caller, programme, year, filters)
            if view.run.id != state.run_id:  # published in between: tag what was rendered
                state = await rollups.published_state(resources.new_uow(), caller, programme, year)
                tag, key = _etag(state.tag, visibility), (state.tag, indicator, unit, task_group)
            untagged = view.run.id != state.run_id  # and again: answer, but tag and keep nothing
            whole = _whole(view)
            if not untagged:
                cache.views[key] = whole
        body = (
            whole.model_copy(
                update={
                    "budget": [
                        r for r in whole.budget if visibility.shows_row(r.unit, r.destination)
                    ]
                }
            )
            .model_dump_json()
            .encode()
        )
        if untagged:
            return Response(content=body, media_type=JSON)
        cache.rendered[(*key, visibility.cache_class)] = body
    return Response(
        content=body, media_type=JSON, headers={"ETag": tag, "Cache-Control": REVALIDATE}
    )


def _whole(view: rollups.RollupView) -> RollupRead:
    """The rollup with every unit's budget rows: the budget policy filters it per reader."""
    run, sections = view.run, view.sections
    timeliness = [TimelinessRow.model_validate(r) for r in sections.get("timeliness", [])]
    budget = sections.get("budget", [])
    return RollupRead(
        programme=view.programme_key,
        year=run.year,
        run_id=run.id,
        seq=run.seq,
        level=run.level,  # type: ignore[arg-type]  # checked by the database
        kind=run.kind,  # type: ignore[arg-type]  # checked by the database
        fingerprint=run.fingerprint,
        computed_at=run.computed_at,
        published_at=view.published_at,
        sources=run.sources,
        indicators=[CellRead.of(c) for c in view.cells],
        targets=[TargetRead.of(t) for t in view.targets],
        budget_totals=[BudgetTotalRow.model_validate(r) for r in rollups.budget_totals(budget)],
        budget=[BudgetRow.model_validate(r) for r in budget],
        tasks=[TaskRow.model_validate(r) for r in sections.get("tasks", [])],
        plan_progress=PlanProgressRow.rows(sections.get("planned", []), view.cells),
        completeness=Completeness.of(timeliness),
        timeliness=timeliness,
    )


@router.get(
    "/{programme}/{year}/runs",
    operation_id="listRollupRuns",
    summary="The runs of a year",
    responses=responses(NotFound),
)
async def list_runs(programme: str, year: Year, uow: UowDep, caller: RollupsReader) -> RunsRead:
    """Every run kept, newest first, each with its inputs' fingerprint."""
    runs, published_id = await rollups.list_runs(uow, caller, programme, year)
    return RunsRead(
        items=[
            RunRead(
                run_id=r.id,
                seq=r.seq,
                level=r.level,  # type: ignore[arg-type]  # checked by the database
                kind=r.kind,  # type: ignore[arg-type]  # checked by the database
                fingerprint=r.fingerprint,
                computed_at=r.computed_at,
                sources=r.sources,
                job_id=r.job_id,
                published=r.id == published_id,
            )
            for r in runs
        ]
    )


@router.get(
    "/{programme}/{year}/provenance",
    operation_id="getRollupProvenance",
    summary="The submissions behind a figure",
    responses=responses(NotFound),
)
async def get_provenance(
    programme: str,
    year: Year,
    uow: UowDep,
    caller: RollupsReader,
    indicator: Annotated[str, Query(max_length=100)],
    disaggregation: Annotated[str, Query(max_length=200)] = "",
    breakdown: Annotated[str, Query(max_length=200)] = "",
    run_id: uuid.UUID | None = None,
) -> ProvenanceRead:
    """The accepted report versions (nationally: the provincial runs) a figure was made
    from, each with the value it contributed; of the published run unless ``run_id``."""
    run, contributions = await rollups.provenance(
        uow, caller, programme, year, indicator=indicator, disaggregation=disaggregation,
        breakdown=breakdown, run_id=run_id,
    )  # fmt: skip
    return ProvenanceRead(
        run_id=run.id,
        indicator=indicator,
        disaggregation=disaggregation,
        breakdown=breakdown,
        items=[
            ContributionRead(
                source_id=c.source_id,
                kind=c.kind,  # type: ignore[arg-type]  # the provenance query names one of the two
                unit=c.unit,
                programme=c.programme,
                report_id=c.report_id,
                version_no=c.version_no,
                value=c.value,
            )
            for c in contributions
        ],
    )


@router.get(
    "/{programme}/phases/{phase}",
    operation_id="getPhaseRollup",
    summary="Get the rollup of a phase",
    responses=responses(NotFound),
)
async def get_phase(
    programme: str,
    phase: Annotated[str, Path(max_length=100)],
    uow: UowDep,
    caller: RollupsReader,
    indicator: Annotated[str | None, Query(max_length=100)] = None,
) -> PhaseRead:
    """The phase's published years combined, and its targets judged on them."""
    view = await rollups.get_phase(uow, caller, programme, phase, indicator)
    return PhaseRead(
        programme=view.programme_key,
        phase=view.phase.key,
        start_year=view.phase.start_year,
        end_year=view.phase.end_year,
        years=view.years,
        indicators=[CellRead.of(c) for c in view.cells],
        targets=[TargetRead.of(t) for t in view.targets],
    )


@router.post(
    "",
    status_code=202,
    operation_id="requestRollup",
    dependencies=[IDEMPOTENT],
    summary="Recompute rollups",
    responses={**responses(NotFound, Invalid), **JOB_QUEUED},
)
async def request_rollup(
    body: RollupRequest, uow: UowDep, caller: JobsRunner, response: Response
) -> JobRead:
    """Queue a refresh of a year (or every year); follow `Location` to watch the job."""
    job = await rollups.request_refresh(uow, caller, body.programme, body.year, full=body.full)
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return JobRead.of(job)
