"""The one review workflow of reports, plans and budget estimates.

A unit writes a draft, submits it, the reviewer returns it (the unit edits and resubmits)
or accepts it; an accepted report may be reopened for a correction. Each reviewed entity
declares its noun, so the messages about a plan speak of a plan.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar

from sqlalchemy import CheckConstraint, String, Text, select, text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from nscl_domain.audit.repository import AuditRepository
from nscl_domain.catalogue.lifetime import (
    Lifetimes,
    require_acting,
    require_reviewer_acting,
    work_units,
)
from nscl_domain.catalogue.repository import CatalogueRepository
from nscl_domain.errors import Conflict, Forbidden, NotFound, PreconditionFailed, ProblemCode
from nscl_domain.repositories import SessionRepository

if TYPE_CHECKING:
    # Only for annotations: the unit of work's repositories import the reviewed models.
    from nscl_domain.identity import Caller, Permission
    from nscl_domain.uow import UnitOfWork


class ReviewStatus(StrEnum):
    """Where a reviewed entity stands."""

    DRAFT = "draft"
    SUBMITTED = "submitted"
    RETURNED = "returned"
    RESUBMITTED = "resubmitted"
    ACCEPTED = "accepted"


class Action(StrEnum):
    SUBMIT = "submit"
    RETURN = "return"
    ACCEPT = "accept"
    CORRECT = "correct"


TRANSITIONS: dict[tuple[ReviewStatus, Action], ReviewStatus] = {
    (ReviewStatus.DRAFT, Action.SUBMIT): ReviewStatus.SUBMITTED,
    (ReviewStatus.RETURNED, Action.SUBMIT): ReviewStatus.RESUBMITTED,
    (ReviewStatus.SUBMITTED, Action.RETURN): ReviewStatus.RETURNED,
    (ReviewStatus.RESUBMITTED, Action.RETURN): ReviewStatus.RETURNED,
    (ReviewStatus.SUBMITTED, Action.ACCEPT): ReviewStatus.ACCEPTED,
    (ReviewStatus.RESUBMITTED, Action.ACCEPT): ReviewStatus.ACCEPTED,
    # A correction after acceptance reopens a draft; submitting it makes a new version.
    (ReviewStatus.ACCEPTED, Action.CORRECT): ReviewStatus.DRAFT,
}
ReviewDecision = Literal[Action.ACCEPT, Action.RETURN]
EDITABLE = frozenset({ReviewStatus.DRAFT, ReviewStatus.RETURNED})
_PAST = {
    Action.SUBMIT: "submitted",
    Action.RETURN: "returned",
    Action.ACCEPT: "accepted",
    Action.CORRECT: "corrected",
}

E = TypeVar("E", bound=StrEnum)


class EnumText(TypeDecorator[E]):
    """A StrEnum stored as its value in a VARCHAR column (the column's type is unchanged)."""

    impl = String
    cache_ok = True

    def __init__(self, enum: type[E], length: int) -> None:
        super().__init__(length)
        self.enum = enum

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        # Plain strings are accepted too (filters compare with them) but must be members.
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: Any, dialect: Dialect) -> E | None:
        return None if value is None else self.enum(value)


def known_values(column: str, enum: type[StrEnum]) -> CheckConstraint:
    """The database's own check that ``column`` holds a member of ``enum``."""
    values = ", ".join(f"'{member.value}'" for member in enum)
    return CheckConstraint(f"{column} IN ({values})", name=f"{column}_known")


