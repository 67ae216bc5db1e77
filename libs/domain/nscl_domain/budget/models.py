"""Tables of budgets: estimates and their lines, chart-of-accounts codes, dossiers, allocations.

Money is whole Vietnamese đồng in BIGINT: the đồng has no minor unit, and no float is used.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, get_args

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, column_property, mapped_column

from nscl_domain.catalogue.models import OrgUnit, Task
from nscl_domain.db import Base, new_id
from nscl_domain.workflow import EnumText, Reviewed, ReviewStatus, known_values

FundingSource = Literal[
    "recurrent_science",
    "recurrent_sector",
    "development_investment",
    "other_enterprise",
    "other_sponsorship",
    "other",
]
FUNDING_SOURCES: tuple[str, ...] = get_args(FundingSource)
MAX_AMOUNT = 10**15


class DossierStatus(StrEnum):
    """A dossier is built (draft), sent to its destination, and acknowledged by it."""

    DRAFT = "draft"
    SENT = "sent"
    ACKNOWLEDGED = "acknowledged"


class AccountCode(Base):
    """A code of the state budget chart of accounts, valid for a range of budget years."""

    __tablename__ = "account_code"
    __table_args__ = (
        CheckConstraint("kind IN ('chapter', 'loai_khoan', 'muc_tieu_muc')", name="kind_known"),
        UniqueConstraint("kind", "code", "valid_from_year"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(20))
    code: Mapped[str] = mapped_column(String(20))
    name_vi: Mapped[str] = mapped_column(Text)
    valid_from_year: Mapped[int]
    valid_to_year: Mapped[int | None]  # inclusive; NULL = still valid
    source: Mapped[str] = mapped_column(String(100))


class BudgetEstimate(Reviewed, Base):
    """A unit's estimate for a budget year: its lines and the state of review."""

    noun = "budget estimate"
    code = "estimate"
    not_found_code = "estimate_not_found"
    not_editable_code = "estimate_not_editable"
    __tablename__ = "budget_estimate"
    __table_args__ = (
        UniqueConstraint("programme_id", "unit_id", "budget_year"),
        # Totals, dossiers and rollups read a programme's estimates of one budget year.
        Index("ix_budget_estimate_programme_id_budget_year", "programme_id", "budget_year"),
        known_values("status", ReviewStatus),
    )
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012 - SQLAlchemy's declarative API

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programme.id"))
    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("org_unit.id"), index=True)
    budget_year: Mapped[int]
    submitted_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    def was_filed(self) -> bool:
        return self.submitted_at is not None

    def _submitted(self, now: datetime) -> None:
        # Unlike a report or plan, an estimate keeps the reason it was last returned.
        self.submitted_at = now


class EstimateLine(Base):
    """A line: what for, how much, from which source, and (once submitted) to whom it goes."""

    __tablename__ = "estimate_line"
    __table_args__ = (
        CheckConstraint(f"amount >= 0 AND amount <= {MAX_AMOUNT}", name="amount_range"),
        CheckConstraint(
            "funding_source IN (" + ", ".join(f"'{s}'" for s in FUNDING_SOURCES) + ")",
            name="funding_source_known",
        ),
        Index("ix_estimate_line_destination_unit_id", "destination_unit_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    estimate_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("budget_estimate.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int]
    task_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("task.id"))
    activity: Mapped[str] = mapped_column(Text)
    amount: Mapped[int] = mapped_column(BigInteger)
    funding_source: Mapped[str] = mapped_column(String(30))
    chapter: Mapped[str | None] = mapped_column(String(20))
    loai_khoan: Mapped[str | None] = mapped_column(String(20))
    muc_tieu_muc: Mapped[str | None] = mapped_column(String(20))
    # Decided by the routing in force for the budget year, when submitted; never rewritten.
    destination_unit_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("org_unit.id"))
    task_key: Mapped[str | None] = column_property(
        select(Task.key).where(Task.id == task_id).correlate_except(Task).scalar_subquery()
    )
    destination_key: Mapped[str | None] = column_property(
        select(OrgUnit.key)
        .where(OrgUnit.id == destination_unit_id)
        .correlate_except(OrgUnit)
        .scalar_subquery()
    )


class Dossier(Base):
    """What DOST sends one destination for one budget year: frozen once built."""

    __tablename__ = "budget_dossier"
    __table_args__ = (
        UniqueConstraint("programme_id", "budget_year", "destination_unit_id", "version_no"),
        known_values("status", DossierStatus),
    )
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012 - SQLAlchemy's declarative API

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programme.id"))
    budget_year: Mapped[int]
    destination_unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("org_unit.id"), index=True)
    version_no: Mapped[int]
    status: Mapped[DossierStatus] = mapped_column(EnumText(DossierStatus, 20))
    total: Mapped[int] = mapped_column(BigInteger)
    document: Mapped[dict[str, Any]] = mapped_column(JSONB)
    built_at: Mapped[datetime] = mapped_column(server_default=func.now())
    sent_at: Mapped[datetime | None]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(100))


class Allocation(Base):
    """What the destination allocated against one line of a dossier."""

    __tablename__ = "budget_allocation"
    __table_args__ = (
        UniqueConstraint("dossier_id", "line_id"),
        Index("ix_budget_allocation_line_id", "line_id"),  # a line's allocation, for follow-up
        CheckConstraint(f"amount >= 0 AND amount <= {MAX_AMOUNT}", name="amount_range"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    dossier_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("budget_dossier.id"))
    line_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("estimate_line.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    recorded_by: Mapped[str] = mapped_column(String(100))
    recorded_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Spending(Base):
    """Money a unit spent against an allocation."""

    __tablename__ = "budget_spending"
    __table_args__ = (
        CheckConstraint(f"amount > 0 AND amount <= {MAX_AMOUNT}", name="amount_range"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    allocation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("budget_allocation.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    spent_on: Mapped[datetime]
    note: Mapped[str] = mapped_column(Text)
    recorded_by: Mapped[str] = mapped_column(String(100))
