"""SQL of budgets: estimates and their lines, the routing roles of a budget year, dossiers,
allocations and spending. Scopes are passed in by the use cases (a unit sees its own
estimates; Finance and Planning and Investment see the dossiers addressed to them)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    cast,
    false,
    func,
    or_,
    select,
    tuple_,
)
from sqlalchemy.orm import aliased

from nscl_domain.budget import models as m
from nscl_domain.catalogue import models as cm
from nscl_domain.catalogue.repository import unit_ids
from nscl_domain.workflow import ReviewedRepository, ReviewStatus, Scope


def _accepted(
    stmt: Select[*tuple[Any, ...]], programme_id: uuid.UUID, year: int, unit: Any
) -> Select[*tuple[Any, ...]]:
    """Lines of the accepted estimates of a programme's budget year, with the estimating
    unit as ``unit``."""
    return (
        stmt.select_from(m.EstimateLine)
        .join(m.BudgetEstimate, m.BudgetEstimate.id == m.EstimateLine.estimate_id)
        .join(unit, unit.id == m.BudgetEstimate.unit_id)
        .where(
            m.BudgetEstimate.programme_id == programme_id,
            m.BudgetEstimate.budget_year == year,
            m.BudgetEstimate.status == ReviewStatus.ACCEPTED,
        )
    )


@dataclass(frozen=True)
class MoneyFilter:
    """Which allocations and spending a list shows: the caller's visibility (every unit's;
    else lines its unit estimated, ``own_unit``, and lines routed to it, ``routed_to``) and
    the filters it asked for."""

    every_unit: bool
    own_unit: uuid.UUID | None
    routed_to: uuid.UUID | None
    programme_id: uuid.UUID | None = None
    budget_year: int | None = None
    unit: str | None = None
    subtree: bool = False
    destination: str | None = None
    dossier_id: uuid.UUID | None = None
    allocation_id: uuid.UUID | None = None

    def where(self) -> list[ColumnElement[bool]]:
        """Conditions on a statement joining allocation, estimate line, estimate, dossier."""
        conditions: list[ColumnElement[bool]] = []
        if not self.every_unit:
            visible: list[ColumnElement[bool]] = []
            if self.own_unit is not None:
                visible.append(m.BudgetEstimate.unit_id == self.own_unit)
            if self.routed_to is not None:
                visible.append(m.Dossier.destination_unit_id == self.routed_to)
            conditions.append(or_(*visible) if visible else false())
        if self.programme_id is not None:
            conditions.append(m.Dossier.programme_id == self.programme_id)
        if self.budget_year is not None:
            conditions.append(m.Dossier.budget_year == self.budget_year)
        if self.unit is not None:
            conditions.append(
                m.BudgetEstimate.unit_id.in_(unit_ids(self.unit, subtree=self.subtree))
            )
        if self.destination is not None:
            conditions.append(
                m.Dossier.destination_unit_id.in_(unit_ids(self.destination, subtree=False))
            )
        if self.dossier_id is not None:
            conditions.append(m.Allocation.dossier_id == self.dossier_id)
        if self.allocation_id is not None:
            conditions.append(m.Allocation.id == self.allocation_id)
        return conditions


def _money(stmt: Select[*tuple[Any, ...]]) -> Select[*tuple[Any, ...]]:
    """Join an allocation to its line's estimate and to its dossier."""
    return (
        stmt.join(m.EstimateLine, m.EstimateLine.id == m.Allocation.line_id)
        .join(m.BudgetEstimate, m.BudgetEstimate.id == m.EstimateLine.estimate_id)
        .join(m.Dossier, m.Dossier.id == m.Allocation.dossier_id)
    )


