"""Use cases of programme records: open one, rewrite its draft, submit it (its figures are
counted and frozen with the version), review, correct, list and read its versions.

Records are reviewed exactly as reports are (the shared workflow), by the same roles: a
unit's reporters file them, the lead department's reviewers accept or return them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from nscl_domain.audit.repository import AuditRepository, snapshot
from nscl_domain.catalogue import models as cm
from nscl_domain.catalogue.repository import CatalogueRepository
from nscl_domain.catalogue.service import programme_or_404
from nscl_domain.errors import FieldProblem, Invalid, NotFound
from nscl_domain.identity import Caller, Permission
from nscl_domain.jobs.requests import refresh_later
from nscl_domain.records import models as m
from nscl_domain.records.content import (
    RECORD_CONTENT,
    InspectionRecord,
    RecordContent,
    RecordKind,
    record_figures,
    reference_date,
    searchable,
    title_of,
)
from nscl_domain.records.repository import RecordRepository
from nscl_domain.text import fold
from nscl_domain.types import STORED
from nscl_domain.uow import UnitOfWork
from nscl_domain.workflow import Action, Edit, Review, ReviewStatus, Submit

CONTENT_AT = ("body", "content")


@dataclass(frozen=True)
class Figure:
    """What a record counts towards one indicator."""

    indicator: str
    disaggregation: str
    value: Decimal


@dataclass(frozen=True)
class RecordView:
    record: m.ProgrammeRecord
    unit_key: str
    programme_key: str
    figures: list[Figure]
    """What the draft would count, by indicator: the accepted version's once accepted."""


def _records(uow: UnitOfWork) -> RecordRepository:
    return uow.get(RecordRepository)


def parse_content(raw: Any) -> RecordContent:
    """The content of a record, or Invalid naming each field."""
    try:
        return RECORD_CONTENT.validate_python(raw)
    except ValidationError as exc:
        raise Invalid(
            f"The record is invalid in {exc.error_count()} place(s).",
            code="invalid_content",
            fields=FieldProblem.all_of(exc, CONTENT_AT),
        ) from exc


def figures_for(
    content: RecordContent, indicators: Sequence[cm.Indicator]
) -> list[tuple[cm.Indicator, str, Decimal]]:
    """The record's counts placed on the indicators naming their measures; a breakdown is
    kept only where the indicator declares that dimension and value."""
    counted = record_figures(content)
    placed = []
    for indicator in sorted(indicators, key=lambda i: i.key):
        declared = {d["dimension"]: set(d["values"]) for d in indicator.disaggregations}
        for (measure, parts), value in sorted(counted.items()):
            if measure != indicator.derived_from:
                continue
            if parts and not all(
                dimension in declared and choice in declared[dimension]
                for dimension, choice in (part.split("=", 1) for part in parts.split(";"))
            ):
                continue
            placed.append((indicator, parts, value))
    return placed


async def _year_of(uow: UnitOfWork, programme: cm.Programme, content: RecordContent) -> int:
    """The programme year the content falls in (Invalid outside the programme, or when an
    inspection names no unit)."""
    day = reference_date(content)
    if not programme.start_year <= day.year <= programme.end_year:
        raise Invalid(
            f"The record is dated {day}; the programme runs "
            f"{programme.start_year}–{programme.end_year}.",
            code="year_outside_programme",
            fields=[FieldProblem(CONTENT_AT, "Dated outside the programme.")],
        )
    if isinstance(content, InspectionRecord):
        unit = await uow.get(CatalogueRepository).unit_by_key(content.inspected_unit)
        if unit is None:
            raise Invalid(
                f"No unit {content.inspected_unit!r}.",
                code="unit_not_found",
                fields=[FieldProblem((*CONTENT_AT, "inspected_unit"), "No such unit.")],
            )
    return day.year


def _write(record: m.ProgrammeRecord, content: RecordContent, year: int) -> None:
    record.draft = content.model_dump(mode="json")
    record.year = year
    record.title = title_of(content)
    record.search_text = searchable(content)


