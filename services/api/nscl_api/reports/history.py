"""History and baselines: reports of past years entered as DOST received them (one by one,
or a province's whole history from one spreadsheet), and the baseline figures targets
compare with."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response as RawResponse
from pydantic import Field

from nscl_api.deps import CatalogueReader, ReportsManager, ResourcesDep, UowDep
from nscl_api.errors import responses
from nscl_api.problems import FieldError, problem_response
from nscl_api.reports.schemas import ReportRead, VersionRead
from nscl_api.types import IndicatorKey, Quantity, RequestModel, ResponseModel, UnitKey
from nscl_api.uploads import UPLOAD_PROBLEMS, read_upload
from nscl_domain.catalogue import baselines
from nscl_domain.catalogue.baselines import BaselineFigureInput, BaselineView
from nscl_domain.errors import Conflict, Forbidden, Invalid, NotFound
from nscl_domain.reports import backfill as backfilling
from nscl_domain.reports import history
from nscl_domain.reports.backfill import BackfillEntry, Entered, Letter
from nscl_domain.reports.content import ReportContent
from nscl_domain.reports.importing import (
    XLSX_MEDIA_TYPE,
)
from nscl_domain.types import IsoDate

router = APIRouter(tags=["history"])
uploads_router = APIRouter(tags=["history"])

Regime = Annotated[str, Query(max_length=100, description="The periodic regime entered.")]


# --- bodies -------------------------------------------------------------------------------


class LetterInput(RequestModel):
    """The official letter (công văn) that carried the report: số và ngày văn bản."""

    number: str = Field(min_length=1, max_length=100, examples=["152/BC-SYT"])
    date: IsoDate = Field(description="The letter's date.")
    issuer: str | None = Field(
        default=None,
        max_length=300,
        description="The issuing unit as printed on the letter; absent: the unit's name.",
    )


class BackfillCreate(RequestModel):
    """A report of a past year, as DOST received it."""

    unit: str = Field(max_length=100, description="The reporting unit's key.")
    year: int = Field(ge=2000, le=2100)
    regime: str = Field(default="bk-annual", max_length=100)
    letter: LetterInput
    received_on: IsoDate = Field(
        description="The day DOST received the letter: timeliness is judged on it."
    )
    content: ReportContent = Field(default_factory=ReportContent)
    reason: str | None = Field(
        default=None,
        min_length=3,
        max_length=5000,
        description="Only for a further letter on a report already accepted (a correction).",
    )


class BackfillRead(ResponseModel):
    """A report entered from the past: its state and the version just written."""

    unit: UnitKey
    year: int
    report: ReportRead
    version: VersionRead
    obligations_created: int = Field(
        description="Obligations of the year generated with it (every unit reporting then)."
    )


class EnteredRead(ResponseModel):
    unit: UnitKey
    year: int
    report_id: uuid.UUID
    version_no: int
    kind: Literal["submission", "resubmission", "correction"]
    received_on: date

    @classmethod
    def of(cls, entered: Entered) -> EnteredRead:
        assert entered.version.received_on is not None
        return cls(
            unit=entered.unit,
            year=entered.year,
            report_id=entered.report.id,
            version_no=entered.version.version_no,
            kind=entered.version.kind,
            received_on=entered.version.received_on,
        )


class HistoryImportOutcome(ResponseModel):
    """What an import of history found; with `dry_run` nothing is changed whatever it found."""

    dry_run: bool
    valid: bool
    applied: bool
    rows_read: int
    reports: int = Field(description="Unit-years the file holds (one report each).")
    errors: list[FieldError] = Field(
        description='Every problem, as in a problem: `location` is ["body", row, column] (the '
        "row number the spreadsheet shows, its header being row 1, then the column's header), "
        'or ["body", row] for the row as a whole.'
    )
    entered: list[EnteredRead] = Field(description="The reports entered (applied imports).")
    obligations_created: int


class BaselineFiguresCreate(RequestModel):
    figures: list[BaselineFigureInput] = Field(min_length=1, max_length=2000)


class BaselineFigureRead(ResponseModel):
    """A baseline figure and its source."""

    id: uuid.UUID
    indicator: IndicatorKey
    period: str | None = Field(description="Baseline period key; null for a base year.")
    year: int | None = Field(description="Base year; null for a period.")
    unit: UnitKey | None = Field(description="Null: the provincial total.")
    disaggregation: str = Field(description='"dimension=value" pairs joined by ";"; "" total.')
    value: Quantity
    source_document: str
    source_date: date
    note: str
    recorded_by: str
    recorded_at: datetime

    @classmethod
    def of(cls, view: BaselineView) -> BaselineFigureRead:
        f = view.figure
        return cls(
            id=f.id,
            indicator=view.indicator,
            period=view.period,
            year=f.year,
            unit=view.unit,
            disaggregation=f.disaggregation,
            value=f.value,
            source_document=f.source_document,
            source_date=f.source_date,
            note=f.note,
            recorded_by=f.recorded_by,
            recorded_at=f.recorded_at,
        )


class BaselineFigureList(ResponseModel):
    items: list[BaselineFigureRead]


# --- backfill -----------------------------------------------------------------------------


@router.post(
    "/v1/programmes/{programme}/report-backfills",
    status_code=201,
    operation_id="backfillReport",
    summary="Enter a past report as received",
    responses=responses(NotFound, Invalid, Forbidden, Conflict),
)
async def backfill_report(
    programme: str, body: BackfillCreate, uow: UowDep, actor: ReportsManager
) -> BackfillRead:
    """Enter a report of a past year as DOST received it: the letter that carried it and the
    day it arrived (timeliness is judged on that day). It is checked by the same rules as a
    submission and becomes an accepted, backfilled version feeding the rollups."""
    entry = BackfillEntry(
        unit=body.unit,
        year=body.year,
        letter=Letter(body.letter.number, body.letter.date, body.letter.issuer),
        received_on=body.received_on,
        content=body.content,
        reason=body.reason,
    )
    outcome = await backfilling.backfill(
        uow, actor, programme, [entry], regime_key=body.regime, dry_run=False,
        regime_at=("body", "regime"),
    )  # fmt: skip
    if not outcome.ok:
        raise backfilling.as_invalid(outcome, ("body",))
    [entered] = outcome.entered
    return BackfillRead(
        unit=entered.unit,
        year=entered.year,
        report=ReportRead.of(entered.report),
        version=VersionRead.of(entered.version),
        obligations_created=outcome.obligations_created,
    )


UPLOAD_BODY = {
    "required": True,
    "content": {
        XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
        "text/csv": {"schema": {"type": "string", "format": "binary"}},
    },
}
UPLOAD_ERRORS: dict[int | str, dict[str, Any]] = {
    **responses(NotFound, Invalid, Forbidden),
    **UPLOAD_PROBLEMS,
}


@uploads_router.post(
    "/v1/programmes/{programme}/report-backfills/import",
    operation_id="importReportHistory",
    summary="Import a province's report history from a spreadsheet",
    response_model=HistoryImportOutcome,
    openapi_extra={"requestBody": UPLOAD_BODY},
    responses=UPLOAD_ERRORS,
)
async def import_history(
    programme: str,
    request: Request,
    uow: UowDep,
    actor: ReportsManager,
    resources: ResourcesDep,
    dry_run: bool = True,
    regime: Regime = "bk-annual",
) -> HistoryImportOutcome | RawResponse:
    """Check every row of a CSV or XLSX file of many units × years (one report per unit and
    year, with its letter and the day DOST received it); a dry run only lists the problems,
    each at its row and column; a real import enters every report, or none if any row has a
    problem. The file's columns are described in docs/history.md."""
    rows = await read_upload(request, resources, history.REQUIRED_COLUMNS)
    if isinstance(rows, RawResponse):
        return rows
    found = await history.import_history(
        uow, actor, programme, rows, regime_key=regime, dry_run=dry_run
    )
    outcome = HistoryImportOutcome(
        dry_run=dry_run,
        valid=found.ok,
        applied=bool(found.entered),
        rows_read=found.rows_read,
        reports=found.reports,
        errors=[
            # A spreadsheet is the body: its rows by the number the user sees, then the cell's
            # column, as the errors of a unit's figures upload are placed.
            FieldError(
                location=["body", e.row, *([e.column] if e.column else [])],
                code=e.code,
                message=e.message,
            )
            for e in found.errors
        ],
        entered=[EnteredRead.of(e) for e in found.entered],
        obligations_created=found.obligations_created,
    )
    if not dry_run and not found.ok:
        return problem_response(
            422, "import_rejected",
            f"{len(found.errors)} error(s) in the file; nothing was entered.",
            instance=request.url.path, errors=outcome.errors,
        )  # fmt: skip
    return outcome