class BudgetRepository(ReviewedRepository):
    # --- estimates -----------------------------------------------------------------------

    async def estimate_of(
        self, programme_id: uuid.UUID, unit_id: uuid.UUID, budget_year: int
    ) -> uuid.UUID | None:
        """The id of the unit's estimate for the budget year, if it has one."""
        return await self.session.scalar(
            select(m.BudgetEstimate.id).where(
                m.BudgetEstimate.programme_id == programme_id,
                m.BudgetEstimate.unit_id == unit_id,
                m.BudgetEstimate.budget_year == budget_year,
            )
        )

    async def estimate(self, estimate_id: uuid.UUID, unit_scope: Scope) -> m.BudgetEstimate:
        """The estimate if the unit scope (None: every unit) may see it, else NotFound."""
        return await self.load(m.BudgetEstimate, estimate_id, unit_scope)

    async def estimates(
        self,
        *,
        programme_id: uuid.UUID | None,
        budget_year: int | None,
        unit: str | None,
        subtree: bool,
        status: str | None,
        unit_scope: uuid.UUID | None,
        before_id: uuid.UUID | None,
        limit: int,
    ) -> Sequence[m.BudgetEstimate]:
        """Estimates newest first (ids are time-ordered), ``limit`` + 1 of them."""
        stmt = select(m.BudgetEstimate)
        if programme_id is not None:
            stmt = stmt.where(m.BudgetEstimate.programme_id == programme_id)
        if budget_year is not None:
            stmt = stmt.where(m.BudgetEstimate.budget_year == budget_year)
        if unit is not None:
            stmt = stmt.where(m.BudgetEstimate.unit_id.in_(unit_ids(unit, subtree=subtree)))
        if status is not None:
            stmt = stmt.where(m.BudgetEstimate.status == status)
        if unit_scope is not None:
            stmt = stmt.where(m.BudgetEstimate.unit_id == unit_scope)
        if before_id is not None:
            stmt = stmt.where(m.BudgetEstimate.id < before_id)
        stmt = stmt.order_by(m.BudgetEstimate.id.desc()).limit(limit + 1)
        return (await self.session.scalars(stmt)).all()

    async def lines_of_many(
        self, estimate_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[m.EstimateLine]]:
        """The lines of several estimates in order, in one query (a page of a list)."""
        stmt = (
            select(m.EstimateLine)
            .where(m.EstimateLine.estimate_id.in_(estimate_ids))
            .order_by(m.EstimateLine.estimate_id, m.EstimateLine.position)
            .execution_options(populate_existing=True)
        )
        found: dict[uuid.UUID, list[m.EstimateLine]] = {i: [] for i in estimate_ids}
        for line in (await self.session.scalars(stmt)).all():
            found[line.estimate_id].append(line)
        return found

    async def account_codes(
        self, year: int, kind: str | None, after: tuple[str, str] | None, limit: int
    ) -> Sequence[m.AccountCode]:
        """Codes valid in the budget year by kind and code, ``limit`` + 1 of them."""
        stmt = select(m.AccountCode).where(
            m.AccountCode.valid_from_year <= year,
            or_(m.AccountCode.valid_to_year.is_(None), m.AccountCode.valid_to_year >= year),
        )
        if kind is not None:
            stmt = stmt.where(m.AccountCode.kind == kind)
        if after is not None:
            stmt = stmt.where(tuple_(m.AccountCode.kind, m.AccountCode.code) > tuple_(*after))
        stmt = stmt.order_by(m.AccountCode.kind, m.AccountCode.code).limit(limit + 1)
        return (await self.session.scalars(stmt)).all()

    async def lines_of(self, estimate_id: uuid.UUID) -> Sequence[m.EstimateLine]:
        """The estimate's lines in order, their task keys read afresh."""
        stmt = (
            select(m.EstimateLine)
            .where(m.EstimateLine.estimate_id == estimate_id)
            .order_by(m.EstimateLine.position)
            # Lines just written are in the session without their task key: load it afresh.
            .execution_options(populate_existing=True)
        )
        return (await self.session.scalars(stmt)).all()

    async def replace_lines(self, estimate_id: uuid.UUID, lines: Sequence[m.EstimateLine]) -> None:
        """Put ``lines`` in place of the estimate's lines (positions are reused)."""
        for old in await self.lines_of(estimate_id):
            await self.session.delete(old)
        await self.session.flush()
        self.session.add_all(lines)
        await self.session.flush()

    async def task_ids(self, programme_id: uuid.UUID) -> dict[str, uuid.UUID]:
        """Task key → id for the programme's tasks."""
        stmt = (
            select(cm.Task.key, cm.Task.id)
            .join(cm.TaskGroup, cm.TaskGroup.id == cm.Task.group_id)
            .where(cm.TaskGroup.programme_id == programme_id)
        )
        return dict((await self.session.execute(stmt)).all())

    async def account_codes_valid_in(self, year: int) -> set[tuple[str, str]]:
        """(kind, code) of every account code valid in the budget year."""
        stmt = select(m.AccountCode.kind, m.AccountCode.code).where(
            m.AccountCode.valid_from_year <= year,
            or_(m.AccountCode.valid_to_year.is_(None), m.AccountCode.valid_to_year >= year),
        )
        return {(kind, code) for kind, code in (await self.session.execute(stmt)).all()}

    async def role_holders(
        self, programme_id: uuid.UUID, roles: Sequence[str], day: date
    ) -> dict[str, uuid.UUID]:
        """Role → the unit holding it on ``day``."""
        stmt = select(cm.ProgrammeRole.role, cm.ProgrammeRole.unit_id).where(
            cm.ProgrammeRole.programme_id == programme_id,
            cm.ProgrammeRole.role.in_(roles),
            cm.ProgrammeRole.valid_from <= day,
            or_(cm.ProgrammeRole.valid_to.is_(None), cm.ProgrammeRole.valid_to > day),
        )
        return dict((await self.session.execute(stmt)).all())

    async def totals(self, programme_id: uuid.UUID, year: int) -> list[dict[str, Any]]:
        """Accepted lines summed by funding source × destination × unit × task group."""
        line, unit, destination = m.EstimateLine, aliased(cm.OrgUnit), aliased(cm.OrgUnit)
        task_group = func.coalesce(cm.TaskGroup.number, 0).label("task_group")
        stmt = (
            _accepted(
                select(
                    line.funding_source,
                    destination.key.label("destination"),
                    unit.key.label("unit"),
                    task_group,
                    cast(func.sum(line.amount), BigInteger).label("amount"),
                    func.count().label("lines"),
                ),
                programme_id,
                year,
                unit,
            )
            .outerjoin(destination, destination.id == line.destination_unit_id)
            .outerjoin(cm.Task, cm.Task.id == line.task_id)
            .outerjoin(cm.TaskGroup, cm.TaskGroup.id == cm.Task.group_id)
            .group_by(line.funding_source, destination.key, unit.key, cm.TaskGroup.number)
            .order_by(line.funding_source, destination.key.nulls_last(), unit.key, task_group)
        )
        return [dict(row._mapping) for row in await self.session.execute(stmt)]

    # --- dossiers ------------------------------------------------------------------------

    async def programme(self, programme_id: uuid.UUID) -> cm.Programme | None:
        """The programme a dossier build names, if it exists."""
        return await self.session.get(cm.Programme, programme_id)

    async def accepted_routed_lines(
        self, programme_id: uuid.UUID, budget_year: int
    ) -> Sequence[tuple[m.EstimateLine, cm.OrgUnit]]:
        """Accepted lines that have a destination, each with its estimating unit."""
        stmt = (
            select(m.EstimateLine, cm.OrgUnit)
            .join(m.BudgetEstimate, m.BudgetEstimate.id == m.EstimateLine.estimate_id)
            .join(cm.OrgUnit, cm.OrgUnit.id == m.BudgetEstimate.unit_id)
            .where(
                m.BudgetEstimate.programme_id == programme_id,
                m.BudgetEstimate.budget_year == budget_year,
                m.BudgetEstimate.status == "accepted",
                m.EstimateLine.destination_unit_id.is_not(None),
            )
            .order_by(cm.OrgUnit.key, m.EstimateLine.position)
        )
        return [(line, unit) for line, unit in (await self.session.execute(stmt)).all()]

    async def task_group_numbers(self) -> dict[uuid.UUID, int]:
        """Task id → the number of its task group."""
        stmt = select(cm.Task, cm.TaskGroup).join(cm.TaskGroup, cm.TaskGroup.id == cm.Task.group_id)
        return {t.id: g.number for t, g in (await self.session.execute(stmt)).all()}

    async def latest_dossier(
        self, programme_id: uuid.UUID, budget_year: int, destination_unit_id: uuid.UUID
    ) -> m.Dossier | None:
        """The destination's latest dossier version of the budget year, if any."""
        stmt = (
            select(m.Dossier)
            .where(
                m.Dossier.programme_id == programme_id,
                m.Dossier.budget_year == budget_year,
                m.Dossier.destination_unit_id == destination_unit_id,
            )
            .order_by(m.Dossier.version_no.desc())
            .limit(1)
        )
        return (await self.session.scalars(stmt)).first()

    async def dossiers(
        self,
        programme_id: uuid.UUID,
        budget_year: int | None,
        destination_scope: uuid.UUID | None,
        *,
        destination: str | None = None,
        status: str | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> Sequence[tuple[m.Dossier, cm.OrgUnit]]:
        """Dossiers (of the year) with their destination, those of one destination if
        scoped, by year, destination and version; ``limit`` + 1 of them when given."""
        stmt = (
            select(m.Dossier, cm.OrgUnit)
            .join(cm.OrgUnit, cm.OrgUnit.id == m.Dossier.destination_unit_id)
            .where(m.Dossier.programme_id == programme_id)
            .order_by(m.Dossier.budget_year, cm.OrgUnit.key, m.Dossier.version_no)
        )
        if budget_year is not None:
            stmt = stmt.where(m.Dossier.budget_year == budget_year)
        if destination_scope is not None:
            stmt = stmt.where(m.Dossier.destination_unit_id == destination_scope)
        if destination is not None:
            stmt = stmt.where(
                m.Dossier.destination_unit_id.in_(unit_ids(destination, subtree=False))
            )
        if status is not None:
            stmt = stmt.where(m.Dossier.status == status)
        if limit is not None:
            stmt = stmt.offset(offset).limit(limit + 1)
        return [(d, u) for d, u in (await self.session.execute(stmt)).all()]

    async def allocations_of_many(
        self, dossier_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[m.Allocation]]:
        """What was allocated against several dossiers' lines, in one query."""
        stmt = select(m.Allocation).where(m.Allocation.dossier_id.in_(dossier_ids))
        found: dict[uuid.UUID, list[m.Allocation]] = {i: [] for i in dossier_ids}
        for allocation in (await self.session.scalars(stmt)).all():
            found[allocation.dossier_id].append(allocation)
        return found

    async def dossier(
        self,
        dossier_id: uuid.UUID,
        destination_scope: uuid.UUID | None,
        *,
        for_update: bool = False,
    ) -> m.Dossier | None:
        """The dossier, if addressed to the destination in scope (None: any)."""
        stmt = select(m.Dossier).where(m.Dossier.id == dossier_id)
        if destination_scope is not None:
            stmt = stmt.where(m.Dossier.destination_unit_id == destination_scope)
        if for_update:
            stmt = stmt.with_for_update()
        return (
            await self.session.scalars(stmt, execution_options={"populate_existing": True})
        ).one_or_none()

    async def dossier_of(self, allocation: m.Allocation) -> m.Dossier:
        """The dossier the allocation was recorded against."""
        dossier = await self.session.get(m.Dossier, allocation.dossier_id)
        assert dossier is not None  # the allocation's foreign key
        return dossier

    async def unit(self, unit_id: uuid.UUID) -> cm.OrgUnit:
        """An organisation unit a budget row refers to."""
        unit = await self.session.get(cm.OrgUnit, unit_id)
        assert unit is not None  # every caller holds a foreign key to it
        return unit

    async def unit_keys(self, unit_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
        """The keys of the units budget rows refer to, in one statement."""
        if not unit_ids:
            return {}
        rows = await self.session.execute(
            select(cm.OrgUnit.id, cm.OrgUnit.key).where(cm.OrgUnit.id.in_(set(unit_ids)))
        )
        return {row.id: row.key for row in rows}

    async def allocations_of(self, dossier_id: uuid.UUID) -> Sequence[m.Allocation]:
        """What the destination allocated against the dossier's lines."""
        stmt = select(m.Allocation).where(m.Allocation.dossier_id == dossier_id)
        return (await self.session.scalars(stmt)).all()

    async def allocations(
        self, where: MoneyFilter, before_id: uuid.UUID | None, limit: int
    ) -> Sequence[m.Allocation]:
        """Allocations in view newest first (ids are time-ordered), ``limit`` + 1 of them."""
        stmt = _money(select(m.Allocation)).where(*where.where())
        if before_id is not None:
            stmt = stmt.where(m.Allocation.id < before_id)
        stmt = stmt.order_by(m.Allocation.id.desc()).limit(limit + 1)
        return (await self.session.scalars(stmt)).all()

    async def spendings(
        self, where: MoneyFilter, before_id: uuid.UUID | None, limit: int
    ) -> Sequence[m.Spending]:
        """Spending in view newest first (ids are time-ordered), ``limit`` + 1 of them."""
        stmt = _money(
            select(m.Spending).join(m.Allocation, m.Allocation.id == m.Spending.allocation_id)
        ).where(*where.where())
        if before_id is not None:
            stmt = stmt.where(m.Spending.id < before_id)
        stmt = stmt.order_by(m.Spending.id.desc()).limit(limit + 1)
        return (await self.session.scalars(stmt)).all()

    # --- spending ------------------------------------------------------------------------

    async def allocation_of_unit_for_update(
        self, allocation_id: uuid.UUID, unit_id: uuid.UUID
    ) -> tuple[m.Allocation, m.BudgetEstimate] | None:
        """Lock an allocation of a line the unit estimated; with that estimate."""
        stmt = (
            select(m.Allocation, m.BudgetEstimate)
            .join(m.EstimateLine, m.EstimateLine.id == m.Allocation.line_id)
            .join(m.BudgetEstimate, m.BudgetEstimate.id == m.EstimateLine.estimate_id)
            .where(m.Allocation.id == allocation_id, m.BudgetEstimate.unit_id == unit_id)
            .with_for_update(of=m.Allocation)
        )
        found = (await self.session.execute(stmt)).first()
        return None if found is None else (found[0], found[1])

    async def spent_from(self, allocation_id: uuid.UUID) -> int:
        """Whole đồng spent against the allocation so far."""
        spent = await self.session.scalar(
            select(func.coalesce(func.sum(m.Spending.amount), 0)).where(
                m.Spending.allocation_id == allocation_id
            )
        )
        return int(spent or 0)

    async def follow_up(
        self, programme_id: uuid.UUID, year: int, unit_scope: uuid.UUID | None
    ) -> list[dict[str, Any]]:
        """Estimated, allocated and spent per task and unit of the accepted estimates."""
        line, unit = m.EstimateLine, aliased(cm.OrgUnit)
        spent = (
            select(m.Spending.allocation_id, func.sum(m.Spending.amount).label("spent"))
            .group_by(m.Spending.allocation_id)
            .subquery()
        )
        stmt = (
            _accepted(
                select(
                    cm.Task.key.label("task"),
                    unit.key.label("unit"),
                    cast(func.sum(line.amount), BigInteger).label("estimated"),
                    cast(func.coalesce(func.sum(m.Allocation.amount), 0), BigInteger).label(
                        "allocated"
                    ),
                    cast(func.coalesce(func.sum(spent.c.spent), 0), BigInteger).label("spent"),
                ),
                programme_id,
                year,
                unit,
            )
            .outerjoin(cm.Task, cm.Task.id == line.task_id)
            .outerjoin(m.Allocation, m.Allocation.line_id == line.id)
            .outerjoin(spent, spent.c.allocation_id == m.Allocation.id)
            .group_by(cm.Task.key, unit.key)
            .order_by(cm.Task.key.nulls_last(), unit.key)
        )
        if unit_scope is not None:
            stmt = stmt.where(m.BudgetEstimate.unit_id == unit_scope)
        return [dict(row._mapping) for row in await self.session.execute(stmt)]