async def _view(uow: UnitOfWork, record: m.ProgrammeRecord) -> RecordView:
    programme = await _records(uow).programme(record.programme_id)
    content = parse_stored(record.draft)
    figures = figures_for(content, await _records(uow).derived_indicators(programme.id))
    return RecordView(
        record,
        await _records(uow).unit_key(record.unit_id),
        programme.key,
        [Figure(i.key, parts, value) for i, parts, value in figures],
    )


def parse_stored(stored: dict[str, Any]) -> RecordContent:
    """Content as it was stored (checked when written; read back as it is)."""
    return RECORD_CONTENT.validate_python(stored, context=STORED)


async def create_record(
    uow: UnitOfWork, caller: Caller, programme_ref: str, raw: Any
) -> RecordView:
    """Open a draft record of the caller's unit."""
    caller.require(Permission.REPORTS_WRITE)
    content = parse_content(raw)
    async with uow:
        programme = await programme_or_404(uow, programme_ref)
        year = await _year_of(uow, programme, content)
        record = m.ProgrammeRecord(
            programme_id=programme.id,
            unit_id=caller.unit_id,
            kind=RecordKind(content.kind),
            status=ReviewStatus.DRAFT,
            created_by=caller.client_id,
        )
        _write(record, content, year)
        _records(uow).add(record)
        await _records(uow).flush()
        uow.get(AuditRepository).record(
            caller, "record.created", m.ProgrammeRecord.__tablename__, record.id,
            after=snapshot(record),
        )  # fmt: skip
        view = await _view(uow, record)
        await uow.commit()
    return view


async def get_record(uow: UnitOfWork, caller: Caller, record_id: uuid.UUID) -> RecordView:
    """A record, if the caller's unit may see it."""
    caller.require(Permission.REPORTS_READ)
    async with uow:
        return await _view(uow, await _records(uow).record(record_id, caller.read_scope))


async def _write_draft(uow: UnitOfWork, record: m.ProgrammeRecord, content: RecordContent) -> None:
    if content.kind != record.kind:
        raise Invalid(
            f"This record is a {record.kind}; open a new record for a {content.kind}.",
            code="record_kind_changed",
            fields=[FieldProblem((*CONTENT_AT, "kind"), "A record keeps its kind.")],
        )
    programme = await _records(uow).programme(record.programme_id)
    _write(record, content, await _year_of(uow, programme, content))


update_record = Edit(
    m.ProgrammeRecord,
    Permission.REPORTS_WRITE,
    "record.draft_updated",
    parse=parse_content,
    write=_write_draft,
    audited=lambda record, _: {"revision": record.revision, "year": record.year},
    view=_view,
)
"""Replace the draft's content (If-Match: the revision the caller last read)."""


async def _freeze(
    uow: UnitOfWork, caller: Caller, record: m.ProgrammeRecord, now: datetime
) -> m.ProgrammeRecordVersion:
    """Freeze the draft as a version with the figures it counts."""
    content = parse_stored(record.draft)
    kind: m.RecordVersionKind = (
        "correction"
        if record.correction_reason
        else ("resubmission" if record.status == ReviewStatus.RETURNED else "submission")
    )
    version = m.ProgrammeRecordVersion(
        record_id=record.id,
        version_no=record.latest_version_no + 1,
        kind=kind,
        year=record.year,
        content=record.draft,
        reason=record.correction_reason,
        submitted_at=now,
        submitted_by=caller.client_id,
    )
    _records(uow).add(version)
    await _records(uow).flush()
    indicators = await _records(uow).derived_indicators(record.programme_id)
    await _records(uow).add_figures(
        [
            {
                "version_id": version.id,
                "indicator_id": indicator.id,
                "disaggregation": parts,
                "unit_id": record.unit_id,
                "year": record.year,
                "value": value,
            }
            for indicator, parts, value in figures_for(content, indicators)
        ]
    )
    record.latest_version_no = version.version_no
    return version


async def _with_version(
    uow: UnitOfWork, record: m.ProgrammeRecord, version: m.ProgrammeRecordVersion
) -> RecordView:
    return await _view(uow, record)


