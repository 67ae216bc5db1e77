"""Use cases of obligations: generate a regime's obligations for a year, issue an ad hoc
request to some units, list who owes which report."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from nscl_domain.audit.repository import AuditRepository, snapshot
from nscl_domain.catalogue import models as cm
from nscl_domain.catalogue.repository import CatalogueRepository
from nscl_domain.catalogue.service import programme_or_404
from nscl_domain.errors import FieldProblem, Invalid
from nscl_domain.identity import Caller, Permission
from nscl_domain.reports import models as m
from nscl_domain.reports.repository import ReportRepository
from nscl_domain.uow import UnitOfWork
from nscl_domain.workflow import read_scope


def _reports(uow: UnitOfWork) -> ReportRepository:
    return uow.get(ReportRepository)


def due_date_of(regime: m.ReportingRegime, year: int) -> date:
    """The day the regime's report of ``year`` is due."""
    return date(year, regime.due_month, regime.due_day)


async def generate_obligations(
    uow: UnitOfWork, actor: Caller, programme_ref: str, *, year: int, regime_key: str
) -> int:
    """Create the year's obligations for every unit reporting on the due date; idempotent."""
    actor.require(Permission.REPORTS_MANAGE)
    async with uow:
        programme = await programme_or_404(uow, programme_ref)
        regime = await _reports(uow).regime(programme.id, regime_key)
        if regime is None or regime.kind == "ad_hoc":
            raise Invalid(
                f"No periodic regime {regime_key!r}.",
                code="regime_not_found",
                fields=[
                    FieldProblem(("body", "regime"), "Name a periodic regime of the programme.")
                ],
            )
        if not programme.start_year <= year <= programme.end_year or (
            regime.years is not None and year not in regime.years
        ):
            raise Invalid(
                f"The {regime.key} regime has no report for {year}.",
                code="year_outside_regime",
                fields=[FieldProblem(("body", "year"), "Outside the programme or the regime.")],
            )
        due = due_date_of(regime, year)
        # Who reports follows the structure of the due date: successors report after a merger.
        units = await _reports(uow).reporting_units_on(programme.id, due)
        created = await _reports(uow).add_obligations(
            [
                {
                    "id": uuid.uuid4(),
                    "programme_id": programme.id,
                    "regime_id": regime.id,
                    "unit_id": unit_id,
                    "year": year,
                    "due_date": due,
                    "cutoff_date": due - timedelta(days=regime.cutoff_days_before_due),
                }
                for unit_id in units
            ]
        )
        uow.get(AuditRepository).record(
            actor,
            "obligations.generated",
            "programme",
            programme.id,
            after={"year": year, "regime": regime.key, "created": created},
        )
        await uow.commit()
    return created


async def create_request(
    uow: UnitOfWork,
    actor: Caller,
    programme_ref: str,
    *,
    title_vi: str,
    title_en: str,
    year: int,
    due_date: date,
    units: Sequence[str],
    indicators: Sequence[str],
    questions: Sequence[str],
) -> tuple[m.ReportingRequest, int]:
    """Issue an ad hoc request to some units, with its own indicators, questions and deadline."""
    actor.require(Permission.REPORTS_MANAGE)
    async with uow:
        programme = await programme_or_404(uow, programme_ref)
        found_units = await _reports(uow).units_existing_on(units, due_date)
        missing = sorted(set(units) - {u.key for u in found_units})
        if missing:
            raise Invalid(
                f"Units that do not exist on {due_date}: {', '.join(missing)}.",
                code="unit_not_found",
                fields=[FieldProblem(("body", "units"), "Every unit must exist on the due date.")],
            )
        known = {
            i.key for i in await uow.get(CatalogueRepository).indicators(programme.id, 0, 10_000)
        }
        unknown = sorted(set(indicators) - known)
        if unknown:
            raise Invalid(
                f"Indicators not in the programme: {', '.join(unknown)}.",
                code="unknown_indicator",
                fields=[FieldProblem(("body", "indicators"), "Name indicators of the programme.")],
            )
        request = m.ReportingRequest(
            programme_id=programme.id,
            title_vi=title_vi,
            title_en=title_en,
            year=year,
            due_date=due_date,
            indicator_keys=list(indicators),
            questions=list(questions),
            requested_by=actor.client_id,
        )
        _reports(uow).add(request)
        await _reports(uow).flush()
        created = await _reports(uow).add_obligations(
            [
                {
                    "id": uuid.uuid4(),
                    "programme_id": programme.id,
                    "request_id": request.id,
                    "unit_id": unit.id,
                    "year": year,
                    "due_date": due_date,
                    "cutoff_date": due_date,
                }
                for unit in found_units
            ]
        )
        uow.get(AuditRepository).record(
            actor, "request.created", "reporting_request", request.id, after=snapshot(request)
        )
        await uow.commit()
    return request, created


@dataclass(frozen=True)
class ObligationView:
    obligation: m.Obligation
    unit: cm.OrgUnit
    report: m.Report | None
    regime: m.ReportingRegime | None
    request: m.ReportingRequest | None


async def list_obligations(
    uow: UnitOfWork,
    caller: Caller,
    programme_ref: str,
    *,
    year: int | None,
    regime: str | None,
    request_id: uuid.UUID | None,
    offset: int,
    limit: int,
) -> Sequence[ObligationView]:
    """Obligations with their report's status; a reporting unit sees its own only."""
    caller.require(Permission.REPORTS_READ)
    async with uow:
        programme = await programme_or_404(uow, programme_ref)
        rows = await _reports(uow).obligations(
            programme.id,
            year=year,
            regime_key=regime,
            request_id=request_id,
            unit_scope=await read_scope(uow, caller),
            offset=offset,
            limit=limit,
        )
    return [ObligationView(*row) for row in rows]
