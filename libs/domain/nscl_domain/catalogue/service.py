"""Use cases of the catalogue: read the programme as of a day; administrators change units."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from nscl_domain.audit.repository import AuditRepository, snapshot
from nscl_domain.catalogue import models as m
from nscl_domain.catalogue.repository import CatalogueRepository
from nscl_domain.errors import Conflict, FieldProblem, Invalid, NotFound
from nscl_domain.identity import Caller, Permission
from nscl_domain.text import fold, nfc
from nscl_domain.uow import UnitOfWork

SuccessionKind = Literal["merged_into", "split_into", "renamed_to", "absorbed_by_area"]


@dataclass(frozen=True)
class UnitView:
    unit: m.OrgUnit
    parent_key: str | None


@dataclass(frozen=True)
class SuccessionView:
    succession: m.OrgSuccession
    predecessor: m.OrgUnit
    successor: m.OrgUnit


@dataclass(frozen=True)
class UnitDetail:
    unit: m.OrgUnit
    parent_key: str | None
    successions: Sequence[SuccessionView] = field(default_factory=tuple)


@dataclass(frozen=True)
class TaskView:
    task: m.Task
    group: m.TaskGroup
    lead_units: Sequence[m.OrgUnit]
    cooperating_units: Sequence[m.OrgUnit]


# --- reads -------------------------------------------------------------------------------


async def list_units(
    uow: UnitOfWork,
    caller: Caller,
    *,
    as_of: date | None = None,
    kind: str | None = None,
    parent: str | None = None,
    code: str | None = None,
    q: str | None = None,
    after_key: str | None = None,
    limit: int = 50,
) -> Sequence[UnitView]:
    """Units (as of a day, when given) in key order; ``limit`` + 1 rows."""
    caller.require(Permission.CATALOGUE_READ)
    async with uow:
        rows = await uow.get(CatalogueRepository).list_units(
            as_of=as_of, kind=kind, parent=parent, code=code, q=q, after_key=after_key, limit=limit
        )
    return [UnitView(unit, parent_key) for unit, parent_key in rows]


async def get_unit(uow: UnitOfWork, caller: Caller, ref: str) -> UnitDetail:
    """One unit by id or key, with its predecessors and successors."""
    caller.require(Permission.CATALOGUE_READ)
    async with uow:
        found = await uow.get(CatalogueRepository).get_unit(ref)
        if found is None:
            raise _unit_not_found(ref)
        unit, parent_key = found
        successions = await uow.get(CatalogueRepository).successions_of(unit.id)
    return UnitDetail(unit, parent_key, [SuccessionView(*row) for row in successions])


async def programme_or_404(uow: UnitOfWork, ref: str) -> m.Programme:
    """A programme by id or key, in the unit of work's open transaction."""
    programme = await uow.get(CatalogueRepository).get_programme(ref)
    if programme is None:
        raise NotFound(f"Programme {ref!r} does not exist.", code="programme_not_found")
    return programme


def check_programme_year(programme: m.Programme, year: int, at: tuple[str | int, ...]) -> None:
    """Invalid (at ``at``) unless the programme runs in ``year``: estimates, dossiers and
    rollups exist only for its years (a rollup for another year would never be read)."""
    if not programme.start_year <= year <= programme.end_year:
        raise Invalid(
            f"The programme runs {programme.start_year}–{programme.end_year}.",
            code="year_outside_programme",
            fields=[FieldProblem(at, "Outside the programme.")],
        )


async def list_programmes(
    uow: UnitOfWork, caller: Caller, *, offset: int, limit: int
) -> Sequence[m.Programme]:
    """National programme first, then provincial plans."""
    caller.require(Permission.CATALOGUE_READ)
    async with uow:
        return await uow.get(CatalogueRepository).list_programmes(offset, limit)


async def get_programme(
    uow: UnitOfWork, caller: Caller, ref: str
) -> tuple[m.Programme, Sequence[m.Phase]]:
    """A programme by id or key, with its phases."""
    caller.require(Permission.CATALOGUE_READ)
    async with uow:
        programme = await programme_or_404(uow, ref)
        return programme, await uow.get(CatalogueRepository).phases(programme.id)