class Reviewed:
    """The columns and behaviour of a row under review (a mixin of the mapped model)."""

    noun: ClassVar[str]
    """What the user calls it: "report", "plan", "budget estimate"."""
    code: ClassVar[str]
    """The prefix of its audit actions: report.submitted, estimate.accepted."""
    not_found_code: ClassVar[ProblemCode]
    """Its problem codes, spelled out so that each is checked against ProblemCode."""
    not_editable_code: ClassVar[ProblemCode]

    if TYPE_CHECKING:
        __tablename__: Any
        id: Mapped[uuid.UUID]
        unit_id: Mapped[uuid.UUID]

    status: Mapped[ReviewStatus] = mapped_column(EnumText(ReviewStatus, 20))
    # Bumped on every change: the ETag that If-Match must name.
    revision: Mapped[int] = mapped_column(server_default=text("1"))
    returned_reason: Mapped[str | None] = mapped_column(Text)
    accepted_at: Mapped[datetime | None]
    # The client that sent what is under review: it may not review it (four eyes).
    submitted_by: Mapped[str | None] = mapped_column(String(100))

    def was_filed(self) -> bool:
        """Whether the unit has submitted it at least once (what a correction may change)."""
        return self.status != ReviewStatus.DRAFT

    def next_status(self, action: Action) -> ReviewStatus:
        """The status after ``action``, or Conflict when the current status does not allow it."""
        try:
            return TRANSITIONS[(self.status, action)]
        except KeyError:
            allowed = sorted(a.value for (s, a) in TRANSITIONS if s == self.status)
            raise Conflict(
                f"A {self.status} {self.noun} cannot be {_PAST[action]}"
                + (f"; it can be: {', '.join(allowed)}." if allowed else "."),
                code="transition_not_allowed",
            ) from None

    def check_editable(self) -> None:
        """Conflict unless the content may be changed (a draft, or returned to its unit)."""
        if self.status not in EDITABLE:
            raise Conflict(
                f"A {self.status} {self.noun} cannot be edited{self._editable_hint()}",
                code=self.not_editable_code,
            )

    def _editable_hint(self) -> str:
        return "."

    def changed(self, now: datetime) -> None:
        """Bump the revision: the ETag a later If-Match must name."""
        self.revision += 1

    def submit(self, now: datetime) -> ReviewStatus:
        """Send it for review; return the status it had (a returned one is resubmitted)."""
        before = self.status
        self.status = self.next_status(Action.SUBMIT)
        self._submitted(now)
        self.changed(now)
        return before

    def _submitted(self, now: datetime) -> None:
        """What else a submission records: when it was sent, which reasons it answers."""

    def return_(self, reason: str | None, now: datetime) -> None:
        """Send it back to its unit with the reason."""
        self.status = self.next_status(Action.RETURN)
        self.returned_reason = reason
        self.changed(now)

    def accept(self, now: datetime) -> None:
        """Accept what was submitted last."""
        self.status = self.next_status(Action.ACCEPT)
        self.accepted_at = now
        self.changed(now)

    def review(self, action: ReviewDecision, now: datetime, reason: str | None = None) -> None:
        """Accept, or return with the reason: the reviewer's two decisions."""
        if action == Action.ACCEPT:
            self.accept(now)
        elif action == Action.RETURN:
            self.return_(reason, now)
        else:
            raise ValueError(f"{action} is not a review decision")

    def check_revision(self, expected_revision: int | None) -> None:
        """PreconditionFailed unless the caller names the revision it last read."""
        if expected_revision is None or self.revision != expected_revision:
            raise PreconditionFailed(
                f"The {self.noun} changed (revision {self.revision}); "
                "read it again before changing it.",
                code="stale_revision",
            )


R = TypeVar("R", bound=Reviewed)
Scope = uuid.UUID | Collection[uuid.UUID] | None
"""The units whose entities a caller reaches: one, several, or None for every unit."""


def in_scope(unit_column: Any, unit_scope: Scope) -> Any:
    """The condition that rows of ``unit_column`` are in the scope (None: no condition)."""
    if unit_scope is None:
        return None
    if isinstance(unit_scope, uuid.UUID):
        return unit_column == unit_scope
    return unit_column.in_(list(unit_scope))


class Correctable(Reviewed):
    """A reviewed row whose submissions are kept as numbered versions, the accepted one
    feeding the rollups, and which reopens as a correction: reports and programme records.
    The mapped model declares the columns named below."""

    if TYPE_CHECKING:
        correction_reason: Mapped[str | None]
        latest_version_no: Mapped[int]
        accepted_version_no: Mapped[int | None]
        first_submitted_at: Mapped[datetime | None]
        updated_at: Mapped[datetime]

    def _editable_hint(self) -> str:
        return " until it is returned or corrected."

    def changed(self, now: datetime) -> None:
        """Bump the revision and note when it last changed."""
        super().changed(now)
        self.updated_at = now

    def _submitted(self, now: datetime) -> None:
        self.first_submitted_at = self.first_submitted_at or now
        self.correction_reason = None
        self.returned_reason = None

    def accept(self, now: datetime) -> None:
        """Accept the latest submitted version: its figures feed the rollups."""
        super().accept(now)
        self.accepted_version_no = self.latest_version_no

    def correct(self, reason: str, now: datetime) -> None:
        """Reopen it accepted as the draft of its next version, with the reason."""
        self.status = self.next_status(Action.CORRECT)
        self.correction_reason = reason
        self.changed(now)


