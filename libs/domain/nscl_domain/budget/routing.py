"""Use case of submitting an estimate: each line is routed, by its funding source, to the
unit that holds the receiving role on the first day of the budget year."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from nscl_domain.budget import models as m
from nscl_domain.budget.estimates import EstimateView, estimate_view
from nscl_domain.budget.repository import BudgetRepository
from nscl_domain.catalogue import models as cm
from nscl_domain.catalogue.service import programme_or_404
from nscl_domain.errors import Conflict, Invalid
from nscl_domain.identity import Caller, Permission
from nscl_domain.uow import UnitOfWork
from nscl_domain.workflow import Submit

# Routing is data: a funding source names the programme role whose holder receives it.
ROLE_RECEIVING: dict[str, str | None] = {
    "recurrent_science": "recurrent_estimate_recipient",
    "recurrent_sector": "recurrent_estimate_recipient",
    "development_investment": "investment_estimate_recipient",
    "other_enterprise": None,
    "other_sponsorship": None,
    "other": None,
}
RECEIVING_ROLES = ["recurrent_estimate_recipient", "investment_estimate_recipient"]


def _budget(uow: UnitOfWork) -> BudgetRepository:
    return uow.get(BudgetRepository)


def routing_day(budget_year: int) -> date:
    """Routing follows the structure on the first day of the budget year."""
    return date(budget_year, 1, 1)


async def destinations(
    uow: UnitOfWork, programme_id: uuid.UUID, budget_year: int
) -> dict[str, uuid.UUID]:
    """Role → the unit holding it on the routing day of the budget year."""
    return await _budget(uow).role_holders(programme_id, RECEIVING_ROLES, routing_day(budget_year))


@dataclass(frozen=True)
class Route:
    """Where lines of one funding source go in a budget year."""

    funding_source: str
    role: str | None
    destination: cm.OrgUnit | None


async def routing_of(
    uow: UnitOfWork, caller: Caller, programme_ref: str, budget_year: int
) -> list[Route]:
    """Each funding source with the role that receives it and the unit holding that role on
    the routing day of the budget year (no role: the line goes to neither destination)."""
    caller.require(Permission.CATALOGUE_READ)
    async with uow:
        programme = await programme_or_404(uow, programme_ref)
        holders = await destinations(uow, programme.id, budget_year)
        units = {unit_id: await _budget(uow).unit(unit_id) for unit_id in set(holders.values())}
        return [
            Route(source, role, units[holders[role]] if role and role in holders else None)
            for source, role in ROLE_RECEIVING.items()
        ]


async def account_codes(
    uow: UnitOfWork,
    caller: Caller,
    budget_year: int,
    *,
    kind: str | None = None,
    after: tuple[str, str] | None = None,
    limit: int = 500,
) -> Sequence[m.AccountCode]:
    """The chart-of-accounts codes an estimate line may name in the budget year, by kind and
    code: ``limit`` + 1, so callers see if more follow."""
    caller.require(Permission.CATALOGUE_READ)
    async with uow:
        return await _budget(uow).account_codes(budget_year, kind, after, limit)


async def _route(
    uow: UnitOfWork, caller: Caller, estimate: m.BudgetEstimate, now: datetime
) -> Sequence[m.EstimateLine]:
    """Each line records the destination the routing of the budget year gives it now."""
    lines = await _budget(uow).lines_of(estimate.id)
    if not lines:
        raise Invalid("An estimate needs at least one line.", code="estimate_empty")
    receivers = await destinations(uow, estimate.programme_id, estimate.budget_year)
    for line in lines:
        role = ROLE_RECEIVING[line.funding_source]
        line.destination_unit_id = receivers.get(role) if role else None
        if role is not None and line.destination_unit_id is None:
            raise Conflict(
                f"No unit holds the {role} role on {routing_day(estimate.budget_year)}.",
                code="no_destination",
            )
    return lines


async def _submitted_view(
    uow: UnitOfWork, estimate: m.BudgetEstimate, _: Sequence[m.EstimateLine]
) -> EstimateView:
    # Read again: the flush expired the lines' computed task keys.
    return await estimate_view(uow, estimate)


submit_estimate = Submit(
    m.BudgetEstimate,
    Permission.BUDGET_WRITE,
    prepare=_route,
    audited=lambda _, lines: {"lines": len(lines)},
    view=_submitted_view,
)
"""Submit the estimate; each line records the destination the routing gives it now."""
