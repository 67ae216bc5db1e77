"""Request and response bodies of /v1/rollups."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import Field, StrictBool

from nscl_api.reports.schemas import TimelinessRow
from nscl_api.types import (
    IndicatorKey,
    Money,
    Percent,
    PhaseKey,
    ProgrammeKey,
    Quantity,
    RequestModel,
    ResponseModel,
    TaskGroupNumber,
    TaskKey,
    UnitKey,
)
from nscl_domain.budget.models import FundingSource
from nscl_domain.catalogue.baselines import BaselineUsed
from nscl_domain.catalogue.targets import Achievement, TargetStatus
from nscl_domain.records.content import RecordKind
from nscl_domain.reports.content import TaskStatus
from nscl_domain.rollups.models import RollupRun
from nscl_domain.rollups.service import budget_totals
from nscl_domain.rollups.views import (
    Cell,
    Contribution,
    PhaseView,
    RollupView,
    RunInput,
    TargetProgress,
)


class CellRead(ResponseModel):
    indicator: IndicatorKey
    disaggregation: str = Field(description='"dimension=value" pairs joined by ";"; "" total.')
    breakdown: str = Field(
        description='"" over every unit; "unit_kind=…" (provincial) or "programme=…" (national).'
    )
    value: Quantity = Field(description="Aggregated by the indicator's rule across units.")
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


class YearRead(ResponseModel):
    year: int
    value: Quantity | None
    cumulative: Quantity | None
    growth_pct: Percent | None
    note: str


class BaselineFigureUsed(ResponseModel):
    """A recorded baseline figure a judgement used."""

    id: uuid.UUID
    unit: UnitKey | None = Field(description="Null: the provincial total.")
    disaggregation: str
    period: str | None
    year: int | None
    value: Quantity
    source_document: str
    source_date: date


class BaselineUsedRead(ResponseModel):
    """What a target was compared with: the total of a baseline period (2011–2020) or of a
    base year (2020), and the recorded figures it is the sum of."""

    label: str = Field(examples=["2011–2020", "2020"])
    period: str | None
    year: int | None
    total: Quantity
    figures: list[BaselineFigureUsed]

    @classmethod
    def of(cls, used: BaselineUsed) -> BaselineUsedRead:
        return cls(
            label=used.label,
            period=used.period,
            year=used.year,
            total=used.total,
            figures=[
                BaselineFigureUsed(
                    id=f.id,
                    unit=f.unit,
                    disaggregation=f.disaggregation,
                    period=f.period,
                    year=f.year,
                    value=f.value,
                    source_document=f.source_document,
                    source_date=f.source_date,
                )
                for f in used.figures
            ],
        )


class RollupTargetRead(ResponseModel):
    """A target and how far it is achieved, with the arithmetic."""

    key: str
    indicator: IndicatorKey
    phase: PhaseKey
    text_en: str
    status: TargetStatus | None = Field(
        description="Where the target stands; `no_data` when nothing is reported yet in the "
        "phase, null when the target cannot be judged (its note says why)."
    )
    actual: Quantity | None
    expected: Quantity | None = Field(description="What linear progress requires by now.")
    ratio_pct: Percent | None
    explanation: str
    per_year: list[YearRead]
    baseline: BaselineUsedRead | None = Field(
        description="The baseline figures the target was judged against (a baseline period, "
        "or the base year before the phase for a growth target); null when none applies."
    )

    @classmethod
    def of(cls, target: TargetProgress) -> RollupTargetRead:
        judged: Achievement | None = target.achievement
        return cls(
            key=target.key,
            indicator=target.indicator,
            phase=target.phase,
            text_en=target.text_en,
            status=judged.status if judged else None,
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
            baseline=BaselineUsedRead.of(target.baseline) if target.baseline else None,
        )


class BudgetTotalRow(ResponseModel):
    """Accepted estimates of a funding source going to a destination, summed over units."""

    funding_source: FundingSource
    destination: UnitKey | None = Field(
        description="Unit key; null: other sources, routed to neither."
    )
    estimated: Money = Field(description="Whole đồng, accepted estimates.")
    allocated: Money
    spent: Money


class BudgetRow(ResponseModel):
    """One unit's money for a funding source, destination and task group."""

    funding_source: FundingSource
    destination: UnitKey | None = Field(
        description="Unit key; null: other sources, routed to neither."
    )
    unit: UnitKey
    task_group: TaskGroupNumber = Field(description="0: lines not tied to a task.")
    estimated: Money = Field(description="Whole đồng, accepted estimates.")
    allocated: Money
    spent: Money


