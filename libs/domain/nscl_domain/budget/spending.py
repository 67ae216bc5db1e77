"""Use cases of spending: a unit records money spent against an allocation, and anyone
entitled follows each task's money from estimate to allocation to spending."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time
from typing import Any

from nscl_domain.audit.repository import AuditRepository, snapshot
from nscl_domain.budget import models as m
from nscl_domain.budget.repository import BudgetRepository, MoneyFilter
from nscl_domain.budget.visibility import budget_visibility
from nscl_domain.catalogue.service import programme_or_404
from nscl_domain.errors import Conflict, FieldProblem, Invalid, NotFound
from nscl_domain.identity import Caller, Permission
from nscl_domain.jobs.requests import refresh_later
from nscl_domain.uow import UnitOfWork


def _budget(uow: UnitOfWork) -> BudgetRepository:
    return uow.get(BudgetRepository)


async def record_spending(
    uow: UnitOfWork,
    caller: Caller,
    allocation_id: uuid.UUID,
    *,
    amount: int,
    spent_on: date,
    note: str,
) -> m.Spending:
    """The unit that estimated a line records money spent against its allocation."""
    caller.require(Permission.BUDGET_WRITE)
    async with uow:
        budget = _budget(uow)
        found = await budget.allocation_of_unit_for_update(allocation_id, caller.unit_id)
        if found is None:
            raise NotFound(
                f"Allocation {allocation_id} does not exist.", code="allocation_not_found"
            )
        allocation, estimate = found
        if spent_on.year != estimate.budget_year:
            raise Invalid(
                f"Spending of budget year {estimate.budget_year} happens in that year.",
                code="spending_outside_year",
                fields=[
                    FieldProblem(("body", "spent_on"), f"Must fall in {estimate.budget_year}.")
                ],
            )
        spent = await budget.spent_from(allocation.id)
        if spent + amount > allocation.amount:
            raise Conflict(
                f"Spending would exceed the allocation ({allocation.amount} đồng, "
                f"{spent} spent already).",
                code="allocation_exceeded",
                fields=[FieldProblem(("body", "amount"), "More than what is left.")],
            )
        spending = m.Spending(
            allocation_id=allocation.id,
            amount=amount,
            spent_on=datetime.combine(spent_on, time(), tzinfo=UTC),
            note=note,
            recorded_by=caller.client_id,
        )
        budget.add(spending)
        await budget.flush()
        uow.get(AuditRepository).record(
            caller, "spending.recorded", "budget_spending", spending.id, after=snapshot(spending)
        )
        dossier = await budget.dossier_of(allocation)
        await refresh_later(
            uow, dossier.programme_id, dossier.budget_year, requested_by=caller.client_id
        )
        await uow.commit()
    return spending


def _money_filter(caller: Caller, **filters: Any) -> MoneyFilter:
    """The allocations and spending the caller may list, as budget visibility says: every
    one (reviewers, auditors), else those of lines its unit estimated and of lines routed
    to it."""
    caller.require(Permission.BUDGET_READ)
    visibility = budget_visibility(caller)
    return MoneyFilter(
        every_unit=visibility.every_unit,
        own_unit=caller.unit_id if visibility.own_rows else None,
        routed_to=caller.unit_id if visibility.routed_rows else None,
        **filters,
    )


async def list_allocations(
    uow: UnitOfWork,
    caller: Caller,
    *,
    programme: str | None = None,
    budget_year: int | None = None,
    unit: str | None = None,
    subtree: bool = False,
    destination: str | None = None,
    dossier_id: uuid.UUID | None = None,
    before_id: uuid.UUID | None = None,
    limit: int = 50,
) -> Sequence[m.Allocation]:
    """Allocations the caller may see, newest first: ``limit`` + 1 of them."""
    where = _money_filter(
        caller, budget_year=budget_year, unit=unit, subtree=subtree,
        destination=destination, dossier_id=dossier_id,
    )  # fmt: skip
    async with uow:
        if programme is not None:
            where = replace(where, programme_id=(await programme_or_404(uow, programme)).id)
        return await _budget(uow).allocations(where, before_id, limit)


async def list_spending(
    uow: UnitOfWork,
    caller: Caller,
    *,
    programme: str | None = None,
    budget_year: int | None = None,
    unit: str | None = None,
    subtree: bool = False,
    allocation_id: uuid.UUID | None = None,
    before_id: uuid.UUID | None = None,
    limit: int = 50,
) -> Sequence[m.Spending]:
    """Spending the caller may see, newest first: ``limit`` + 1 of them."""
    where = _money_filter(
        caller, budget_year=budget_year, unit=unit, subtree=subtree, allocation_id=allocation_id
    )
    async with uow:
        if programme is not None:
            where = replace(where, programme_id=(await programme_or_404(uow, programme)).id)
        return await _budget(uow).spendings(where, before_id, limit)


async def follow_up(
    uow: UnitOfWork, caller: Caller, programme_ref: str, budget_year: int
) -> list[dict[str, Any]]:
    """Estimate → allocation → spending per task and unit (a unit sees its own lines)."""
    caller.require(Permission.BUDGET_READ)
    async with uow:
        programme = await programme_or_404(uow, programme_ref)
        return await _budget(uow).follow_up(
            programme.id, budget_year, budget_visibility(caller).estimate_scope
        )