# --- baselines ----------------------------------------------------------------------------


@router.post(
    "/v1/programmes/{programme}/baselines",
    operation_id="recordBaselineFigures",
    summary="Record baseline figures",
    responses=responses(NotFound, Invalid, Forbidden),
)
async def record_baselines(
    programme: str, body: BaselineFiguresCreate, uow: UowDep, actor: ReportsManager
) -> BaselineFigureList:
    """Record figures of a baseline period (2011–2020) or a base year (2020), per unit or
    for the province, each with its source document; a figure recorded again replaces the
    earlier one (the audit trail keeps it). Targets that compare with a baseline are then
    judged in the rollups, and say which figures they used."""
    recorded = await baselines.record_figures(uow, actor, programme, body.figures)
    return BaselineFigureList(items=[BaselineFigureRead.of(v) for v in recorded])


@router.get(
    "/v1/programmes/{programme}/baselines",
    operation_id="listBaselineFigures",
    summary="List baseline figures",
    responses=responses(NotFound),
)
async def list_baselines(
    programme: str,
    uow: UowDep,
    caller: CatalogueReader,
    indicator: Annotated[str | None, Query(max_length=100)] = None,
    unit: Annotated[str | None, Query(max_length=100)] = None,
    period: Annotated[str | None, Query(max_length=100)] = None,
    year: Annotated[int | None, Query(ge=1990, le=2100)] = None,
) -> BaselineFigureList:
    """The baseline figures of a programme with their sources, by indicator, period or
    year, and unit (the provincial total first)."""
    found = await baselines.list_figures(
        uow, caller, programme, indicator=indicator, unit=unit, period=period, year=year
    )
    return BaselineFigureList(items=[BaselineFigureRead.of(v) for v in found])