class TaskRow(ResponseModel):
    unit: UnitKey
    task: TaskKey
    task_group: TaskGroupNumber
    status: TaskStatus

    @classmethod
    def of(cls, row: dict[str, Any]) -> TaskRow:
        # Runs stored before the field was renamed say "group".
        group = row["task_group"] if "task_group" in row else row["group"]
        return cls(unit=row["unit"], task=row["task"], task_group=group, status=row["status"])


class PlanProgressRow(ResponseModel):
    """An indicator's planned output for the year (accepted annual plans) beside its actual."""

    indicator: IndicatorKey
    planned: Quantity
    actual: Quantity | None = Field(description="The rollup's total; null: nothing reported.")
    ratio_pct: Percent | None = Field(description="actual / planned × 100, to 2 places.")

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


class Completeness(ResponseModel):
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


class RollupRead(ResponseModel):
    """A published rollup: figures, targets, budget, task progress and timeliness."""

    programme: ProgrammeKey
    year: int
    run_id: uuid.UUID
    seq: int = Field(description="Runs of the year are numbered from 1.")
    level: Literal["provincial", "national"]
    kind: Literal["full", "incremental", "pushed"] = Field(
        description="pushed: received from the province's own instance (national intake)."
    )
    fingerprint: str = Field(description="Of the inputs; an unchanged input makes no new run.")
    computed_at: datetime = Field(description="When the run was computed.")
    includes_accepted_until: datetime | None = Field(
        description="The latest acceptance of a report version this run includes (nationally: "
        "of the provincial runs it combines); null when it includes none. Its age is how far "
        "behind the accepted figures the rollup may be: the response's `Date` minus this, "
        "for acceptances made since (a refresh starts at once and publishes within a second "
        "or two)."
    )
    published_at: datetime
    sources: int = Field(description="Accepted versions (or provincial runs) it was made from.")
    cells: list[CellRead] = Field(
        description="The figures: one per indicator, disaggregation and breakdown."
    )
    targets: list[RollupTargetRead]
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
    timeliness: list[TimelinessRow] = Field(
        description="The year's annual obligations: the rows of GET …/timeliness, as the run "
        "saw them (a report not sent counts as missing, never not_due)."
    )

    @classmethod
    def of(cls, view: RollupView) -> RollupRead:
        """The rollup with every unit's budget rows: the budget policy filters it per reader."""
        run, sections = view.run, view.sections
        timeliness = [TimelinessRow.of_rollup(r) for r in sections.get("timeliness", [])]
        budget = sections.get("budget", [])
        return cls(
            programme=view.programme_key,
            year=run.year,
            run_id=run.id,
            seq=run.seq,
            level=run.level,  # type: ignore[arg-type]  # str column, CHECK-limited to the Literal
            kind=run.kind,  # type: ignore[arg-type]  # str column, CHECK-limited to the Literal
            fingerprint=run.fingerprint,
            computed_at=run.computed_at,
            includes_accepted_until=view.includes_accepted_until,
            published_at=view.published_at,
            sources=run.sources,
            cells=[CellRead.of(c) for c in view.cells],
            targets=[RollupTargetRead.of(t) for t in view.targets],
            budget_totals=[BudgetTotalRow.model_validate(r) for r in budget_totals(budget)],
            budget=[BudgetRow.model_validate(r) for r in budget],
            tasks=[TaskRow.of(r) for r in sections.get("tasks", [])],
            plan_progress=PlanProgressRow.rows(sections.get("planned", []), view.cells),
            completeness=Completeness.of(timeliness),
            timeliness=timeliness,
        )


class RollupPhaseRead(ResponseModel):
    programme: ProgrammeKey
    phase: PhaseKey
    start_year: int
    end_year: int
    years: dict[int, uuid.UUID] = Field(description="The published run each year counts.")
    cells: list[CellRead] = Field(description="Years combined by each indicator's rule.")
    targets: list[RollupTargetRead]

    @classmethod
    def of(cls, view: PhaseView) -> RollupPhaseRead:
        """The phase view as the API shows it."""
        return cls(
            programme=view.programme_key,
            phase=view.phase.key,
            start_year=view.phase.start_year,
            end_year=view.phase.end_year,
            years=view.years,
            cells=[CellRead.of(c) for c in view.cells],
            targets=[RollupTargetRead.of(t) for t in view.targets],
        )


class RunRead(ResponseModel):
    run_id: uuid.UUID
    seq: int
    level: Literal["provincial", "national"]
    kind: Literal["full", "incremental", "pushed"] = Field(
        description="pushed: received from the province's own instance (national intake)."
    )
    fingerprint: str
    computed_at: datetime
    sources: int
    job_id: uuid.UUID | None
    published: bool = Field(description="The run readers see now.")

    @classmethod
    def of(cls, r: RollupRun, published: bool) -> RunRead:
        return cls(
            run_id=r.id,
            seq=r.seq,
            level=r.level,  # type: ignore[arg-type]  # str column, CHECK-limited to the Literal
            kind=r.kind,  # type: ignore[arg-type]  # str column, CHECK-limited to the Literal
            fingerprint=r.fingerprint,
            computed_at=r.computed_at,
            sources=r.sources,
            job_id=r.job_id,
            published=published,
        )