class ReviewedRepository(SessionRepository):
    """Loads a reviewed entity of any context for reading or for a change."""

    async def load(
        self,
        model: type[R],
        entity_id: uuid.UUID,
        unit_scope: Scope,
        *,
        for_update: bool = False,
    ) -> R:
        """The entity if the unit scope (None: every unit) may see it, else NotFound."""
        stmt = select(model).where(model.id == entity_id)
        if unit_scope is not None:
            stmt = stmt.where(in_scope(model.unit_id, unit_scope))
        if for_update:
            stmt = stmt.with_for_update()
        found = (
            await self.session.scalars(stmt, execution_options={"populate_existing": True})
        ).one_or_none()
        if found is None:
            raise NotFound(
                f"{model.noun.capitalize()} {entity_id} does not exist.",
                code=model.not_found_code,
            )
        return found

    async def load_for_change(
        self,
        model: type[R],
        entity_id: uuid.UUID,
        unit_scope: Scope,
        expected_revision: int | None,
    ) -> R:
        """Lock the entity in scope and check the caller read its current revision (If-Match)."""
        entity = await self.load(model, entity_id, unit_scope, for_update=True)
        entity.check_revision(expected_revision)
        return entity


V = TypeVar("V")
C = TypeVar("C")
P = TypeVar("P")


async def _change(
    uow: UnitOfWork,
    actor: Caller,
    model: type[R],
    entity_id: uuid.UUID,
    unit_scope: Scope | Callable[[], Awaitable[Scope]],
    expected_revision: int,
    step: Callable[[R], Awaitable[dict[str, Any]]],
    event: Callable[[R], str],
    view: Callable[[R], Awaitable[V]],
) -> V:
    """One transaction: lock under If-Match, take the step, audit it, answer, commit."""
    async with uow:
        reviewed = uow.get(ReviewedRepository)
        scope = await unit_scope() if callable(unit_scope) else unit_scope
        entity = await reviewed.load_for_change(model, entity_id, scope, expected_revision)
        after = await step(entity)
        uow.get(AuditRepository).record(
            actor, event(entity), model.__tablename__, entity.id, after=after
        )
        # The answer is read after what the step wrote is flushed.
        await reviewed.flush()
        result = await view(entity)
        await uow.commit()
    return result


async def unit_work_scope(uow: UnitOfWork, caller: Caller) -> Collection[uuid.UUID]:
    """The units whose open work a client continues: its own, and its unit's predecessors'."""
    return await work_units(uow.get(Lifetimes), caller.unit_id)


async def read_scope(uow: UnitOfWork, caller: Caller) -> Scope:
    """The units whose work the caller reads: every unit's (None), or its own and its
    predecessors' (a successor sees the work it continues)."""
    return None if caller.read_scope is None else await unit_work_scope(uow, caller)


async def check_acting(uow: UnitOfWork, caller: Caller, *, correcting: bool = False) -> None:
    """Forbidden unless the caller's unit exists today, or it corrects what the unit filed."""
    lifetime = await uow.get(Lifetimes).of(caller.unit_id)
    if lifetime is not None:
        require_acting(lifetime, uow.now().date(), caller.client_id, correcting=correcting)


async def check_acting_on(uow: UnitOfWork, caller: Caller, entity: Reviewed) -> None:
    """The acting rule for a change to ``entity``: a correction when the unit filed it and
    it is the caller's own unit's (a successor continues open work, never past filings)."""
    await check_acting(
        uow, caller, correcting=entity.was_filed() and entity.unit_id == caller.unit_id
    )


async def check_reviewer(uow: UnitOfWork, reviewer: Caller) -> None:
    """Forbidden unless the reviewer's unit exists today."""
    lifetime = await uow.get(Lifetimes).of(reviewer.unit_id)
    if lifetime is not None:
        require_reviewer_acting(lifetime, uow.now().date(), reviewer.client_id)


async def check_four_eyes(
    uow: UnitOfWork,
    reviewer: Caller,
    programme_id: uuid.UUID,
    submitted_by: str | None,
    noun: str,
) -> bool:
    """Forbidden when the reviewer sent what it reviews and the programme wants four eyes;
    True when the programme waived the rule and the reviewer is the submitter (audited)."""
    if submitted_by is None or submitted_by != reviewer.client_id:
        return False
    programme = await uow.get(CatalogueRepository).get_programme(str(programme_id))
    if programme is None or programme.four_eyes:
        raise Forbidden(
            f"{reviewer.client_id} submitted this {noun}; another reviewer must decide on it "
            "(four eyes).",
            code="four_eyes",
        )
    return True


