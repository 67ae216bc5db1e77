"""Tables of reporting: regimes, obligations, reports, and their frozen versions."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import (
    ARRAY,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from nscl_domain.db import Base, new_id
from nscl_domain.reports.rules import Severity
from nscl_domain.workflow import Correctable, ReviewStatus, known_values

VersionKind = Literal["submission", "resubmission", "correction"]


class ReportingRegime(Base):
    """How a kind of report is due: annual (30 November), reviews, ad hoc."""

    __tablename__ = "reporting_regime"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('annual', 'ad_hoc', 'mid_term_review', 'final_review')", name="kind_known"
        ),
        CheckConstraint("due_month BETWEEN 1 AND 12 AND due_day BETWEEN 1 AND 31", name="due"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programme.id"), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    name_vi: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str] = mapped_column(Text)
    due_month: Mapped[int]
    due_day: Mapped[int]
    # Days before the due date on which the reported figures are cut off.
    cutoff_days_before_due: Mapped[int] = mapped_column(server_default=text("0"))
    # Years the regime applies to; NULL: every year of the programme.
    years: Mapped[list[int] | None] = mapped_column(ARRAY(Integer))
    # Days before the due date on which units that have not submitted are reminded.
    reminder_days_before: Mapped[list[int]] = mapped_column(
        ARRAY(Integer), server_default=text("'{14,3,1}'::integer[]"), default=lambda: [14, 3, 1]
    )


class ReportingRequest(Base):
    """An ad hoc (đột xuất) request from the lead department, with its own scope and deadline."""

    __tablename__ = "reporting_request"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programme.id"), index=True)
    title_vi: Mapped[str] = mapped_column(Text)
    title_en: Mapped[str] = mapped_column(Text)
    year: Mapped[int]
    due_date: Mapped[date]
    indicator_keys: Mapped[list[str]] = mapped_column(ARRAY(String(100)))
    questions: Mapped[list[str]] = mapped_column(ARRAY(Text))
    requested_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Obligation(Base):
    """That a unit must report for a year (or answer a request) by a due date."""

    __tablename__ = "reporting_obligation"
    __table_args__ = (
        CheckConstraint("(regime_id IS NULL) <> (request_id IS NULL)", name="regime_or_request"),
        UniqueConstraint("regime_id", "unit_id", "year"),
        UniqueConstraint("request_id", "unit_id"),
        Index("ix_reporting_obligation_programme_id_year", "programme_id", "year"),
    )
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012 - SQLAlchemy's declarative API

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programme.id"))
    regime_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("reporting_regime.id"))
    request_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("reporting_request.id"))
    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("org_unit.id"), index=True)
    year: Mapped[int]
    due_date: Mapped[date]
    cutoff_date: Mapped[date]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class ReminderSent(Base):
    """A reminder queued for one contact: at most one per obligation × kind × e-mail.

    The row is written with the job that sends it, in one transaction, so two runs of the
    reminders (two workers, a run again after a restart) queue it once; ``sent_at`` is set
    by the delivery job in the transaction that ends it.
    """

    __tablename__ = "reminder_sent"
    __table_args__ = (UniqueConstraint("obligation_id", "kind", "email"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    obligation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("reporting_obligation.id"))
    # before_<days> or missed
    kind: Mapped[str] = mapped_column(String(30))
    email: Mapped[str] = mapped_column(String(320))
    contact_name: Mapped[str] = mapped_column(Text)
    job_id: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    sent_at: Mapped[datetime | None]


class Report(Correctable, Base):
    """A unit's report for one obligation: the editable draft and the state of review."""

    noun = "report"
    code = "report"
    not_found_code = "report_not_found"
    not_editable_code = "report_not_editable"
    __tablename__ = "report"
    __table_args__ = (
        known_values("status", ReviewStatus),
        # Clients keeping a copy in step ask for the reports changed since they last looked.
        Index("ix_report_updated_at", "updated_at"),
    )
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012 - SQLAlchemy's declarative API

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    obligation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("reporting_obligation.id"), unique=True
    )
    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("org_unit.id"), index=True)
    draft: Mapped[dict[str, Any]] = mapped_column(JSONB)
    correction_reason: Mapped[str | None] = mapped_column(Text)
    latest_version_no: Mapped[int] = mapped_column(server_default=text("0"))
    accepted_version_no: Mapped[int | None]
    first_submitted_at: Mapped[datetime | None]
    # The day DOST received the first version by official letter, for a report entered
    # from the past (backfilled): timeliness is judged on it, not on the entry time.
    received_on: Mapped[date | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())

    def was_filed(self) -> bool:
        return self.latest_version_no > 0