async def list_indicators(
    uow: UnitOfWork, caller: Caller, ref: str, *, offset: int, limit: int
) -> Sequence[m.Indicator]:
    caller.require(Permission.CATALOGUE_READ)
    async with uow:
        programme = await programme_or_404(uow, ref)
        return await uow.get(CatalogueRepository).indicators(programme.id, offset, limit)


async def list_targets(
    uow: UnitOfWork,
    caller: Caller,
    ref: str,
    *,
    phase: str | None,
    indicator: str | None,
    offset: int,
    limit: int,
) -> Sequence[tuple[m.Target, str, str, str | None]]:
    caller.require(Permission.CATALOGUE_READ)
    async with uow:
        programme = await programme_or_404(uow, ref)
        return await uow.get(CatalogueRepository).targets(
            programme.id, phase=phase, indicator=indicator, offset=offset, limit=limit
        )


async def list_task_groups(uow: UnitOfWork, caller: Caller, ref: str) -> Sequence[m.TaskGroup]:
    caller.require(Permission.CATALOGUE_READ)
    async with uow:
        programme = await programme_or_404(uow, ref)
        return await uow.get(CatalogueRepository).task_groups(programme.id)


async def list_tasks(
    uow: UnitOfWork,
    caller: Caller,
    ref: str,
    *,
    group: str | None,
    unit: str | None,
    q: str | None,
    offset: int,
    limit: int,
) -> Sequence[TaskView]:
    """Tasks in plan order, each with its lead and co-operating units."""
    caller.require(Permission.CATALOGUE_READ)
    async with uow:
        programme = await programme_or_404(uow, ref)
        rows = await uow.get(CatalogueRepository).tasks(
            programme.id, group=group, unit=unit, q=q, offset=offset, limit=limit
        )
        units = await uow.get(CatalogueRepository).task_units([task.id for task, _ in rows])
    by_task: dict[uuid.UUID, dict[str, list[m.OrgUnit]]] = {}
    for task_id, role, unit_row in units:
        by_task.setdefault(task_id, {"lead": [], "cooperating": []})[role].append(unit_row)
    return [
        TaskView(
            task,
            group_row,
            by_task.get(task.id, {}).get("lead", []),
            by_task.get(task.id, {}).get("cooperating", []),
        )
        for task, group_row in rows
    ]


async def list_roles(
    uow: UnitOfWork,
    caller: Caller,
    ref: str,
    *,
    as_of: date | None,
    role: str | None,
    unit: str | None,
    offset: int,
    limit: int,
) -> Sequence[tuple[m.ProgrammeRole, m.OrgUnit, m.OrgUnit | None]]:
    """Who plays which part in the programme (on a day, when given)."""
    caller.require(Permission.CATALOGUE_READ)
    async with uow:
        programme = await programme_or_404(uow, ref)
        return await uow.get(CatalogueRepository).roles(
            programme.id, as_of=as_of, role=role, unit=unit, offset=offset, limit=limit
        )


async def list_baseline_periods(uow: UnitOfWork, caller: Caller) -> Sequence[m.BaselinePeriod]:
    caller.require(Permission.CATALOGUE_READ)
    async with uow:
        return await uow.get(CatalogueRepository).baseline_periods()


# --- administrators' changes ---------------------------------------------------------------


@dataclass(frozen=True)
class UnitChanges:
    """Fields an administrator may set on a unit; None leaves a field as it is."""

    name_vi: str | None = None
    name_en: str | None = None
    abbreviation: str | None = None
    code: str | None = None
    parent: str | None = None
    valid_from: date | None = None
    valid_to: date | None = None
    # The people reminded of the unit's deadlines, replacing the list (name, email, role).
    contacts: list[dict[str, str]] | None = None
    clear: frozenset[str] = frozenset()  # fields to set to null (parent, code, valid_to …)