submit = Submit(
    m.ProgrammeRecord,
    Permission.REPORTS_WRITE,
    prepare=_freeze,
    audited=lambda _, v: {"version": v.version_no, "kind": v.kind, "year": v.year},
    view=_with_version,
)
"""Freeze the draft as a new version, its figures counted, for the reviewer."""


async def _record_accepted(uow: UnitOfWork, reviewer: Caller, record: m.ProgrammeRecord) -> None:
    # A correction may have moved the record to another year: every year any version of it
    # counted in is refreshed (a refresh that finds nothing changed publishes nothing).
    years = {v.year for v in await _records(uow).versions(record.id)}
    for year in sorted(years):
        await refresh_later(uow, record.programme_id, year, requested_by=reviewer.client_id)


_review = Review(
    m.ProgrammeRecord,
    Permission.REPORTS_REVIEW,
    view=_view,
    audited=lambda record, reason: (
        {"version": record.accepted_version_no}
        if record.status == ReviewStatus.ACCEPTED
        else {"reason": reason}
    ),
    accepted=_record_accepted,
)


async def return_record(
    uow: UnitOfWork, reviewer: Caller, record_id: uuid.UUID, *, reason: str, expected_revision: int
) -> RecordView:
    """Send a submitted record back to its unit with the reason."""
    return await _review(
        uow, reviewer, record_id, Action.RETURN, expected_revision=expected_revision, reason=reason
    )


async def accept_record(
    uow: UnitOfWork, reviewer: Caller, record_id: uuid.UUID, *, expected_revision: int
) -> RecordView:
    """Accept the latest submitted version; its figures feed the rollups."""
    return await _review(
        uow, reviewer, record_id, Action.ACCEPT, expected_revision=expected_revision
    )


async def correct_record(
    uow: UnitOfWork, caller: Caller, record_id: uuid.UUID, *, reason: str, expected_revision: int
) -> RecordView:
    """Reopen an accepted record as a draft of its next version; the accepted version keeps
    counting until the correction is accepted."""
    caller.require(Permission.REPORTS_WRITE)
    async with uow:
        record = await _records(uow).record_for_change(record_id, caller.unit_id, expected_revision)
        record.correct(reason, uow.now())
        uow.get(AuditRepository).record(
            caller, "record.correction_opened", m.ProgrammeRecord.__tablename__, record.id,
            after={"reason": reason},
        )  # fmt: skip
        view = await _view(uow, record)
        await uow.commit()
    return view


async def list_records(
    uow: UnitOfWork,
    caller: Caller,
    programme_ref: str,
    *,
    unit: str | None,
    year: int | None,
    kind: RecordKind | None,
    status: ReviewStatus | None,
    q: str | None,
    offset: int,
    limit: int,
) -> tuple[str, Sequence[tuple[m.ProgrammeRecord, str]]]:
    """The programme's key and its records with their units' keys (a reporting unit sees
    only its own), filtered; ``limit + 1`` of them, so the caller knows whether more follow."""
    caller.require(Permission.REPORTS_READ)
    async with uow:
        programme = await programme_or_404(uow, programme_ref)
        unit_id = None
        if unit is not None:
            found = await uow.get(CatalogueRepository).unit_by_key(unit)
            if found is None:
                raise NotFound(f"No unit {unit!r}.", code="unit_not_found")
            unit_id = found.id
        return programme.key, await _records(uow).records(
            programme.id,
            unit_scope=caller.read_scope,
            unit_id=unit_id,
            year=year,
            kind=kind,
            status=status,
            words=fold(q).split() if q else [],
            offset=offset,
            limit=limit,
        )


async def list_versions(
    uow: UnitOfWork, caller: Caller, record_id: uuid.UUID
) -> Sequence[tuple[m.ProgrammeRecordVersion, Sequence[tuple[str, str, Any]]]]:
    """Every submitted version of a record, oldest first, each with the figures it counts."""
    caller.require(Permission.REPORTS_READ)
    async with uow:
        record = await _records(uow).record(record_id, caller.read_scope)
        return [
            (version, await _records(uow).figures_of(version.id))
            for version in await _records(uow).versions(record.id)
        ]