class ReportVersion(Base):
    """A submitted version, frozen: PostgreSQL refuses to change it (see the migration)."""

    __tablename__ = "report_version"
    __table_args__ = (
        UniqueConstraint("report_id", "version_no"),
        CheckConstraint("kind IN ('submission', 'resubmission', 'correction')", name="kind_known"),
        CheckConstraint(
            "NOT backfilled OR (letter_number IS NOT NULL AND letter_date IS NOT NULL "
            "AND letter_issuer IS NOT NULL AND received_on IS NOT NULL "
            "AND letter_date <= received_on)",
            name="backfill_has_letter",
        ),
    )
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012 - SQLAlchemy's declarative API

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    report_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("report.id"))
    version_no: Mapped[int]
    kind: Mapped[VersionKind] = mapped_column(String(20))
    content: Mapped[dict[str, Any]] = mapped_column(JSONB)
    warnings: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    reason: Mapped[str | None] = mapped_column(Text)
    submitted_at: Mapped[datetime]
    submitted_by: Mapped[str] = mapped_column(String(100))
    # Entered from the past by DOST (submitted_by is who entered it, submitted_at when), as
    # received by official letter (số và ngày văn bản) on received_on.
    backfilled: Mapped[bool] = mapped_column(server_default=text("false"))
    letter_number: Mapped[str | None] = mapped_column(String(100))
    letter_date: Mapped[date | None]
    letter_issuer: Mapped[str | None] = mapped_column(Text)
    received_on: Mapped[date | None]


class IndicatorValue(Base):
    """A figure of a submitted version, typed or derived from its records (for rollups)."""

    __tablename__ = "indicator_value"
    __table_args__ = (
        # The value rides in the key's index: rollups read figures by version index-only.
        PrimaryKeyConstraint(
            "version_id", "indicator_id", "disaggregation", postgresql_include=["value"]
        ),
        Index("ix_indicator_value_indicator_id_year", "indicator_id", "year"),
    )

    version_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("report_version.id"), primary_key=True)
    indicator_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("indicator.id"), primary_key=True)
    # Canonical "dimension=value" pairs joined by ";", "" for the total.
    disaggregation: Mapped[str] = mapped_column(String(200), primary_key=True)
    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("org_unit.id"))
    year: Mapped[int]
    value: Mapped[Decimal] = mapped_column(Numeric(20, 4))
    derived: Mapped[bool]


class TaskProgress(Base):
    __tablename__ = "task_progress"
    __table_args__ = (
        CheckConstraint(
            "status IN ('not_started', 'in_progress', 'completed', 'suspended')",
            name="status_known",
        ),
    )

    version_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("report_version.id"), primary_key=True)
    task_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("task.id"), primary_key=True)
    status: Mapped[str] = mapped_column(String(20))
    narrative: Mapped[str] = mapped_column(Text)


class ValidationRule(Base):
    """A validation rule's stored setting (the check itself is code, keyed by ``code``)."""

    __tablename__ = "validation_rule"
    __table_args__ = (CheckConstraint("severity IN ('error', 'warning')", name="severity_known"),)

    code: Mapped[str] = mapped_column(String(50), primary_key=True)
    severity: Mapped[Severity] = mapped_column(String(10))
    enabled: Mapped[bool]
    description: Mapped[str] = mapped_column(Text)
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