async def create_unit(
    uow: UnitOfWork,
    actor: Caller,
    *,
    key: str,
    kind: str,
    name_vi: str,
    name_en: str,
    valid_from: date,
    valid_to: date | None = None,
    code: str | None = None,
    abbreviation: str | None = None,
    parent: str | None = None,
) -> UnitDetail:
    """Add a unit after checking its period, its parent and its code."""
    actor.require(Permission.CATALOGUE_WRITE)
    async with uow:
        if await uow.get(CatalogueRepository).unit_by_key(key) is not None:
            raise Conflict(
                f"A unit with key {key!r} exists.",
                code="unit_key_taken",
                fields=[FieldProblem(("body", "key"), "Already used by another unit.")],
            )
        unit = m.OrgUnit(
            key=key,
            kind=kind,
            code=code,
            name_vi=nfc(name_vi),
            name_en=nfc(name_en),
            abbreviation=abbreviation,
            valid_from=valid_from,
            valid_to=valid_to,
            search_text="",
        )
        parent_unit = await _check_unit(uow, unit, parent)
        uow.get(CatalogueRepository).add(unit)
        await uow.get(CatalogueRepository).flush()
        uow.get(AuditRepository).record(
            actor, "org_unit.created", "org_unit", unit.id, after=snapshot(unit)
        )
        await uow.commit()
    return UnitDetail(unit, parent_unit.key if parent_unit else None)


async def update_unit(uow: UnitOfWork, actor: Caller, ref: str, changes: UnitChanges) -> UnitDetail:
    """Change a unit's names, code, parent or period, keeping the structure valid."""
    actor.require(Permission.CATALOGUE_WRITE)
    async with uow:
        unit = await uow.get(CatalogueRepository).get_unit_for_update(ref)
        if unit is None:
            raise _unit_not_found(ref)
        before = snapshot(unit)
        for name in ("name_vi", "name_en", "abbreviation", "code", "valid_from", "valid_to"):
            value = getattr(changes, name)
            if value is not None:
                setattr(unit, name, nfc(value) if isinstance(value, str) else value)
            elif name in changes.clear:
                setattr(unit, name, None)
        if changes.contacts is not None:
            unit.contacts = [
                {k: nfc(v) if k != "email" else v.strip().lower() for k, v in c.items()}
                for c in changes.contacts
            ]
        elif "contacts" in changes.clear:
            unit.contacts = []
        parent_ref: str | None
        if changes.parent is not None:
            parent_ref = changes.parent
        elif "parent" in changes.clear:
            parent_ref = None
        else:
            parent_ref = str(unit.parent_id) if unit.parent_id else None
        parent_unit = await _check_unit(uow, unit, parent_ref)
        await uow.get(CatalogueRepository).flush()
        successions = await uow.get(CatalogueRepository).successions_of(unit.id)
        uow.get(AuditRepository).record(
            actor, "org_unit.updated", "org_unit", unit.id, before=before, after=snapshot(unit)
        )
        await uow.commit()
    return UnitDetail(
        unit, parent_unit.key if parent_unit else None, [SuccessionView(*s) for s in successions]
    )


async def add_succession(
    uow: UnitOfWork,
    actor: Caller,
    predecessor_ref: str,
    *,
    successor: str,
    kind: SuccessionKind,
    effective: date,
    note_en: str | None = None,
) -> SuccessionView:
    """Link a unit to the unit that takes over from it on ``effective``."""
    actor.require(Permission.CATALOGUE_WRITE)
    async with uow:
        predecessor = await uow.get(CatalogueRepository).get_unit_for_update(predecessor_ref)
        if predecessor is None:
            raise _unit_not_found(predecessor_ref)
        found = await uow.get(CatalogueRepository).get_unit(successor)
        if found is None:
            raise Invalid(
                f"Successor {successor!r} does not exist.",
                code="successor_not_found",
                fields=[FieldProblem(("body", "successor"), "No unit has this id or key.")],
            )
        successor_unit = found[0]
        if successor_unit.id == predecessor.id:
            raise Invalid(
                "A unit cannot succeed itself.",
                code="successor_is_self",
                fields=[FieldProblem(("body", "successor"), "Must be another unit.")],
            )
        if not _covers(successor_unit, effective):
            raise Invalid(
                f"Successor {successor_unit.key!r} does not exist on {effective}.",
                code="successor_not_in_force",
                fields=[
                    FieldProblem(
                        ("body", "effective"),
                        f"Must fall within {successor_unit.valid_from}–"
                        f"{successor_unit.valid_to or 'open'}.",
                    )
                ],
            )
        key = f"s-{predecessor.key}-{kind}-{successor_unit.key}"
        if await uow.get(CatalogueRepository).succession_exists(
            predecessor.id, successor_unit.id, kind
        ):
            raise Conflict(
                f"{predecessor.key!r} is already recorded as {kind} {successor_unit.key!r}.",
                code="succession_exists",
                fields=[FieldProblem(("body", "successor"), "This link exists.")],
            )
        succession = m.OrgSuccession(
            key=key,
            predecessor_id=predecessor.id,
            successor_id=successor_unit.id,
            kind=kind,
            effective=effective,
            note_en=nfc(note_en) if note_en else None,
        )
        uow.get(CatalogueRepository).add(succession)
        await uow.get(CatalogueRepository).flush()
        uow.get(AuditRepository).record(
            actor,
            "org_unit.succession_added",
            "org_succession",
            succession.id,
            after=snapshot(succession),
        )
        await uow.commit()
    return SuccessionView(succession, predecessor, successor_unit)


