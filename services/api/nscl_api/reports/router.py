"""Reporting: regimes, obligations, ad hoc requests, reports and their review."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import Response as RawResponse

from nscl_api.conditional import IfMatch, etag, expected_revision, sends
from nscl_api.deps import (
    CatalogueReader,
    ReportsManager,
    ReportsReader,
    ReportsReviewer,
    ReportsWriter,
    ResourcesDep,
    UowDep,
)
from nscl_api.errors import responses
from nscl_api.exports import (
    SUMMARY_COLUMNS,
    FormatQuery,
    Table,
    export_language,
    export_response,
    export_responses,
    negotiate,
    summary_rows,
    table_of,
)
from nscl_api.idempotency import IDEMPOTENT
from nscl_api.messages import message, preferred_language
from nscl_api.pagination import (
    Cursor,
    Limit,
    Page,
    Subtree,
    UnitFilter,
    UpdatedSince,
    before_id_of,
    keyset_page,
    offset_of,
    offset_page,
)
from nscl_api.problems import FieldError, problem_response
from nscl_api.reports.schemas import (
    ImportOutcome,
    ObligationGenerated,
    ObligationGeneration,
    ObligationRead,
    RegimeRead,
    RegimeUpdate,
    ReportCreate,
    ReportRead,
    RequestCreate,
    RequestRead,
    RuleRead,
    RuleUpdate,
    TimelinessRow,
    TimelinessSummary,
    VersionRead,
)
from nscl_api.review import ReviewRoutes
from nscl_api.types import Reason
from nscl_api.uploads import UPLOAD_PROBLEMS, parse_upload
from nscl_domain.errors import Conflict, Forbidden, Invalid, NotFound, PreconditionFailed
from nscl_domain.identity import Caller
from nscl_domain.reports import imports, obligations, regimes
from nscl_domain.reports import service as reports
from nscl_domain.reports import timeliness as timeliness_of
from nscl_domain.reports.content import ReportContent
from nscl_domain.reports.importing import (
    CSV_MEDIA_TYPE,
    XLSX_MEDIA_TYPE,
    read_and_check,
)
from nscl_domain.reports.models import Report
from nscl_domain.uow import UnitOfWork
from nscl_domain.workflow import ReviewStatus

router = APIRouter(tags=["reporting"])
# Uploads are spreadsheets, not JSON: this router is spared the JSON-only rule.
uploads_router = APIRouter(tags=["reporting"])

CHANGE_ERRORS = responses(NotFound, Conflict, PreconditionFailed, Invalid, Forbidden, 428)


def _with_etag(response: Response, revision: int) -> None:
    response.headers["ETag"] = etag(revision)


@router.get(
    "/v1/programmes/{programme}/reporting-regimes",
    operation_id="listReportingRegimes",
    summary="List reporting regimes",
    responses=responses(NotFound),
)
async def list_regimes(programme: str, uow: UowDep, caller: ReportsReader) -> Page[RegimeRead]:
    """What is due when: the annual report, the mid-term and final reviews."""
    rows = await regimes.list_regimes(uow, caller, programme)
    return Page[RegimeRead](items=[RegimeRead.of(r) for r in rows])


@router.patch(
    "/v1/programmes/{programme}/reporting-regimes/{key}",
    operation_id="updateReportingRegime",
    summary="Move a regime's deadline",
    responses=responses(NotFound, Invalid),
)
async def update_regime(
    programme: str, key: str, body: RegimeUpdate, uow: UowDep, actor: ReportsManager
) -> RegimeRead:
    """Change the deadline; obligations generated afterwards take it."""
    regime = await regimes.update_regime(uow, actor, programme, key, **body.model_dump())
    return RegimeRead.of(regime)


@router.get(
    "/v1/validation-rules", operation_id="listValidationRules", summary="List validation rules"
)
async def list_rules(uow: UowDep, caller: CatalogueReader) -> Page[RuleRead]:
    """The rules a submission is checked against, with their severity and parameters."""
    return Page[RuleRead](items=[RuleRead.of(r) for r in await regimes.list_rules(uow, caller)])


@router.patch(
    "/v1/validation-rules/{code}",
    operation_id="updateValidationRule",
    summary="Change a validation rule",
    responses=responses(NotFound, Invalid),
)
async def update_rule(code: str, body: RuleUpdate, uow: UowDep, actor: ReportsManager) -> RuleRead:
    """Change a rule's severity, parameters, or switch it off."""
    setting = await regimes.update_rule(uow, actor, code, **body.model_dump())
    return RuleRead.of(setting)


