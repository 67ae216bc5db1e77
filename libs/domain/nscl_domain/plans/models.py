"""Tables of plans: the plan and its draft, frozen versions, change requests."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from nscl_domain.db import Base, new_id
from nscl_domain.workflow import EnumText, Reviewed, ReviewStatus, known_values

PlanKind = Literal["five_year", "annual"]
PlanVersionKind = Literal["submission", "resubmission", "change"]


class ChangeRequestStatus(StrEnum):
    """Where a proposed change to an accepted plan stands."""

    PROPOSED = "proposed"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


class Plan(Reviewed, Base):
    """A unit's five-year or annual plan: its working content and the state of review."""

    noun = "plan"
    code = "plan"
    not_found_code = "plan_not_found"
    not_editable_code = "plan_not_editable"
    __tablename__ = "plan"
    __table_args__ = (
        UniqueConstraint("programme_id", "unit_id", "kind", "start_year"),
        CheckConstraint("kind IN ('five_year', 'annual')", name="kind_known"),
        CheckConstraint("end_year >= start_year", name="years_ordered"),
        known_values("status", ReviewStatus),
    )
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012 - SQLAlchemy's declarative API

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programme.id"))
    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("org_unit.id"), index=True)
    kind: Mapped[PlanKind] = mapped_column(String(20))
    start_year: Mapped[int]
    end_year: Mapped[int]
    content: Mapped[dict[str, Any]] = mapped_column(JSONB)
    # The version in force: the last accepted submission or approved change.
    accepted_version_no: Mapped[int | None]
    submitted_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    def was_filed(self) -> bool:
        return self.submitted_at is not None

    def _editable_hint(self) -> str:
        if self.status == ReviewStatus.ACCEPTED:
            return ". Propose a change request instead."
        return "."

    def _submitted(self, now: datetime) -> None:
        self.submitted_at = now
        self.returned_reason = None


class PlanVersion(Base):
    """A submitted or changed plan, frozen: PostgreSQL refuses to change it."""

    __tablename__ = "plan_version"
    __table_args__ = (
        UniqueConstraint("plan_id", "version_no"),
        CheckConstraint("kind IN ('submission', 'resubmission', 'change')", name="kind_known"),
    )
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012 - SQLAlchemy's declarative API

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    plan_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("plan.id"))
    version_no: Mapped[int]
    kind: Mapped[PlanVersionKind] = mapped_column(String(20))
    content: Mapped[dict[str, Any]] = mapped_column(JSONB)
    change_request_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("plan_change_request.id")
    )
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(100))


class PlanChangeRequest(Base):
    """A unit's proposal to adjust its accepted plan, and DOST's decision on it."""

    __tablename__ = "plan_change_request"
    __table_args__ = (
        known_values("status", ChangeRequestStatus),
        # One open proposal per plan: DOST decides on it before the next is made.
        Index(
            "uq_plan_change_request_open",
            "plan_id",
            unique=True,
            postgresql_where=text("status = 'proposed'"),
        ),
    )
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012 - SQLAlchemy's declarative API

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    plan_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("plan.id"), index=True)
    status: Mapped[ChangeRequestStatus] = mapped_column(EnumText(ChangeRequestStatus, 20))
    reason: Mapped[str] = mapped_column(Text)
    proposed_content: Mapped[dict[str, Any]] = mapped_column(JSONB)
    base_version_no: Mapped[int]
    proposed_by: Mapped[str] = mapped_column(String(100))
    proposed_at: Mapped[datetime]
    decided_by: Mapped[str | None] = mapped_column(String(100))
    decided_at: Mapped[datetime | None]
    decision_note: Mapped[str | None] = mapped_column(Text)
    resulting_version_no: Mapped[int | None]