# Roles held by one unit at a time: the routing of estimates and of reports depends on them.
SINGLE_HOLDER_ROLES = frozenset(
    {
        "lead",
        "standing_body",
        "recurrent_estimate_recipient",
        "investment_estimate_recipient",
        "receives_provincial_report",
    }
)

RoleView = tuple[m.ProgrammeRole, m.OrgUnit, m.OrgUnit | None]


async def add_role(
    uow: UnitOfWork,
    actor: Caller,
    programme_ref: str,
    *,
    role: str,
    unit: str,
    valid_from: date,
    valid_to: date | None = None,
    focal_agency: str | None = None,
) -> RoleView:
    """Give a unit a role in a programme for a period, keeping single-holder roles single."""
    actor.require(Permission.CATALOGUE_WRITE)
    async with uow:
        programme = await programme_or_404(uow, programme_ref)
        holder = await _existing_unit(uow, unit, "unit")
        focal = await _existing_unit(uow, focal_agency, "focal_agency") if focal_agency else None
        row = m.ProgrammeRole(
            key=f"r-{programme.key}-{role}-{holder.key}-{valid_from.isoformat()}",
            programme_id=programme.id,
            role=role,
            unit_id=holder.id,
            focal_agency_id=focal.id if focal else None,
            valid_from=valid_from,
            valid_to=valid_to,
        )
        await _check_role(uow, row, holder, focal)
        uow.get(CatalogueRepository).add(row)
        await uow.get(CatalogueRepository).flush()
        uow.get(AuditRepository).record(
            actor, "programme_role.added", "programme_role", row.id, after=snapshot(row)
        )
        await uow.commit()
    return row, holder, focal


async def set_four_eyes(
    uow: UnitOfWork, actor: Caller, programme_ref: str, *, required: bool, reason: str
) -> m.Programme:
    """Require, or waive, four eyes on the programme's reviews, with the reason (audited)."""
    actor.require(Permission.CATALOGUE_WRITE)
    async with uow:
        programme = await uow.get(CatalogueRepository).get_programme_for_update(programme_ref)
        if programme is None:
            raise NotFound(
                f"Programme {programme_ref!r} does not exist.", code="programme_not_found"
            )
        before = programme.four_eyes
        programme.four_eyes = required
        uow.get(AuditRepository).record(
            actor, "programme.four_eyes_set", "programme", programme.id,
            before={"four_eyes": before}, after={"four_eyes": required, "reason": reason},
        )  # fmt: skip
        await uow.commit()
        # The flush expired the keys read with the row (parent, owner unit): read it again.
        return await programme_or_404(uow, programme_ref)


async def end_role(
    uow: UnitOfWork, actor: Caller, programme_ref: str, role_id: uuid.UUID, *, valid_to: date | None
) -> RoleView:
    """Set (or clear) the day a role stops applying."""
    actor.require(Permission.CATALOGUE_WRITE)
    async with uow:
        programme = await programme_or_404(uow, programme_ref)
        row = await uow.get(CatalogueRepository).get_role_for_update(programme.id, role_id)
        if row is None:
            raise NotFound(f"Role {role_id} does not exist.", code="role_not_found")
        before = snapshot(row)
        row.valid_to = valid_to
        holder = await _existing_unit(uow, str(row.unit_id), "unit")
        focal = (
            await _existing_unit(uow, str(row.focal_agency_id), "focal_agency")
            if row.focal_agency_id
            else None
        )
        await _check_role(uow, row, holder, focal)
        await uow.get(CatalogueRepository).flush()
        uow.get(AuditRepository).record(
            actor,
            "programme_role.updated",
            "programme_role",
            row.id,
            before=before,
            after=snapshot(row),
        )
        await uow.commit()
    return row, holder, focal


