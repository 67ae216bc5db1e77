"""SQL of the catalogue: effective-dated organisation units, programmes and their parts."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from datetime import date
from typing import Any

from sqlalchemy import Integer, Select, and_, cast, func, or_, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import aliased

from nscl_domain.catalogue import models as m
from nscl_domain.identity.units import ClientUnit, ClientUnits
from nscl_domain.repositories import SessionRepository
from nscl_domain.text import matches_all_words


def _in_force(model: type[m.OrgUnit] | type[m.ProgrammeRole], as_of: date) -> Any:
    """Rows whose period covers ``as_of`` (valid_to is exclusive)."""
    return and_(model.valid_from <= as_of, or_(model.valid_to.is_(None), model.valid_to > as_of))


def _by_ref(model: Any, ref: str) -> Any:
    """Match a row by its id (a UUID) or its stable key."""
    try:
        return model.id == uuid.UUID(ref)
    except ValueError:
        return model.key == ref


def unit_ids(ref: str, *, subtree: bool) -> Select[uuid.UUID]:
    """Ids of the unit a key or id names and, with ``subtree``, of every unit under it: the
    unit filter of lists in other contexts (an unknown unit matches nothing)."""
    named = select(m.OrgUnit.id).where(_by_ref(m.OrgUnit, ref))
    if not subtree:
        return named
    tree = named.cte("unit_subtree", recursive=True)
    # UNION, not UNION ALL: a cycle in the parent links ends the walk instead of looping.
    tree = tree.union(select(m.OrgUnit.id).join(tree, m.OrgUnit.parent_id == tree.c.id))
    return select(tree.c.id)


class CatalogueRepository(SessionRepository):
    async def _page(self, stmt: Select[*tuple[Any, ...]], offset: int, limit: int) -> Sequence[Any]:
        return list((await self.session.execute(stmt.offset(offset).limit(limit + 1))).all())

    # --- organisation units -------------------------------------------------------------

    def _units(self) -> Select[m.OrgUnit, str]:
        parent = aliased(m.OrgUnit)
        return select(m.OrgUnit, parent.key).outerjoin(parent, parent.id == m.OrgUnit.parent_id)

    async def list_units(
        self,
        *,
        as_of: date | None,
        kind: str | None,
        parent: str | None,
        code: str | None,
        q: str | None,
        after_key: str | None,
        limit: int,
    ) -> Sequence[tuple[m.OrgUnit, str | None]]:
        stmt = self._units().order_by(m.OrgUnit.key).limit(limit + 1)
        if as_of is not None:
            stmt = stmt.where(_in_force(m.OrgUnit, as_of))
        if kind is not None:
            stmt = stmt.where(m.OrgUnit.kind == kind)
        if code is not None:
            stmt = stmt.where(m.OrgUnit.code == code)
        if parent is not None:
            parent_ids = select(m.OrgUnit.id).where(_by_ref(m.OrgUnit, parent))
            stmt = stmt.where(m.OrgUnit.parent_id.in_(parent_ids.scalar_subquery()))
        if q:
            stmt = stmt.where(matches_all_words(m.OrgUnit.search_text, q))
        if after_key is not None:
            stmt = stmt.where(m.OrgUnit.key > after_key)
        return [(unit, parent_key) for unit, parent_key in (await self.session.execute(stmt)).all()]

    async def get_unit(self, ref: str) -> tuple[m.OrgUnit, str | None] | None:
        row = (await self.session.execute(self._units().where(_by_ref(m.OrgUnit, ref)))).first()
        return (row[0], row[1]) if row else None

    async def get_unit_for_update(self, ref: str) -> m.OrgUnit | None:
        stmt = select(m.OrgUnit).where(_by_ref(m.OrgUnit, ref)).with_for_update()
        return (await self.session.scalars(stmt)).one_or_none()

    async def unit_by_key(self, key: str) -> m.OrgUnit | None:
        return (
            await self.session.scalars(select(m.OrgUnit).where(m.OrgUnit.key == key))
        ).one_or_none()

    async def ancestors(self, unit_id: uuid.UUID) -> list[uuid.UUID]:
        """Ids from the unit's parent up to the root (stops at a cycle rather than looping)."""
        tree = (
            select(m.OrgUnit.id, m.OrgUnit.parent_id)
            .where(m.OrgUnit.id == unit_id)
            .cte(recursive=True)
        )
        tree = tree.union(
            select(m.OrgUnit.id, m.OrgUnit.parent_id).join(tree, m.OrgUnit.id == tree.c.parent_id)
        )
        return list((await self.session.scalars(select(tree.c.id))).all())

    async def units_with_code_overlapping(
        self, code: str, valid_from: date, valid_to: date | None, exclude: uuid.UUID | None
    ) -> Sequence[m.OrgUnit]:
        stmt = select(m.OrgUnit).where(
            m.OrgUnit.code == code,
            or_(m.OrgUnit.valid_to.is_(None), m.OrgUnit.valid_to > valid_from),
        )
        if valid_to is not None:
            stmt = stmt.where(m.OrgUnit.valid_from < valid_to)
        if exclude is not None:
            stmt = stmt.where(m.OrgUnit.id != exclude)
        return (await self.session.scalars(stmt)).all()

    async def successions_of(
        self, unit_id: uuid.UUID
    ) -> Sequence[tuple[m.OrgSuccession, m.OrgUnit, m.OrgUnit]]:
        predecessor, successor = aliased(m.OrgUnit), aliased(m.OrgUnit)
        stmt = (
            select(m.OrgSuccession, predecessor, successor)
            .join(predecessor, predecessor.id == m.OrgSuccession.predecessor_id)
            .join(successor, successor.id == m.OrgSuccession.successor_id)
            .where(
                or_(
                    m.OrgSuccession.predecessor_id == unit_id,
                    m.OrgSuccession.successor_id == unit_id,
                )
            )
            .order_by(m.OrgSuccession.effective, successor.key)
        )
        return [(s, p, n) for s, p, n in (await self.session.execute(stmt)).all()]

    async def succession_links(self) -> Sequence[tuple[str, str, date]]:
        """Every succession as (predecessor key, successor key, effective), oldest first."""
        predecessor, successor = aliased(m.OrgUnit), aliased(m.OrgUnit)
        stmt = (
            select(predecessor.key, successor.key, m.OrgSuccession.effective)
            .join(predecessor, predecessor.id == m.OrgSuccession.predecessor_id)
            .join(successor, successor.id == m.OrgSuccession.successor_id)
            .order_by(m.OrgSuccession.effective, predecessor.key, successor.key)
        )
        return [(p, n, e) for p, n, e in (await self.session.execute(stmt)).all()]

    async def units_by_keys(self, keys: Collection[str]) -> Mapping[str, m.OrgUnit]:
        """The units of the keys given that exist, by key."""
        stmt = select(m.OrgUnit).where(m.OrgUnit.key.in_(list(keys)))
        return {unit.key: unit for unit in (await self.session.scalars(stmt)).all()}

    async def succession_exists(
        self, predecessor_id: uuid.UUID, successor_id: uuid.UUID, kind: str
    ) -> bool:
        stmt = select(m.OrgSuccession.id).where(
            m.OrgSuccession.predecessor_id == predecessor_id,
            m.OrgSuccession.successor_id == successor_id,
            m.OrgSuccession.kind == kind,
        )
        return (await self.session.scalar(stmt)) is not None

    # --- programmes -------------------------------------------------------------------

    async def list_programmes(self, offset: int, limit: int) -> Sequence[m.Programme]:
        stmt = select(m.Programme).order_by(m.Programme.level, m.Programme.key)
        return [row[0] for row in await self._page(stmt, offset, limit)]

    async def get_programme(self, ref: str) -> m.Programme | None:
        stmt = select(m.Programme).where(_by_ref(m.Programme, ref))
        return (await self.session.scalars(stmt)).one_or_none()

    async def get_programme_for_update(self, ref: str) -> m.Programme | None:
        stmt = select(m.Programme).where(_by_ref(m.Programme, ref)).with_for_update()
        return (await self.session.scalars(stmt)).one_or_none()

    async def phases(self, programme_id: uuid.UUID) -> Sequence[m.Phase]:
        stmt = (
            select(m.Phase)
            .where(m.Phase.programme_id == programme_id)
            .order_by(m.Phase.start_year, m.Phase.end_year)
        )
        return (await self.session.scalars(stmt)).all()

    async def indicators(
        self, programme_id: uuid.UUID, offset: int, limit: int
    ) -> Sequence[m.Indicator]:
        stmt = (
            select(m.Indicator)
            .where(m.Indicator.programme_id == programme_id)
            .order_by(m.Indicator.key)
        )
        return [row[0] for row in await self._page(stmt, offset, limit)]

    async def targets(
        self,
        programme_id: uuid.UUID,
        *,
        phase: str | None,
        indicator: str | None,
        offset: int,
        limit: int,
    ) -> Sequence[tuple[m.Target, str, str, str | None]]:
        stmt = (
            select(m.Target, m.Indicator.key, m.Phase.key, m.BaselinePeriod.key)
            .join(m.Indicator, m.Indicator.id == m.Target.indicator_id)
            .join(m.Phase, m.Phase.id == m.Target.phase_id)
            .outerjoin(m.BaselinePeriod, m.BaselinePeriod.id == m.Target.baseline_period_id)
            .where(m.Target.programme_id == programme_id)
            .order_by(m.Phase.start_year, m.Phase.end_year, m.Indicator.key, m.Target.key)
        )
        if phase is not None:
            stmt = stmt.where(_by_ref(m.Phase, phase))
        if indicator is not None:
            stmt = stmt.where(_by_ref(m.Indicator, indicator))
        return [(t, i, p, b) for t, i, p, b in await self._page(stmt, offset, limit)]

    async def task_groups(self, programme_id: uuid.UUID) -> Sequence[m.TaskGroup]:
        stmt = (
            select(m.TaskGroup)
            .where(m.TaskGroup.programme_id == programme_id)
            .order_by(m.TaskGroup.number)
        )
        return (await self.session.scalars(stmt)).all()

    async def tasks(
        self,
        programme_id: uuid.UUID,
        *,
        group: str | None,
        unit: str | None,
        q: str | None,
        offset: int,
        limit: int,
    ) -> Sequence[tuple[m.Task, m.TaskGroup]]:
        stmt = (
            select(m.Task, m.TaskGroup)
            .join(m.TaskGroup, m.TaskGroup.id == m.Task.group_id)
            .where(m.TaskGroup.programme_id == programme_id)
            # "1.10" after "1.9": compare task numbers part by part, as integers.
            .order_by(
                m.TaskGroup.number,
                cast(func.string_to_array(m.Task.number, "."), ARRAY(Integer)),
            )
        )
        if group is not None:
            stmt = stmt.where(_by_ref(m.TaskGroup, group))
        if unit is not None:
            unit_ids = select(m.OrgUnit.id).where(_by_ref(m.OrgUnit, unit)).scalar_subquery()
            stmt = stmt.where(
                m.Task.id.in_(select(m.TaskUnit.task_id).where(m.TaskUnit.unit_id.in_(unit_ids)))
            )
        if q:
            stmt = stmt.where(matches_all_words(m.Task.search_text, q))
        return [(t, g) for t, g in await self._page(stmt, offset, limit)]

    async def task_units(
        self, task_ids: Sequence[uuid.UUID]
    ) -> Sequence[tuple[uuid.UUID, str, m.OrgUnit]]:
        stmt = (
            select(m.TaskUnit.task_id, m.TaskUnit.role, m.OrgUnit)
            .join(m.OrgUnit, m.OrgUnit.id == m.TaskUnit.unit_id)
            .where(m.TaskUnit.task_id.in_(task_ids))
            .order_by(m.OrgUnit.key)
        )
        return [(t, r, u) for t, r, u in (await self.session.execute(stmt)).all()]

    async def roles(
        self,
        programme_id: uuid.UUID,
        *,
        as_of: date | None,
        role: str | None,
        unit: str | None,
        offset: int,
        limit: int,
    ) -> Sequence[tuple[m.ProgrammeRole, m.OrgUnit, m.OrgUnit | None]]:
        focal = aliased(m.OrgUnit)
        stmt = (
            select(m.ProgrammeRole, m.OrgUnit, focal)
            .join(m.OrgUnit, m.OrgUnit.id == m.ProgrammeRole.unit_id)
            .outerjoin(focal, focal.id == m.ProgrammeRole.focal_agency_id)
            .where(m.ProgrammeRole.programme_id == programme_id)
            .order_by(m.ProgrammeRole.role, m.OrgUnit.key, m.ProgrammeRole.valid_from)
        )
        if as_of is not None:
            stmt = stmt.where(_in_force(m.ProgrammeRole, as_of))
        if role is not None:
            stmt = stmt.where(m.ProgrammeRole.role == role)
        if unit is not None:
            stmt = stmt.where(_by_ref(m.OrgUnit, unit))
        return [(r, u, f) for r, u, f in await self._page(stmt, offset, limit)]

    async def baseline_periods(self) -> Sequence[m.BaselinePeriod]:
        stmt = select(m.BaselinePeriod).order_by(m.BaselinePeriod.start_year)
        return (await self.session.scalars(stmt)).all()

    async def get_role_for_update(
        self, programme_id: uuid.UUID, role_id: uuid.UUID
    ) -> m.ProgrammeRole | None:
        stmt = (
            select(m.ProgrammeRole)
            .where(m.ProgrammeRole.id == role_id, m.ProgrammeRole.programme_id == programme_id)
            .with_for_update()
        )
        return (await self.session.scalars(stmt)).one_or_none()

    async def overlapping_roles(
        self,
        programme_id: uuid.UUID,
        role: str,
        valid_from: date,
        valid_to: date | None,
        *,
        unit_id: uuid.UUID | None,
        exclude: uuid.UUID | None,
    ) -> Sequence[m.ProgrammeRole]:
        """Roles of this kind overlapping [valid_from, valid_to), of one unit when given."""
        stmt = select(m.ProgrammeRole).where(
            m.ProgrammeRole.programme_id == programme_id,
            m.ProgrammeRole.role == role,
            or_(m.ProgrammeRole.valid_to.is_(None), m.ProgrammeRole.valid_to > valid_from),
        )
        if valid_to is not None:
            stmt = stmt.where(m.ProgrammeRole.valid_from < valid_to)
        if unit_id is not None:
            stmt = stmt.where(m.ProgrammeRole.unit_id == unit_id)
        if exclude is not None:
            stmt = stmt.where(m.ProgrammeRole.id != exclude)
        return (await self.session.scalars(stmt)).all()

    async def task_extensions(
        self, programme_id: uuid.UUID, offset: int, limit: int
    ) -> Sequence[tuple[m.TaskExtension, m.OrgUnit, m.OrgUnit, str | None]]:
        unit, decider = aliased(m.OrgUnit), aliased(m.OrgUnit)
        stmt = (
            select(m.TaskExtension, unit, decider, m.Task.key)
            .join(unit, unit.id == m.TaskExtension.unit_id)
            .join(decider, decider.id == m.TaskExtension.decided_by_id)
            .outerjoin(m.Task, m.Task.id == m.TaskExtension.task_id)
            .where(m.TaskExtension.programme_id == programme_id)
            .order_by(m.TaskExtension.decision_date, m.TaskExtension.key)
        )
        return [(e, u, d, t) for e, u, d, t in await self._page(stmt, offset, limit)]

    async def task_in_programme(self, programme_id: uuid.UUID, ref: str) -> m.Task | None:
        stmt = (
            select(m.Task)
            .join(m.TaskGroup, m.TaskGroup.id == m.Task.group_id)
            .where(m.TaskGroup.programme_id == programme_id, _by_ref(m.Task, ref))
        )
        return (await self.session.scalars(stmt)).one_or_none()

    async def key_taken(self, model: type[m.TaskExtension], key: str) -> bool:
        return (await self.session.scalar(select(model.id).where(model.key == key))) is not None


class CatalogueClientUnits(ClientUnits):
    """Identity's port onto the catalogue's organisation units."""

    async def by_ref(self, ref: str) -> ClientUnit | None:
        found = await CatalogueRepository(self.session).get_unit(ref)
        return found[0] if found else None

    async def by_ids(self, ids: Collection[uuid.UUID]) -> Mapping[uuid.UUID, ClientUnit]:
        if not ids:
            return {}
        units = await self.session.scalars(select(m.OrgUnit).where(m.OrgUnit.id.in_(list(ids))))
        return {u.id: u for u in units}
