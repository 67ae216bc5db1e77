"""Programme records of DOST and the units, their review and versions."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Query, Response

from nscl_api.conditional import IfMatch, etag, expected_revision, sends
from nscl_api.deps import ReportsReader, ReportsReviewer, ReportsWriter, UowDep
from nscl_api.errors import responses
from nscl_api.idempotency import IDEMPOTENT
from nscl_api.pagination import Cursor, Limit, Page, offset_of, offset_page
from nscl_api.records.schemas import (
    EXAMPLES,
    RecordRead,
    RecordSummary,
    RecordVersionRead,
    RecordWrite,
)
from nscl_api.review import ReviewRoutes
from nscl_api.types import Reason
from nscl_domain.errors import Conflict, Forbidden, Invalid, NotFound, PreconditionFailed
from nscl_domain.records import service as records
from nscl_domain.records.content import RecordKind
from nscl_domain.records.models import ProgrammeRecord
from nscl_domain.records.service import RecordView
from nscl_domain.workflow import ReviewStatus

router = APIRouter(tags=["records"])
CHANGE_ERRORS = responses(NotFound, Conflict, PreconditionFailed, Invalid, Forbidden, 428)
NOUN = ProgrammeRecord.noun
RecordBody = Annotated[RecordWrite, Body(openapi_examples=EXAMPLES)]


def _read(view: RecordView, response: Response) -> RecordRead:
    response.headers["ETag"] = etag(view.record.revision)
    return RecordRead.of_view(view)


@router.post(
    "/v1/programmes/{programme}/records",
    status_code=201,
    operation_id="createRecord",
    openapi_extra=sends("ETag", "Location"),
    dependencies=[IDEMPOTENT],
    summary="Open a programme record",
    responses=responses(NotFound, Invalid),
)
async def create_record(
    programme: str, body: RecordBody, uow: UowDep, caller: ReportsWriter, response: Response
) -> RecordRead:
    """Open a draft record of the caller's unit: an honour, a National Quality Award entry,
    a training course, a communication activity, a model enterprise or an inspection."""
    view = await records.create_record(uow, caller, programme, body.content.model_dump(mode="json"))
    response.headers["Location"] = f"/v1/records/{view.record.id}"
    return _read(view, response)


@router.get(
    "/v1/programmes/{programme}/records",
    operation_id="listRecords",
    summary="List programme records",
    responses=responses(NotFound, Invalid),
)
async def list_records(
    programme: str,
    uow: UowDep,
    caller: ReportsReader,
    unit: Annotated[
        str | None, Query(max_length=100, description="Key of the filing unit.")
    ] = None,
    year: Annotated[
        int | None, Query(ge=2000, le=2100, description="The year it counts in.")
    ] = None,
    kind: RecordKind | None = None,
    status: ReviewStatus | None = None,
    q: Annotated[
        str | None,
        Query(
            max_length=200,
            description="Words to find (all of them, any order), with or without diacritics.",
        ),
    ] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Page[RecordSummary]:
    """Records by year, oldest first; a reporting unit sees only its own."""
    offset = offset_of(cursor)
    key, rows = await records.list_records(
        uow, caller, programme, unit=unit, year=year, kind=kind, status=status, q=q,
        offset=offset, limit=limit,
    )  # fmt: skip
    items, next_cursor = offset_page(rows, offset, limit)
    return Page[RecordSummary](
        items=[RecordSummary.of(record, unit_key, key) for record, unit_key in items],
        next_cursor=next_cursor,
    )


@router.get(
    "/v1/records/{record_id}",
    operation_id="getRecord",
    openapi_extra=sends("ETag"),
    summary="Get a programme record",
    responses=responses(NotFound),
)
async def get_record(
    record_id: uuid.UUID, uow: UowDep, caller: ReportsReader, response: Response
) -> RecordRead:
    """The record's working content, what it counts and where its review stands."""
    return _read(await records.get_record(uow, caller, record_id), response)


@router.put(
    "/v1/records/{record_id}/content",
    operation_id="writeRecordContent",
    openapi_extra=sends("ETag"),
    summary="Rewrite a draft record",
    responses=CHANGE_ERRORS,
)
async def write_content(
    record_id: uuid.UUID,
    body: RecordBody,
    uow: UowDep,
    caller: ReportsWriter,
    response: Response,
    if_match: IfMatch = None,
) -> RecordRead:
    """Replace the content of a draft or returned record (its kind stays)."""
    view = await records.update_record(
        uow, caller, record_id, body.content.model_dump(mode="json"),
        expected_revision=expected_revision(if_match, NOUN),
    )  # fmt: skip
    return _read(view, response)


review = ReviewRoutes[RecordView](
    router, "/v1/records/{record_id}", "record_id", NOUN, RecordRead, _read, CHANGE_ERRORS
)
review.add(
    "submission", records.submit, operation_id="submitRecord", summary="Submit the record",
    doc="Freeze the content as a version, with the figures it counts, for review.",
    caller=ReportsWriter,
)  # fmt: skip
review.add(
    "acceptance", records.accept_record, operation_id="acceptRecord",
    summary="Accept the record",
    doc="Accept the last submitted version: its figures count in the year's rollup.",
    caller=ReportsReviewer,
)  # fmt: skip
review.add(
    "return", records.return_record, operation_id="returnRecord", summary="Return the record",
    doc="Return a submitted record to its unit with the reason.",
    caller=ReportsReviewer,
    reason=Annotated[
        Reason,
        Body(openapi_examples={"missing": {"value": {"reason": "Thiếu quyết định kèm theo"}}}),
    ],
)  # fmt: skip
review.add(
    "correction", records.correct_record, operation_id="correctRecord",
    summary="Reopen an accepted record for a correction",
    doc="""Reopen an accepted record as a draft of its next version (an inspection's follow-up,
    a model enterprise's progress); the accepted version counts until the next is accepted.""",
    caller=ReportsWriter,
    reason=Annotated[
        Reason,
        Body(openapi_examples={"follow_up": {"value": {"reason": "Cập nhật kết quả khắc phục"}}}),
    ],
)  # fmt: skip


@router.get(
    "/v1/records/{record_id}/versions",
    operation_id="listRecordVersions",
    summary="The record's versions",
    responses=responses(NotFound),
)
async def list_versions(
    record_id: uuid.UUID, uow: UowDep, caller: ReportsReader
) -> Page[RecordVersionRead]:
    """Every submitted version, oldest first, each with the figures it counts; frozen."""
    versions = await records.list_versions(uow, caller, record_id)
    return Page[RecordVersionRead](items=[RecordVersionRead.of(v, f) for v, f in versions])