@dataclass(frozen=True)
class Edit(Generic[R, C, V]):
    """The unit's use case of rewriting the content of its draft (or returned) entity.

    The context parses and checks the content, writes it, and says what the audit event
    keeps and what the caller gets back.
    """

    model: type[R]
    permission: Permission
    event: str
    parse: Callable[[Any], C]
    write: Callable[[UnitOfWork, R, C], Awaitable[None]]
    audited: Callable[[R, C], dict[str, Any]]
    view: Callable[[UnitOfWork, R], Awaitable[V]]

    async def __call__(
        self,
        uow: UnitOfWork,
        caller: Caller,
        entity_id: uuid.UUID,
        raw: Any,
        *,
        expected_revision: int,
    ) -> V:
        """Replace the content if the caller read the current revision and may still edit."""
        caller.require(self.permission)
        content = self.parse(raw)

        async def step(entity: R) -> dict[str, Any]:
            await check_acting_on(uow, caller, entity)
            entity.check_editable()
            await self.write(uow, entity, content)
            entity.changed(uow.now())
            return self.audited(entity, content)

        return await _change(
            uow, caller, self.model, entity_id, lambda: unit_work_scope(uow, caller),
            expected_revision,
            step, lambda _: self.event, lambda entity: self.view(uow, entity),
        )  # fmt: skip


@dataclass(frozen=True)
class Submit(Generic[R, P, V]):
    """The unit's use case of sending its entity for review.

    The context checks what is submitted and records it (a frozen version, the routing of
    its lines) before the status changes, and says what the audit event keeps and what the
    caller gets back.
    """

    model: type[R]
    permission: Permission
    prepare: Callable[[UnitOfWork, Caller, R, datetime], Awaitable[P]]
    audited: Callable[[R, P], dict[str, Any]]
    view: Callable[[UnitOfWork, R, P], Awaitable[V]]

    async def __call__(
        self, uow: UnitOfWork, caller: Caller, entity_id: uuid.UUID, *, expected_revision: int
    ) -> V:
        """Submit the entity if the caller read its current revision and its status allows."""
        caller.require(self.permission)
        prepared: list[P] = []

        async def step(entity: R) -> dict[str, Any]:
            await check_acting_on(uow, caller, entity)
            entity.next_status(Action.SUBMIT)  # refused before the checks run
            now = uow.now()
            prepared.append(await self.prepare(uow, caller, entity, now))
            entity.submit(now)
            entity.submitted_by = caller.client_id
            return self.audited(entity, prepared[0])

        return await _change(
            uow, caller, self.model, entity_id, lambda: unit_work_scope(uow, caller),
            expected_revision,
            step, lambda _: f"{self.model.code}.submitted",
            lambda entity: self.view(uow, entity, prepared[0]),
        )  # fmt: skip


@dataclass(frozen=True)
class Review(Generic[R, V]):
    """The reviewer's use case, accept or return, for one kind of reviewed entity.

    The context says who may review, which units' entities a reviewer reaches, what an
    acceptance sets in motion, what the audit event keeps, and what the caller gets back.
    """

    model: type[R]
    permission: Permission
    view: Callable[[UnitOfWork, R], Awaitable[V]]
    audited: Callable[[R, str | None], dict[str, Any]]
    accepted: Callable[[UnitOfWork, Caller, R], Awaitable[object]] | None = None
    """What an acceptance sets in motion (its result, a job it queued, is the context's)."""
    scope: Callable[[Caller], uuid.UUID | None] | None = None
    """The unit whose entities the reviewer reaches; by default what the reviewer may read."""
    programme_of: Callable[[UnitOfWork, R], Awaitable[uuid.UUID]] | None = None
    """The programme whose four-eyes setting applies; by default the entity's programme_id."""

    async def __call__(
        self,
        uow: UnitOfWork,
        reviewer: Caller,
        entity_id: uuid.UUID,
        action: ReviewDecision,
        *,
        expected_revision: int,
        reason: str | None = None,
    ) -> V:
        """Accept the entity, or return it to its unit with the reason."""
        reviewer.require(self.permission)

        async def step(entity: R) -> dict[str, Any]:
            await check_reviewer(uow, reviewer)
            entity.next_status(action)  # a decision the status does not allow is refused first
            programme_id = (
                await self.programme_of(uow, entity)
                if self.programme_of is not None
                else entity.programme_id  # type: ignore[attr-defined]  # plans and estimates
            )
            waived = await check_four_eyes(
                uow, reviewer, programme_id, entity.submitted_by, self.model.noun
            )
            entity.review(action, uow.now(), reason)
            if action == Action.ACCEPT and self.accepted is not None:
                await self.accepted(uow, reviewer, entity)
            audited = self.audited(entity, reason)
            return {**audited, "four_eyes_waived": True} if waived else audited

        return await _change(
            uow, reviewer, self.model, entity_id,
            self.scope(reviewer) if self.scope else reviewer.read_scope, expected_revision,
            step, lambda entity: f"{self.model.code}.{entity.status}",
            lambda entity: self.view(uow, entity),
        )  # fmt: skip