async def _existing_unit(uow: UnitOfWork, ref: str, field_name: str) -> m.OrgUnit:
    found = await uow.get(CatalogueRepository).get_unit(ref)
    if found is None:
        raise Invalid(
            f"Unit {ref!r} does not exist.",
            code="unit_not_found",
            fields=[FieldProblem(("body", field_name), "No unit has this id or key.")],
        )
    return found[0]


async def _check_role(
    uow: UnitOfWork, row: m.ProgrammeRole, holder: m.OrgUnit, focal: m.OrgUnit | None
) -> None:
    if row.valid_to is not None and row.valid_to <= row.valid_from:
        raise Invalid(
            "The role would end before it starts.",
            code="period_reversed",
            fields=[FieldProblem(("body", "valid_to"), "Must be after valid_from.")],
        )
    if not _covers(holder, row.valid_from):
        raise Invalid(
            f"Unit {holder.key!r} does not exist on {row.valid_from}.",
            code="unit_not_in_force",
            fields=[FieldProblem(("body", "valid_from"), "The unit must exist on this day.")],
        )
    if holder.valid_to is not None and (row.valid_to is None or row.valid_to > holder.valid_to):
        raise Invalid(
            f"Unit {holder.key!r} ends on {holder.valid_to}; its role cannot outlast it.",
            code="role_outlasts_unit",
            fields=[FieldProblem(("body", "valid_to"), f"Must be {holder.valid_to} or earlier.")],
        )
    if focal is not None and row.role != "reporting_unit":
        raise Invalid(
            "Only reporting units designate a focal agency.",
            code="focal_agency_not_allowed",
            fields=[FieldProblem(("body", "focal_agency"), "Leave empty for this role.")],
        )
    only_one = row.role in SINGLE_HOLDER_ROLES
    clashes = await uow.get(CatalogueRepository).overlapping_roles(
        row.programme_id,
        row.role,
        row.valid_from,
        row.valid_to,
        unit_id=None if only_one else holder.id,
        exclude=row.id,
    )
    if clashes:
        raise Conflict(
            f"Role {row.role!r} is already held for part of this period "
            f"(from {clashes[0].valid_from}); end that role first.",
            code="role_overlap",
            fields=[FieldProblem(("body", "valid_from"), "Overlaps an existing role.")],
        )


ExtensionView = tuple[m.TaskExtension, m.OrgUnit, m.OrgUnit, str | None]


async def list_task_extensions(
    uow: UnitOfWork, caller: Caller, programme_ref: str, *, offset: int, limit: int
) -> Sequence[ExtensionView]:
    caller.require(Permission.CATALOGUE_READ)
    async with uow:
        programme = await programme_or_404(uow, programme_ref)
        return await uow.get(CatalogueRepository).task_extensions(programme.id, offset, limit)


