"""Units over time: the one rule every write of plans, estimates and reports follows.

A unit files work only for periods it exists in, and a client acts for its unit only while
the unit exists, except to correct what the unit already filed (docs/units-over-time.md
states the rule as users read it). Refusals name the unit's period and its successors, so
the caller knows who files instead.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from nscl_domain.catalogue import models as m
from nscl_domain.errors import FieldProblem, Forbidden, Invalid
from nscl_domain.repositories import SessionRepository


@dataclass(frozen=True)
class Lifetime:
    """When a unit existed (valid_to exclusive, None: still exists) and who succeeded it."""

    unit_id: uuid.UUID
    unit_key: str
    valid_from: date
    valid_to: date | None
    successors: Sequence[str]

    def covers(self, day: date) -> bool:
        """Whether the unit exists on ``day``."""
        return self.valid_from <= day and (self.valid_to is None or day < self.valid_to)

    @property
    def period(self) -> str:
        return f"{self.valid_from}–{self.valid_to or 'open'}"

    def ended_by(self, day: date) -> bool:
        return self.valid_to is not None and self.valid_to <= day

    def successor_text(self) -> str:
        if not self.successors:
            return ""
        return f"; its successor is {', '.join(self.successors)}"

    def problem_members(self) -> dict[str, Any]:
        """The extension members of a refusal: the unit's period and its successors."""
        return {
            "unit_period": {
                "key": self.unit_key,
                "valid_from": self.valid_from.isoformat(),
                "valid_to": self.valid_to.isoformat() if self.valid_to else None,
                "successors": list(self.successors),
            }
        }


def _unit_statement() -> Any:
    """One round trip for a unit's period, its successors' keys and every unit it succeeded,
    directly or through others: a write reads all three for its caller's unit."""
    unit = aliased(m.OrgUnit)
    successor = aliased(m.OrgUnit)
    successors = (
        select(successor.key)
        .join(m.OrgSuccession, m.OrgSuccession.successor_id == successor.id)
        .where(m.OrgSuccession.predecessor_id == unit.id)
        .order_by(successor.key)
        .scalar_subquery()
    )
    tree = (
        select(m.OrgSuccession.predecessor_id.label("id"))
        .where(m.OrgSuccession.successor_id == bindparam("unit_id"))
        .cte("tree", recursive=True)
    )
    tree = tree.union(
        select(m.OrgSuccession.predecessor_id).join(tree, m.OrgSuccession.successor_id == tree.c.id)
    )
    predecessors = select(tree.c.id).where(tree.c.id != bindparam("unit_id")).scalar_subquery()
    # The predecessors come from the id alone: an id that names no unit still gets its row.
    known = select(bindparam("unit_id", type_=m.OrgUnit.id.type).label("unit_id")).subquery()
    return select(
        unit.id,
        unit.key,
        unit.valid_from,
        unit.valid_to,
        func.array(successors).label("successors"),
        func.array(predecessors).label("predecessors"),
    ).select_from(known.outerjoin(unit, unit.id == known.c.unit_id))


# Built once: composing it costs more than running it.
_UNIT = _unit_statement()


class Lifetimes(SessionRepository):
    """Reads units' periods and successor links (``uow.get(Lifetimes)``).

    What it read is kept for the transaction: one write asks both for its caller's unit,
    and units' periods and links change only through the catalogue's own use cases, which
    do not read them back through this repository.
    """

    def __init__(self, session: AsyncSession) -> None:
        super().__init__(session)
        self._read: dict[uuid.UUID, tuple[Lifetime | None, list[uuid.UUID]]] = {}

    async def _unit(self, unit_id: uuid.UUID) -> tuple[Lifetime | None, list[uuid.UUID]]:
        if unit_id not in self._read:
            row = (await self.session.execute(_UNIT, {"unit_id": unit_id})).one()
            lifetime = (
                None
                if row.id is None
                else Lifetime(row.id, row.key, row.valid_from, row.valid_to,
                              tuple(row.successors))
            )  # fmt: skip
            self._read[unit_id] = (lifetime, list(row.predecessors))
        return self._read[unit_id]

    async def of(self, unit_id: uuid.UUID) -> Lifetime | None:
        """The lifetime of a unit; None for an id that names no unit (the service itself)."""
        return (await self._unit(unit_id))[0]

    async def predecessors(self, unit_id: uuid.UUID) -> list[uuid.UUID]:
        """Every unit the unit succeeded, directly or through others (not the unit itself)."""
        return list((await self._unit(unit_id))[1])


def require_exists_on(lifetime: Lifetime, day: date, work: str, at: tuple[str | int, ...]) -> None:
    """Invalid unless the unit exists on ``day``, the day ``work`` needs it on."""
    if lifetime.covers(day):
        return
    when = "had not begun" if day < lifetime.valid_from else "had ended"
    raise Invalid(
        f"{lifetime.unit_key} exists {lifetime.period}: {work} needs it on {day}, when it "
        f"{when}{lifetime.successor_text()}.",
        code="unit_not_in_period",
        fields=[FieldProblem(at, f"The unit exists {lifetime.period}.", "unit_not_in_period")],
        extra=lifetime.problem_members(),
    )


def require_acting(
    lifetime: Lifetime, today: date, client_id: str, *, correcting: bool = False
) -> None:
    """Forbidden unless a client of the unit may act for it today.

    A client acts while its unit exists. After the unit's end it may still correct what the
    unit filed (``correcting``: the entity has a submitted version); before its start, nothing.
    """
    if lifetime.covers(today) or (correcting and lifetime.ended_by(today)):
        return
    if today < lifetime.valid_from:
        detail = (
            f"{lifetime.unit_key} exists from {lifetime.valid_from}; "
            f"{client_id} acts for it from then."
        )
    else:
        detail = (
            f"{lifetime.unit_key} ended on {lifetime.valid_to}{lifetime.successor_text()}: "
            f"{client_id} may only correct what the unit filed before then"
        )
        detail += "." if not lifetime.successors else ", and the successor files from then on."
    raise Forbidden(detail, code="unit_not_acting", extra=lifetime.problem_members())


def require_reviewer_acting(lifetime: Lifetime, today: date, client_id: str) -> None:
    """Forbidden unless the reviewer's unit exists today: a dissolved unit reviews nothing."""
    if lifetime.covers(today):
        return
    raise Forbidden(
        f"{client_id} reviews for {lifetime.unit_key}, which exists {lifetime.period}"
        f"{lifetime.successor_text()}: a unit reviews only while it exists.",
        code="reviewer_unit_not_acting",
        extra=lifetime.problem_members(),
    )


async def work_units(lifetimes: Lifetimes, unit_id: uuid.UUID) -> Collection[uuid.UUID]:
    """The units whose work a client of ``unit_id`` continues: its own and its predecessors'."""
    return [unit_id, *await lifetimes.predecessors(unit_id)]