@router.post(
    "/v1/programmes/{programme}/obligations/generation",
    operation_id="generateObligations",
    summary="Generate a year's obligations",
    responses=responses(NotFound, Invalid),
)
async def generate_obligations(
    programme: str, body: ObligationGeneration, uow: UowDep, actor: ReportsManager
) -> ObligationGenerated:
    """Create an obligation for every unit reporting on the due date (safe to repeat)."""
    created = await obligations.generate_obligations(
        uow, actor, programme, year=body.year, regime_key=body.regime
    )
    return ObligationGenerated(created=created)


@router.get(
    "/v1/programmes/{programme}/obligations",
    operation_id="listObligations",
    summary="List obligations",
    responses=responses(NotFound, Invalid),
)
async def list_obligations(
    programme: str,
    uow: UowDep,
    caller: ReportsReader,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
    regime: Annotated[str | None, Query(max_length=100)] = None,
    request_id: uuid.UUID | None = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Page[ObligationRead]:
    """Obligations and their reports' status; a reporting unit sees only its own."""
    offset = offset_of(cursor)
    rows = await obligations.list_obligations(
        uow, caller, programme, year=year, regime=regime, request_id=request_id,
        offset=offset, limit=limit,
    )  # fmt: skip
    items, next_cursor = offset_page(rows, offset, limit)
    return Page[ObligationRead](
        items=[ObligationRead.of(o) for o in items], next_cursor=next_cursor
    )


@router.post(
    "/v1/programmes/{programme}/reporting-requests",
    status_code=201,
    operation_id="createReportingRequest",
    dependencies=[IDEMPOTENT],
    summary="Issue an ad hoc request",
    responses=responses(NotFound, Invalid),
)
async def create_request(
    programme: str, body: RequestCreate, uow: UowDep, actor: ReportsManager
) -> RequestRead:
    """Ask some units for an ad hoc report with its own indicators, questions and deadline."""
    request, created = await obligations.create_request(uow, actor, programme, **body.model_dump())
    return RequestRead(
        id=request.id, title_vi=request.title_vi, title_en=request.title_en, year=request.year,
        due_date=request.due_date, indicators=request.indicator_keys,
        questions=request.questions, requested_by=request.requested_by,
        obligations_created=created,
    )  # fmt: skip


@router.get(
    "/v1/programmes/{programme}/timeliness",
    operation_id="getTimeliness",
    summary="Who reported on time",
    response_model=TimelinessSummary,
    responses={
        **export_responses("The year's timeliness; CSV: the rows, XLSX: the counts and rows."),
        **responses(NotFound, Invalid),
    },
)
async def timeliness(
    programme: str,
    uow: UowDep,
    caller: ReportsReader,
    request: Request,
    year: Annotated[int, Query(ge=2000, le=2100)],
    regime: Annotated[str, Query(max_length=100)] = "bk-annual",
    format: FormatQuery = None,
) -> Any:
    """Completeness and timeliness of a year: on time, late (by how many days), missing."""
    chosen = negotiate(request, format)
    rows = await timeliness_of.timeliness(uow, caller, programme, year=year, regime=regime)
    states = [r.state for r in rows]
    verdicts = [TimelinessRow.of(r) for r in rows]
    summary = TimelinessSummary(
        year=year,
        regime=regime,
        obligations=len(rows),
        on_time=states.count("on_time"),
        late=states.count("late"),
        missing=states.count("missing"),
        not_due=states.count("not_due"),
        # As a rollup counts them: a report corrected after acceptance stays accepted.
        accepted=sum(1 for r in verdicts if r.accepted),
        rows=verdicts,
    )
    if chosen == "json":
        return summary
    data = summary.model_dump(mode="json")
    fields = [name for name in TimelinessSummary.model_fields if name != "rows"]
    tables = [
        table_of("Đúng hạn", ("Tình hình gửi báo cáo", "Timeliness"), TimelinessRow, data["rows"]),
        Table("Tổng hợp", "Tổng hợp", "Summary", SUMMARY_COLUMNS, summary_rows(data, fields)),
    ]
    return export_response(
        tables, chosen, export_language(request), f"timeliness-{programme}-{year}"
    )


@router.post(
    "/v1/reports",
    status_code=201,
    operation_id="createReport",
    openapi_extra=sends("ETag", "Location"),
    dependencies=[IDEMPOTENT],
    summary="Open a report",
    responses=responses(NotFound, Conflict, Invalid),
)
async def create_report(
    body: ReportCreate,
    uow: UowDep,
    caller: ReportsWriter,
    response: Response,
) -> ReportRead:
    """Open the draft report of one of the unit's obligations (honours Idempotency-Key)."""
    report, _ = await reports.create_report(uow, caller, body.obligation_id)
    response.headers["Location"] = f"/v1/reports/{report.id}"
    _with_etag(response, report.revision)
    return ReportRead.of(report)


@router.get(
    "/v1/reports",
    operation_id="listReports",
    summary="List reports",
    responses=responses(NotFound, Invalid),
)
async def list_reports(
    uow: UowDep,
    caller: ReportsReader,
    programme: Annotated[
        str | None,
        Query(max_length=100, description="Programme key or id.", examples=["bac-kan-nscl"]),
    ] = None,
    unit: UnitFilter = None,
    subtree: Subtree = False,
    year: Annotated[int | None, Query(ge=2000, le=2100, description="Year reported on.")] = None,
    status: ReviewStatus | None = None,
    regime: Annotated[
        str | None, Query(max_length=100, description="Regime key.", examples=["bk-annual"])
    ] = None,
    request_id: Annotated[uuid.UUID | None, Query(description="Ad hoc request answered.")] = None,
    updated_since: UpdatedSince = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[ReportRead]:
    """Reports newest first; a reporting unit sees its own, reviewers and auditors every
    unit's (as `getReport`). Follow `next_cursor` to page; ids seen never shift."""
    rows = await reports.list_reports(
        uow, caller, programme=programme, unit=unit, subtree=subtree, year=year, status=status,
        regime=regime, request_id=request_id, updated_since=updated_since,
        before_id=before_id_of(cursor), limit=limit,
    )  # fmt: skip
    items, next_cursor = keyset_page(rows, limit, lambda r: r.id)
    return Page[ReportRead](items=[ReportRead.of(r) for r in items], next_cursor=next_cursor)


@router.get(
    "/v1/reports/{report_id}",
    operation_id="getReport",
    openapi_extra=sends("ETag"),
    summary="Get a report",
    responses=responses(NotFound),
)
async def get_report(
    report_id: uuid.UUID, uow: UowDep, caller: ReportsReader, response: Response
) -> ReportRead:
    """A report with its draft; the ETag is what If-Match must name to change it."""
    report = await reports.get_report(uow, caller, report_id)
    _with_etag(response, report.revision)
    return ReportRead.of(report)


@router.put(
    "/v1/reports/{report_id}/draft",
    operation_id="updateReportDraft",
    openapi_extra=sends("ETag"),
    summary="Write the draft",
    responses=CHANGE_ERRORS,
)
async def update_draft(
    report_id: uuid.UUID,
    body: ReportContent,
    uow: UowDep,
    caller: ReportsWriter,
    response: Response,
    if_match: IfMatch = None,
) -> ReportRead:
    """Replace the draft's content; only while draft or returned (409 once submitted)."""
    report = await reports.update_draft(
        uow, caller, report_id, body.model_dump(mode="json"),
        expected_revision=expected_revision(if_match, Report.noun),
    )  # fmt: skip
    _with_etag(response, report.revision)
    return ReportRead.of(report)


def _read(report: Report, response: Response) -> ReportRead:
    _with_etag(response, report.revision)
    return ReportRead.of(report)


async def _submit(
    uow: UnitOfWork, caller: Caller, report_id: uuid.UUID, *, expected_revision: int
) -> Report:
    report, _ = await reports.submit(uow, caller, report_id, expected_revision=expected_revision)
    return report


review = ReviewRoutes[Report](
    router, "/v1/reports/{report_id}", "report_id", Report.noun, ReportRead, _read, CHANGE_ERRORS
)
review.add(
    "submission", _submit, operation_id="submitReport", summary="Submit the report",
    doc="Check the draft against the validation rules and freeze it as a new version.",
    caller=ReportsWriter,
)  # fmt: skip
review.add(
    "return", reports.return_report, operation_id="returnReport",
    summary="Return the report to its unit",
    doc="Send a submitted report back with the reason; its unit edits and resubmits it.",
    caller=ReportsReviewer, reason=Reason,
)  # fmt: skip
review.add(
    "acceptance", reports.accept, operation_id="acceptReport", summary="Accept the report",
    doc="""Accept the latest version; its figures feed the rollups. `Link` (rel `monitor`) names
    the refresh job: once done, its `result.run_id` is the run published, and that run's
    `inputs` list this report's accepted version.""",
    caller=ReportsReviewer, monitored=True,
)  # fmt: skip
review.add(
    "correction", reports.correct, operation_id="correctReport",
    summary="Correct an accepted report",
    doc="Reopen an accepted report as the draft of a new version, with the reason.",
    caller=ReportsWriter, reason=Reason,
)  # fmt: skip


@router.get(
    "/v1/reports/{report_id}/versions",
    operation_id="listReportVersions",
    summary="List a report's versions",
    responses=responses(NotFound),
)
async def list_versions(
    report_id: uuid.UUID, uow: UowDep, caller: ReportsReader
) -> Page[VersionRead]:
    """Every submitted version, oldest first; none is ever changed."""
    rows = await reports.list_versions(uow, caller, report_id)
    return Page[VersionRead](items=[VersionRead.of(v) for v in rows])


@router.get(
    "/v1/reports/{report_id}/versions/{version_no}",
    operation_id="getReportVersion",
    summary="Get a version",
    responses=responses(NotFound),
)
async def get_version(
    report_id: uuid.UUID,
    version_no: Annotated[int, Path(ge=1, le=10_000)],
    uow: UowDep,
    caller: ReportsReader,
) -> VersionRead:
    """One submitted version with its content and the warnings stored with it."""
    return VersionRead.of(await reports.get_version(uow, caller, report_id, version_no))


TEMPLATE_FORMATS = {"xlsx": XLSX_MEDIA_TYPE, "csv": CSV_MEDIA_TYPE}
# A file, not JSON: generated clients hand it over as bytes to save.
_FILE = {"schema": {"type": "string", "format": "binary"}}


@router.get(
    "/v1/reports/{report_id}/indicator-template",
    operation_id="getIndicatorTemplate",
    summary="Download the indicator values template",
    response_class=RawResponse,
    responses={
        200: {
            "description": "The template, prefilled with the unit and year.",
            "content": {XLSX_MEDIA_TYPE: _FILE, CSV_MEDIA_TYPE: _FILE},
            "headers": {
                "Content-Disposition": {
                    "description": "`attachment`, with the file name to save it under.",
                    "schema": {"type": "string"},
                }
            },
        },
        **responses(NotFound),
    },
)
async def indicator_template(
    report_id: uuid.UUID,
    uow: UowDep,
    caller: ReportsWriter,
    request: Request,
    format: Annotated[Literal["xlsx", "csv"], Query(description="The file's format.")] = "xlsx",
) -> RawResponse:
    """A spreadsheet with one row per typed indicator (and disaggregation) to fill in: a
    title block, headings in Vietnamese (`Accept-Language: en` for English) over the column
    keys, the draft's figures filled in; in the workbook the value cells are the only ones
    not locked, checked as whole numbers (counts) or 0–100 (percentages), and breakdowns
    are drop-down lists."""
    language = preferred_language(request.headers.get("accept-language"), default="vi")
    data, filename = await imports.indicator_template(
        uow, caller, report_id, TEMPLATE_FORMATS[format], language
    )
    return RawResponse(
        data,
        media_type=TEMPLATE_FORMATS[format],
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Content-Language": language,
        },
    )


@uploads_router.post(
    "/v1/reports/{report_id}/indicator-values/import",
    operation_id="importIndicatorValues",
    summary="Import indicator values from a spreadsheet",
    response_model=ImportOutcome,
    openapi_extra={
        **sends("ETag"),
        "requestBody": {
            "required": True,
            "description": "The file's bytes: an Excel workbook or UTF-8 CSV, as the template. "
            "A workbook is read as one whatever its label says, since no CSV is a ZIP.",
            "content": {
                XLSX_MEDIA_TYPE: _FILE,
                CSV_MEDIA_TYPE: _FILE,
            },
        },
    },
    responses={**CHANGE_ERRORS, **UPLOAD_PROBLEMS},
)
async def import_values(
    report_id: uuid.UUID,
    request: Request,
    uow: UowDep,
    caller: ReportsWriter,
    response: Response,
    resources: ResourcesDep,
    dry_run: bool = True,
    if_match: IfMatch = None,
) -> ImportOutcome | RawResponse:
    """Check every row of a CSV or XLSX upload; a dry run only reports, and a real import
    changes the draft only when every row passes."""
    target = await imports.import_target(uow, caller, report_id)
    # Reading and checking run in one parser process: both are CPU-bound (seconds for
    # 20,000 rows) and must never hold up the event loop.
    result = await parse_upload(
        request, resources, read_and_check, target.indicators, target.scope,
        keep_values=not dry_run,
    )  # fmt: skip
    if isinstance(result, RawResponse):
        return result
    revision = None if dry_run else expected_revision(if_match, Report.noun)
    report = await imports.import_values(
        uow, caller, report_id, result, target, dry_run=dry_run, expected_revision=revision
    )
    outcome = ImportOutcome(
        dry_run=dry_run,
        valid=result.ok,
        applied=report is not None,
        rows_read=result.rows_read,
        values=result.value_count,
        errors=[
            # A spreadsheet is the body: its rows by the number the user sees, then the cell's
            # column, as a JSON body's errors name an item, then its field.
            FieldError(
                location=["body", e.row, *([e.column] if e.column else [])],
                code=e.code,
                message=message(e.code, e.message, dict(e.params)),
            )
            for e in result.errors
        ],
        revision=report.revision if report else None,
    )
    if not dry_run and not result.ok:
        return problem_response(
            422, "import_rejected",
            f"{len(result.errors)} error(s) in the file; nothing was imported.",
            instance=request.url.path, errors=outcome.errors,
            params={"count": len(result.errors)},
        )  # fmt: skip
    if report is not None:
        _with_etag(response, report.revision)
    return outcome
