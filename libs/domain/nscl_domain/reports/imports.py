"""Use cases of spreadsheet import: a template for a report's typed indicator values, and
an upload checked row by row that replaces them in the draft (parsing: ``importing``).

An upload goes in three steps, so that the CPU-bound middle one runs in a worker process
with no transaction open: :func:`import_target` reads what the file is checked against,
``importing.read_and_check`` reads and checks it, :func:`import_values` applies the result.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

from nscl_domain.audit.repository import AuditRepository
from nscl_domain.catalogue.repository import CatalogueRepository
from nscl_domain.errors import Conflict, Invalid
from nscl_domain.identity import Caller, Permission
from nscl_domain.reports import models as m
from nscl_domain.reports.content import MAX_INDICATOR_VALUES, IndicatorEntry, ReportContent
from nscl_domain.reports.importing import (
    XLSX_MEDIA_TYPE,
    CheckedUpload,
    IndicatorSpec,
    ObligationScope,
    build_template_csv,
    build_template_xlsx,
)
from nscl_domain.reports.repository import ReportRepository
from nscl_domain.types import STORED
from nscl_domain.uow import UnitOfWork
from nscl_domain.workflow import check_acting_on, unit_work_scope


def _reports(uow: UnitOfWork) -> ReportRepository:
    return uow.get(ReportRepository)


@dataclass(frozen=True)
class ImportTarget:
    """What an upload to a report is checked against: the programme's indicators, and the
    unit and year of the report's obligation."""

    indicators: dict[str, IndicatorSpec]
    scope: ObligationScope


async def _import_target(
    uow: UnitOfWork, caller: Caller, report_id: uuid.UUID, *, for_update: bool = True
) -> tuple[m.Report, m.Obligation, str, dict[str, IndicatorSpec]]:
    report = await _reports(uow).report(
        report_id, await unit_work_scope(uow, caller), for_update=for_update
    )
    obligation, unit, *_ = await _reports(uow).obligation(report.obligation_id, None)
    specs = {
        i.key: IndicatorSpec(
            key=i.key,
            name_vi=i.name_vi,
            name_en=i.name_en,
            unit=i.unit,
            derived=i.derived_from is not None,
            disaggregations={d["dimension"]: d["values"] for d in i.disaggregations},
        )
        for i in await uow.get(CatalogueRepository).indicators(obligation.programme_id, 0, 10_000)
    }
    return report, obligation, unit.key, specs


async def indicator_template(
    uow: UnitOfWork,
    caller: Caller,
    report_id: uuid.UUID,
    media_type: str,
    language: str = "vi",
) -> tuple[bytes, str]:
    """A spreadsheet for the report's typed indicator values, the draft's figures filled
    in, and a file name for it."""
    caller.require(Permission.REPORTS_WRITE)
    async with uow:
        report, obligation, unit_key, specs = await _import_target(uow, caller, report_id)
        draft = ReportContent.model_validate(report.draft, context=STORED)
    prefill = {
        (entry.indicator, frozenset(entry.disaggregation.items())): entry.value
        for entry in draft.indicator_values
    }
    scope = ObligationScope(unit_key=unit_key, year=obligation.year)
    indicators = sorted(specs.values(), key=lambda s: s.key)
    name = f"{unit_key}-{obligation.year}"
    if media_type == XLSX_MEDIA_TYPE:
        return build_template_xlsx(indicators, scope, prefill, language), f"{name}.xlsx"
    return build_template_csv(indicators, scope, prefill, language), f"{name}.csv"


async def import_target(uow: UnitOfWork, caller: Caller, report_id: uuid.UUID) -> ImportTarget:
    """What an upload to the report will be checked against; NotFound for a report the
    caller may not write to (before any parser is spent on the file)."""
    caller.require(Permission.REPORTS_WRITE)
    async with uow:
        _, obligation, unit_key, specs = await _import_target(
            uow, caller, report_id, for_update=False
        )
    return ImportTarget(specs, ObligationScope(unit_key=unit_key, year=obligation.year))


async def import_values(
    uow: UnitOfWork,
    caller: Caller,
    report_id: uuid.UUID,
    result: CheckedUpload,
    checked_against: ImportTarget,
    *,
    dry_run: bool,
    expected_revision: int | None,
) -> m.Report | None:
    """Unless a dry run, and only if every row passed, put the checked values into the draft
    in place of the typed ones it had; return the report changed, or None.

    Invalid (``too_many_values``), dry run or not, for more values than a report holds:
    an import never leaves a draft holding more than its PUT accepts."""
    caller.require(Permission.REPORTS_WRITE)
    if result.value_count > MAX_INDICATOR_VALUES:
        raise Invalid(
            f"The file has {result.value_count:,} values; a report holds at most "
            f"{MAX_INDICATOR_VALUES:,}. Nothing was imported.",
            code="too_many_values",
            extra={"limit": MAX_INDICATOR_VALUES, "value": result.value_count},
        )
    if dry_run or not result.ok:
        return None
    async with uow:
        report, obligation, unit_key, specs = await _import_target(uow, caller, report_id)
        now = ImportTarget(specs, ObligationScope(unit_key=unit_key, year=obligation.year))
        if now != checked_against:
            # The file was checked against something else: its verdict no longer holds.
            raise Conflict(
                "The indicator catalogue or the report's obligation changed while the file "
                "was being checked; upload it again.",
                code="conflict",
            )
        report.check_revision(expected_revision)
        await check_acting_on(uow, caller, report)
        report.check_editable()
        draft = ReportContent.model_validate(report.draft, context=STORED)
        draft.indicator_values = [
            IndicatorEntry(indicator=key, disaggregation=dict(breakdown), value=Decimal(value))
            for key, breakdown, value in result.values
        ]
        report.draft = draft.model_dump(mode="json")
        report.changed(uow.now())
        uow.get(AuditRepository).record(
            caller, "report.values_imported", "report", report.id,
            after={"values": result.value_count, "revision": report.revision},
        )  # fmt: skip
        await uow.commit()
    return report
