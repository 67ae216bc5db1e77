"""Bodies of the reporting endpoints."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import Field, StrictBool

from nscl_api.problems import FieldError
from nscl_api.types import IndicatorKey, RequestModel, ResponseModel, UnitKey
from nscl_domain.reports import models as m
from nscl_domain.reports.content import ReportContent
from nscl_domain.reports.obligations import ObligationView
from nscl_domain.reports.rules import RuleSetting
from nscl_domain.reports.timeliness import Timeliness, received_on
from nscl_domain.types import STORED, IsoDate, ItemText
from nscl_domain.workflow import ReviewStatus


class RegimeRead(ResponseModel):
    """A reporting regime: what is due when (the annual report by 30 November)."""

    key: str = Field(examples=["bk-annual"])
    kind: Literal["annual", "ad_hoc", "mid_term_review", "final_review"]
    name_vi: str
    name_en: str
    due_month: int
    due_day: int
    cutoff_days_before_due: int
    years: list[int] | None = Field(description="Years it applies to; null: every year.")

    @classmethod
    def of(cls, r: m.ReportingRegime) -> RegimeRead:
        return cls.model_validate(r, from_attributes=True)


class RegimeUpdate(RequestModel):
    due_month: int = Field(ge=1, le=12)
    due_day: int = Field(ge=1, le=31)
    cutoff_days_before_due: int = Field(default=0, ge=0, le=120)


class RuleRead(ResponseModel):
    """A validation rule run on submission: errors block it, warnings are kept."""

    code: str = Field(examples=["yearly_jump"])
    severity: Literal["error", "warning"]
    enabled: bool
    description: str
    params: dict[str, Any]

    @classmethod
    def of(cls, r: RuleSetting) -> RuleRead:
        return cls(
            code=r.code,
            severity=r.severity,
            enabled=r.enabled,
            description=r.description,
            params=dict(r.params),
        )


class RuleUpdate(RequestModel):
    severity: Literal["error", "warning"] | None = None
    enabled: StrictBool | None = None
    # Typed per rule by the domain (the rule is named by the path, so the body cannot say
    # which model applies): values pass through untouched, so `true` is not read as 1.
    params: dict[str, Any] | None = Field(
        default=None,
        max_length=20,
        description="Only the parameters the rule takes: `yearly_jump` takes `factor`, a "
        "number above 1 (at most 1000); the other rules take none.",
        examples=[{"factor": 4}],
    )


class ObligationGeneration(RequestModel):
    year: int = Field(ge=2000, le=2100)
    regime: str = Field(max_length=100, examples=["bk-annual"])


class ObligationGenerated(ResponseModel):
    created: int = Field(description="Obligations created now (existing ones are kept).")


class RequestCreate(RequestModel):
    """An ad hoc request: its units, indicators, questions and deadline."""

    title_vi: str = Field(min_length=1, max_length=500)
    title_en: str = Field(min_length=1, max_length=500)
    year: int = Field(ge=2000, le=2100)
    due_date: IsoDate
    units: list[str] = Field(min_length=1, max_length=500, description="Unit keys.")
    indicators: list[str] = Field(default_factory=list, max_length=200)
    questions: list[ItemText] = Field(default_factory=list, max_length=100)


class RequestRead(ResponseModel):
    id: uuid.UUID
    title_vi: str
    title_en: str
    year: int
    due_date: date
    indicators: list[IndicatorKey]
    questions: list[str]
    requested_by: str
    obligations_created: int


class ObligationRead(ResponseModel):
    """What a unit must report, by when, and where its report stands."""

    id: uuid.UUID
    unit: UnitKey
    year: int
    due_date: date
    cutoff_date: date
    regime: str | None = Field(description="Regime key; null: an ad hoc request's obligation.")
    request_id: uuid.UUID | None
    request_title_en: str | None
    report_id: uuid.UUID | None
    report_status: ReviewStatus | None

    @classmethod
    def of(cls, v: ObligationView) -> ObligationRead:
        return cls(
            id=v.obligation.id,
            unit=v.unit.key,
            year=v.obligation.year,
            due_date=v.obligation.due_date,
            cutoff_date=v.obligation.cutoff_date,
            regime=v.regime.key if v.regime else None,
            request_id=v.request.id if v.request else None,
            request_title_en=v.request.title_en if v.request else None,
            report_id=v.report.id if v.report else None,
            report_status=v.report.status if v.report else None,
        )


class ReportCreate(RequestModel):
    obligation_id: uuid.UUID


class ReportRead(ResponseModel):
    """A report: its draft (editable while draft or returned) and its review state."""

    id: uuid.UUID
    obligation_id: uuid.UUID
    status: ReviewStatus
    revision: int = Field(
        description="Also the ETag; send it back in If-Match to change the report."
    )
    draft: ReportContent
    latest_version_no: int
    accepted_version_no: int | None
    returned_reason: str | None
    correction_reason: str | None
    first_submitted_at: datetime | None
    submitted_by: str | None = Field(
        description="The client that submitted what is under review; four eyes: it may not "
        "accept or return it."
    )
    received_on: date | None = Field(
        description="For a report entered from the past: the day DOST received its first "
        "version by official letter, which timeliness is judged on."
    )
    accepted_at: datetime | None
    updated_at: datetime

    @classmethod
    def of(cls, r: m.Report) -> ReportRead:
        return cls(
            id=r.id,
            obligation_id=r.obligation_id,
            status=r.status,
            revision=r.revision,
            draft=ReportContent.model_validate(r.draft, context=STORED),
            latest_version_no=r.latest_version_no,
            accepted_version_no=r.accepted_version_no,
            returned_reason=r.returned_reason,
            correction_reason=r.correction_reason,
            first_submitted_at=r.first_submitted_at,
            submitted_by=r.submitted_by,
            received_on=r.received_on,
            accepted_at=r.accepted_at,
            updated_at=r.updated_at,
        )


class ValidationWarning(ResponseModel):
    code: str
    severity: Literal["error", "warning"]
    location: list[str | int]
    message: str


class LetterRead(ResponseModel):
    """The official letter that carried a version received before it was entered."""

    number: str
    date: date
    issuer: str


class BackfillRecord(ResponseModel):
    """How a version entered from the past reached DOST."""

    letter: LetterRead
    received_on: date = Field(description="The day DOST received the letter.")
    entered_by: str = Field(description="The client that entered it (also `submitted_by`).")


class VersionRead(ResponseModel):
    """A submitted version, frozen."""

    version_no: int
    kind: m.VersionKind
    reason: str | None
    submitted_at: datetime
    submitted_by: str
    backfill: BackfillRecord | None = Field(
        description="Set when the version was entered from the past as received (backfilled)."
    )
    warnings: list[ValidationWarning]
    content: ReportContent

    @classmethod
    def of(cls, v: m.ReportVersion) -> VersionRead:
        return cls(
            version_no=v.version_no,
            kind=v.kind,
            reason=v.reason,
            submitted_at=v.submitted_at,
            submitted_by=v.submitted_by,
            backfill=_backfill_of(v),
            warnings=[ValidationWarning.model_validate(w) for w in v.warnings],
            content=ReportContent.model_validate(v.content, context=STORED),
        )


def _backfill_of(v: m.ReportVersion) -> BackfillRecord | None:
    # The database's check: a backfilled version has its letter and received date.
    if not v.backfilled or v.letter_number is None or v.letter_date is None:
        return None
    if v.letter_issuer is None or v.received_on is None:
        return None
    return BackfillRecord(
        letter=LetterRead(number=v.letter_number, date=v.letter_date, issuer=v.letter_issuer),
        received_on=v.received_on,
        entered_by=v.submitted_by,
    )


class TimelinessRow(ResponseModel):
    """Whether a unit reported by the deadline: one shape in /timeliness and in rollups."""

    unit: UnitKey
    obligation_id: uuid.UUID | None = Field(
        description="The obligation; null only in rollup runs computed before rows named it."
    )
    due_date: date
    submitted_on: date | None = Field(
        description="Day the report reached DOST, which timeliness is judged on: the day (in "
        "Vietnam) it was first submitted, or for a report entered from the past the day DOST "
        "received its official letter; null: not yet."
    )
    status: Literal["on_time", "late", "missing", "not_due"] = Field(
        description="not_due: not sent and the deadline has not passed (in /timeliness only; "
        "a rollup counts every report not sent as missing)."
    )
    days_late: int | None = Field(description="Days after the deadline; null unless late.")
    accepted: bool = Field(description="A version of the report has been accepted.")

    @classmethod
    def of(cls, t: Timeliness) -> TimelinessRow:
        return cls(
            unit=t.unit.key,
            obligation_id=t.obligation.id,
            due_date=t.obligation.due_date,
            submitted_on=received_on(t.report),
            status=t.state,
            days_late=t.days_late,
            accepted=t.report is not None and t.report.accepted_version_no is not None,
        )

    @classmethod
    def of_rollup(cls, row: dict[str, Any]) -> TimelinessRow:
        """A row of a run's timeliness section (stored JSON, dates as text)."""
        due = date.fromisoformat(row["due_date"])
        submitted = date.fromisoformat(row["submitted_on"]) if row["submitted_on"] else None
        late = submitted is not None and submitted > due
        return cls(
            unit=row["unit"],
            obligation_id=row.get("obligation_id"),
            due_date=due,
            submitted_on=submitted,
            status=row["status"],
            days_late=(submitted - due).days if late and submitted else None,
            accepted=row["accepted"],
        )


class TimelinessSummary(ResponseModel):
    """Who reported, and when: the completeness and timeliness of a year."""

    year: int
    regime: str
    obligations: int
    on_time: int
    late: int
    missing: int
    not_due: int
    accepted: int
    rows: list[TimelinessRow] = Field(description="One per obligation, by unit.")


class ImportOutcome(ResponseModel):
    """What an import found; with `dry_run` nothing is changed whatever it found."""

    dry_run: bool
    valid: bool
    applied: bool
    rows_read: int
    values: int = Field(description="Rows that would be (or were) written to the draft.")
    errors: list[FieldError] = Field(
        description='Every row in error, as in a problem: `location` is ["body", row, column] '
        "(the row number the spreadsheet shows, its header being row 1, then the column's "
        'header), or ["body", row] for the row as a whole.'
    )
    revision: int | None = Field(description="The draft's revision after an applied import.")
