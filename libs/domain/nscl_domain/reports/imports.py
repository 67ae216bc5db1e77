"""Use cases of spreadsheet import: a template for a report's typed indicator values, and
an upload checked row by row that replaces them in the draft (parsing: ``importing``)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from nscl_domain.audit.repository import AuditRepository
from nscl_domain.catalogue.repository import CatalogueRepository
from nscl_domain.identity import Caller, Permission
from nscl_domain.reports import models as m
from nscl_domain.reports.content import IndicatorEntry, ReportContent
from nscl_domain.reports.importing import (
    XLSX_MEDIA_TYPE,
    ImportResult,
    IndicatorSpec,
    ObligationScope,
    Row,
    build_template_csv,
    build_template_xlsx,
    check_rows,
)
from nscl_domain.reports.repository import ReportRepository
from nscl_domain.types import STORED
from nscl_domain.uow import UnitOfWork
from nscl_domain.workflow import check_acting_on, unit_work_scope


def _reports(uow: UnitOfWork) -> ReportRepository:
    return uow.get(ReportRepository)


async def _import_target(
    uow: UnitOfWork, caller: Caller, report_id: uuid.UUID
) -> tuple[m.Report, m.Obligation, str, dict[str, IndicatorSpec]]:
    report = await _reports(uow).report(
        report_id, await unit_work_scope(uow, caller), for_update=True
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


async def import_values(
    uow: UnitOfWork,
    caller: Caller,
    report_id: uuid.UUID,
    rows: Sequence[Row],
    *,
    dry_run: bool,
    expected_revision: int | None,
) -> tuple[ImportResult, m.Report | None]:
    """Check every row of an upload; unless a dry run, and only if all pass, put the values
    into the draft in place of the typed ones it had."""
    caller.require(Permission.REPORTS_WRITE)
    async with uow:
        report, obligation, unit_key, specs = await _import_target(uow, caller, report_id)
        result = check_rows(rows, specs, ObligationScope(unit_key=unit_key, year=obligation.year))
        if dry_run or not result.ok:
            return result, None
        report.check_revision(expected_revision)
        await check_acting_on(uow, caller, report)
        report.check_editable()
        draft = ReportContent.model_validate(report.draft, context=STORED)
        draft.indicator_values = [
            IndicatorEntry(
                indicator=v.indicator_key, disaggregation=dict(v.disaggregation), value=v.value
            )
            for v in result.values
        ]
        report.draft = draft.model_dump(mode="json")
        report.changed(uow.now())
        uow.get(AuditRepository).record(
            caller, "report.values_imported", "report", report.id,
            after={"values": len(result.values), "revision": report.revision},
        )  # fmt: skip
        await uow.commit()
    return result, report