class RunInputRead(ResponseModel):
    """One source of a run: an accepted report version (provincial runs) or a provincial
    run (national runs)."""

    source_id: uuid.UUID = Field(description="The report version's or the run's id.")
    kind: Literal["report_version", "rollup_run"]
    unit: str | None = Field(description="Key of the reporting unit (report versions).")
    programme: str | None = Field(description="Key of the provincial programme (runs).")
    report_id: uuid.UUID | None = Field(examples=["01936f4e-8a2b-7c3d-9e4f-5a6b7c8d9e0f"])
    version_no: int | None = Field(examples=[2])

    @classmethod
    def of(cls, i: RunInput) -> RunInputRead:
        return cls(
            source_id=i.source_id,
            kind=i.kind,  # type: ignore[arg-type]  # the SQL names one of the two
            unit=i.unit, programme=i.programme, report_id=i.report_id, version_no=i.version_no,
        )  # fmt: skip


class RunDetailRead(RunRead):
    """A run and every source it was computed from: a rollup reflects an acceptance when
    its run's `inputs` hold the accepted version."""

    inputs: list[RunInputRead]
    includes_accepted_until: datetime | None = Field(
        description="The latest acceptance of a report version the run includes (nationally: "
        "of the provincial runs it combines); null when it includes none."
    )

    @classmethod
    def with_inputs(
        cls,
        run: RollupRun,
        published: bool,
        inputs: Sequence[RunInput],
        includes_accepted_until: datetime | None,
    ) -> RunDetailRead:
        return cls(
            **RunRead.of(run, published).model_dump(),
            inputs=[RunInputRead.of(i) for i in inputs],
            includes_accepted_until=includes_accepted_until,
        )


class RunsRead(ResponseModel):
    items: list[RunRead]

    @classmethod
    def of(cls, runs: Sequence[RollupRun], published_id: uuid.UUID | None) -> RunsRead:
        """The runs of a year, the published one marked."""
        return cls(items=[RunRead.of(r, r.id == published_id) for r in runs])


class ContributionRead(ResponseModel):
    source_id: uuid.UUID
    kind: Literal["report_version", "record_version", "rollup_run"]
    unit: UnitKey | None
    programme: ProgrammeKey | None
    report_id: uuid.UUID | None = Field(description="Of a report version.")
    record_id: uuid.UUID | None = Field(description="Of a programme record version.")
    record_kind: RecordKind | None = Field(description="Of a programme record version.")
    version_no: int | None
    value: Quantity
    province_seq: int | None = Field(
        description="Of a provincial run the province's own instance sent (national intake): "
        "its seq there; `source_id` is its run id there."
    )
    province_fingerprint: str | None = Field(
        description="Of a provincial run the province's own instance sent: its fingerprint there."
    )


class ProvenanceRead(ResponseModel):
    run_id: uuid.UUID
    indicator: IndicatorKey
    disaggregation: str
    breakdown: str
    items: list[ContributionRead]

    @classmethod
    def of(
        cls,
        run: RollupRun,
        indicator: str,
        disaggregation: str,
        breakdown: str,
        contributions: Sequence[Contribution],
    ) -> ProvenanceRead:
        """The contributions behind one figure of a run."""
        return cls(
            run_id=run.id,
            indicator=indicator,
            disaggregation=disaggregation,
            breakdown=breakdown,
            items=[
                ContributionRead(
                    source_id=c.source_id,
                    kind=c.kind,  # type: ignore[arg-type]  # str column, CHECK-limited to the Literal
                    unit=c.unit,
                    programme=c.programme,
                    report_id=c.report_id,
                    record_id=c.record_id,
                    record_kind=None if c.record_kind is None else RecordKind(c.record_kind),
                    version_no=c.version_no,
                    value=c.value,
                    province_seq=c.pushed_seq,
                    province_fingerprint=c.pushed_fingerprint,
                )
                for c in contributions
            ],
        )


class RollupRequest(RequestModel):
    programme: str = Field(max_length=100, examples=["bac-kan-nscl"])
    year: int | None = Field(
        default=None, ge=2000, le=2100, description="Absent: every year of the programme."
    )
    # Strict, as the contract says: 0 or "yes" is refused, not read as a boolean.
    full: StrictBool = Field(default=False, description="Recompute every cell of the year.")