async def add_task_extension(
    uow: UnitOfWork,
    actor: Caller,
    programme_ref: str,
    *,
    key: str,
    title_vi: str,
    title_en: str,
    unit: str,
    decided_by: str,
    decision_no: str,
    decision_date: date,
    extended_to_year: int,
    task: str | None = None,
) -> ExtensionView:
    """Record that a task of the previous programme continues, and who decided it."""
    actor.require(Permission.CATALOGUE_WRITE)
    async with uow:
        programme = await programme_or_404(uow, programme_ref)
        if await uow.get(CatalogueRepository).key_taken(m.TaskExtension, key):
            raise Conflict(
                f"An extension with key {key!r} exists.",
                code="extension_key_taken",
                fields=[FieldProblem(("body", "key"), "Already used.")],
            )
        owner = await _existing_unit(uow, unit, "unit")
        decider = await _existing_unit(uow, decided_by, "decided_by")
        # The unit decides within its own authority; otherwise the People's Committee does.
        if decider.id != owner.id and decider.kind != "provincial_peoples_committee":
            raise Invalid(
                "An extension is decided by the unit itself or the provincial People's Committee.",
                code="decider_not_competent",
                fields=[FieldProblem(("body", "decided_by"), "Not a competent body.")],
            )
        if not _covers(decider, decision_date):
            raise Invalid(
                f"{decider.key!r} did not exist on {decision_date}.",
                code="decider_not_in_force",
                fields=[FieldProblem(("body", "decision_date"), "Outside the decider's period.")],
            )
        if not programme.start_year <= extended_to_year <= programme.end_year:
            raise Invalid(
                f"Extensions run within {programme.start_year}–{programme.end_year}.",
                code="extension_out_of_programme",
                fields=[FieldProblem(("body", "extended_to_year"), "Outside the programme.")],
            )
        linked = None
        if task is not None:
            linked = await uow.get(CatalogueRepository).task_in_programme(programme.id, task)
            if linked is None:
                raise Invalid(
                    f"Task {task!r} is not a task of this programme.",
                    code="task_not_found",
                    fields=[FieldProblem(("body", "task"), "No task of this programme.")],
                )
        extension = m.TaskExtension(
            key=key,
            programme_id=programme.id,
            task_id=linked.id if linked else None,
            title_vi=nfc(title_vi),
            title_en=nfc(title_en),
            unit_id=owner.id,
            decided_by_id=decider.id,
            decision_no=nfc(decision_no),
            decision_date=decision_date,
            extended_to_year=extended_to_year,
        )
        uow.get(CatalogueRepository).add(extension)
        await uow.get(CatalogueRepository).flush()
        uow.get(AuditRepository).record(
            actor,
            "task_extension.added",
            "task_extension",
            extension.id,
            after=snapshot(extension),
        )
        await uow.commit()
    return extension, owner, decider, linked.key if linked else None


def _covers(unit: m.OrgUnit, day: date) -> bool:
    return unit.valid_from <= day and (unit.valid_to is None or unit.valid_to > day)


async def _check_unit(uow: UnitOfWork, unit: m.OrgUnit, parent_ref: str | None) -> m.OrgUnit | None:
    """Validate period, parent (exists, covers the period, no cycle) and code; set the parent."""
    if unit.valid_to is not None and unit.valid_to <= unit.valid_from:
        raise Invalid(
            "The unit would end before it starts.",
            code="period_reversed",
            fields=[FieldProblem(("body", "valid_to"), "Must be after valid_from.")],
        )
    parent_unit: m.OrgUnit | None = None
    if parent_ref is not None:
        found = await uow.get(CatalogueRepository).get_unit(parent_ref)
        if found is None:
            raise Invalid(
                f"Parent {parent_ref!r} does not exist.",
                code="parent_not_found",
                fields=[FieldProblem(("body", "parent"), "No unit has this id or key.")],
            )
        parent_unit = found[0]
        if unit.id is not None and (
            parent_unit.id == unit.id
            or unit.id in await uow.get(CatalogueRepository).ancestors(parent_unit.id)
        ):
            raise Invalid(
                "The parent would make the unit its own ancestor.",
                code="parent_cycle",
                fields=[FieldProblem(("body", "parent"), "Would create a cycle in the tree.")],
            )
        starts_late = unit.valid_from < parent_unit.valid_from
        ends_late = parent_unit.valid_to is not None and (
            unit.valid_to is None or unit.valid_to > parent_unit.valid_to
        )
        if starts_late or ends_late:
            raise Invalid(
                f"The unit's period lies outside its parent {parent_unit.key!r}'s.",
                code="period_outside_parent",
                fields=[
                    FieldProblem(
                        ("body", "valid_from" if starts_late else "valid_to"),
                        f"Must lie within {parent_unit.valid_from}–"
                        f"{parent_unit.valid_to or 'open'}.",
                    )
                ],
            )
    unit.parent_id = parent_unit.id if parent_unit else None
    if unit.code is not None:
        clashes = await uow.get(CatalogueRepository).units_with_code_overlapping(
            unit.code, unit.valid_from, unit.valid_to, exclude=unit.id
        )
        if clashes:
            raise Conflict(
                f"Code {unit.code!r} is used by {clashes[0].key!r} in an overlapping period.",
                code="unit_code_clash",
                fields=[FieldProblem(("body", "code"), "Must be unique within a period.")],
            )
    unit.search_text = fold(
        " ".join(filter(None, (unit.name_vi, unit.name_en, unit.abbreviation, unit.code)))
    )
    return parent_unit


def _unit_not_found(ref: str) -> NotFound:
    return NotFound(f"Organisation unit {ref!r} does not exist.", code="unit_not_found")
