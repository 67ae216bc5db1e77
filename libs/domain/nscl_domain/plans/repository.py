"""SQL of plans: plans and their frozen versions, change requests, and what of the
catalogue a plan is checked against. Reads of a plan are scoped to a unit unless the
caller may see every unit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select

from nscl_domain.catalogue import models as cm
from nscl_domain.catalogue.repository import unit_ids
from nscl_domain.plans import models as m
from nscl_domain.plans.models import ChangeRequestStatus, PlanKind
from nscl_domain.workflow import ReviewedRepository, ReviewStatus, Scope, in_scope


class PlanRepository(ReviewedRepository):
    # --- plans ---------------------------------------------------------------------------

    async def plan(
        self, plan_id: uuid.UUID, unit_scope: Scope, *, for_update: bool = False
    ) -> m.Plan:
        """The plan if the unit scope (None: every unit) may see it, else NotFound."""
        return await self.load(m.Plan, plan_id, unit_scope, for_update=for_update)

    async def plan_of(
        self, programme_id: uuid.UUID, unit_id: uuid.UUID, kind: PlanKind, start_year: int
    ) -> uuid.UUID | None:
        """The id of the unit's plan of that kind from that year, if it has one."""
        return await self.session.scalar(
            select(m.Plan.id).where(
                m.Plan.programme_id == programme_id,
                m.Plan.unit_id == unit_id,
                m.Plan.kind == kind,
                m.Plan.start_year == start_year,
            )
        )

    async def plans(
        self,
        programme_id: uuid.UUID,
        *,
        unit_scope: Scope,
        kind: PlanKind | None,
        year: int | None,
        status: ReviewStatus | None,
        unit: str | None = None,
        subtree: bool = False,
        offset: int,
        limit: int,
    ) -> Sequence[tuple[m.Plan, str]]:
        """A page (one row more than ``limit``) of plans, each with its unit's key."""
        stmt = (
            select(m.Plan, cm.OrgUnit.key)
            .join(cm.OrgUnit, cm.OrgUnit.id == m.Plan.unit_id)
            .where(m.Plan.programme_id == programme_id)
            .order_by(m.Plan.start_year, m.Plan.kind, cm.OrgUnit.key)
            .offset(offset)
            .limit(limit + 1)
        )
        if unit_scope is not None:
            stmt = stmt.where(in_scope(m.Plan.unit_id, unit_scope))
        if unit is not None:
            stmt = stmt.where(m.Plan.unit_id.in_(unit_ids(unit, subtree=subtree)))
        if kind is not None:
            stmt = stmt.where(m.Plan.kind == kind)
        if year is not None:
            stmt = stmt.where(m.Plan.start_year <= year, m.Plan.end_year >= year)
        if status is not None:
            stmt = stmt.where(m.Plan.status == status)
        return [(plan, key) for plan, key in (await self.session.execute(stmt)).all()]

    # --- what a plan is checked against --------------------------------------------------

    async def unit_key(self, unit_id: uuid.UUID) -> str | None:
        """The key of the plan's unit."""
        return await self.session.scalar(select(cm.OrgUnit.key).where(cm.OrgUnit.id == unit_id))

    async def aggregation_rules(self, programme_id: uuid.UUID) -> dict[str, str]:
        """Indicator key → how it combines across units."""
        stmt = select(cm.Indicator.key, cm.Indicator.aggregation_across_units).where(
            cm.Indicator.programme_id == programme_id
        )
        return dict((await self.session.execute(stmt)).all())

    async def phases(self, programme_id: uuid.UUID) -> Sequence[tuple[int, int]]:
        """(start year, end year) of the programme's phases, in order."""
        stmt = (
            select(cm.Phase.start_year, cm.Phase.end_year)
            .where(cm.Phase.programme_id == programme_id)
            .order_by(cm.Phase.start_year)
        )
        return [(start, end) for start, end in (await self.session.execute(stmt)).all()]

    async def task_keys(self, programme_id: uuid.UUID) -> set[str]:
        """Keys of the programme's tasks."""
        stmt = (
            select(cm.Task.key)
            .join(cm.TaskGroup, cm.TaskGroup.id == cm.Task.group_id)
            .where(cm.TaskGroup.programme_id == programme_id)
        )
        return set((await self.session.scalars(stmt)).all())

    async def indicator_keys(self, programme_id: uuid.UUID) -> set[str]:
        """Keys of the programme's indicators."""
        stmt = select(cm.Indicator.key).where(cm.Indicator.programme_id == programme_id)
        return set((await self.session.scalars(stmt)).all())

    # --- versions ------------------------------------------------------------------------

    async def latest_version_no(self, plan_id: uuid.UUID) -> int:
        """The number of the plan's latest version; 0 before its first."""
        found = await self.session.scalar(
            select(m.PlanVersion.version_no)
            .where(m.PlanVersion.plan_id == plan_id)
            .order_by(m.PlanVersion.version_no.desc())
            .limit(1)
        )
        return found or 0

    async def versions(self, plan_id: uuid.UUID) -> Sequence[m.PlanVersion]:
        """The plan's frozen versions, oldest first."""
        stmt = (
            select(m.PlanVersion)
            .where(m.PlanVersion.plan_id == plan_id)
            .order_by(m.PlanVersion.version_no)
        )
        return (await self.session.scalars(stmt)).all()

    async def version(self, plan_id: uuid.UUID, version_no: int) -> m.PlanVersion | None:
        """One frozen version of the plan, if it exists."""
        return await self.session.scalar(
            select(m.PlanVersion).where(
                m.PlanVersion.plan_id == plan_id, m.PlanVersion.version_no == version_no
            )
        )

    # --- change requests -----------------------------------------------------------------

    async def open_change_request(self, plan_id: uuid.UUID) -> uuid.UUID | None:
        """The id of the plan's change request awaiting a decision, if any."""
        return await self.session.scalar(
            select(m.PlanChangeRequest.id).where(
                m.PlanChangeRequest.plan_id == plan_id,
                m.PlanChangeRequest.status == ChangeRequestStatus.PROPOSED,
            )
        )

    async def change_request_for_update(
        self, request_id: uuid.UUID, unit_scope: uuid.UUID | None
    ) -> tuple[m.PlanChangeRequest, m.Plan] | None:
        """Lock a change request (of a plan of the unit, if scoped) with its plan."""
        stmt = (
            select(m.PlanChangeRequest, m.Plan)
            .join(m.Plan, m.Plan.id == m.PlanChangeRequest.plan_id)
            .where(m.PlanChangeRequest.id == request_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        if unit_scope is not None:
            stmt = stmt.where(in_scope(m.Plan.unit_id, unit_scope))
        found = (await self.session.execute(stmt)).one_or_none()
        return None if found is None else (found[0], found[1])

    async def change_requests(
        self,
        programme_id: uuid.UUID,
        *,
        unit_scope: Scope,
        plan_id: uuid.UUID | None,
        status: ChangeRequestStatus | None,
        unit: str | None = None,
        subtree: bool = False,
        offset: int,
        limit: int,
    ) -> Sequence[tuple[m.PlanChangeRequest, m.Plan, str]]:
        """A page (one row more than ``limit``) of change requests, newest first, each with
        its plan and the plan's unit key."""
        stmt = (
            select(m.PlanChangeRequest, m.Plan, cm.OrgUnit.key)
            .join(m.Plan, m.Plan.id == m.PlanChangeRequest.plan_id)
            .join(cm.OrgUnit, cm.OrgUnit.id == m.Plan.unit_id)
            .where(m.Plan.programme_id == programme_id)
            .order_by(m.PlanChangeRequest.proposed_at.desc(), m.PlanChangeRequest.id.desc())
            .offset(offset)
            .limit(limit + 1)
        )
        if unit_scope is not None:
            stmt = stmt.where(in_scope(m.Plan.unit_id, unit_scope))
        if unit is not None:
            stmt = stmt.where(m.Plan.unit_id.in_(unit_ids(unit, subtree=subtree)))
        if plan_id is not None:
            stmt = stmt.where(m.Plan.id == plan_id)
        if status is not None:
            stmt = stmt.where(m.PlanChangeRequest.status == status)
        return [(r, p, k) for r, p, k in (await self.session.execute(stmt)).all()]
