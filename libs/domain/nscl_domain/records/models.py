"""Tables of programme records: the working record under review, its frozen versions,
and the figures each version counts (what rollups read)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from nscl_domain.db import Base, new_id
from nscl_domain.records.content import RecordKind
from nscl_domain.workflow import Correctable, EnumText, ReviewStatus, known_values

RecordVersionKind = Literal["submission", "resubmission", "correction"]


class ProgrammeRecord(Correctable, Base):
    """A unit's (or DOST's) record of one thing it did for the programme, under review."""

    noun = "record"
    code = "record"
    not_found_code = "record_not_found"
    not_editable_code = "record_not_editable"
    __tablename__ = "programme_record"
    __table_args__ = (
        known_values("status", ReviewStatus),
        known_values("kind", RecordKind),
        Index("ix_programme_record_programme_id_year_kind", "programme_id", "year", "kind"),
    )
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012 - SQLAlchemy's declarative API

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programme.id"))
    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("org_unit.id"), index=True)
    kind: Mapped[RecordKind] = mapped_column(EnumText(RecordKind, 30))
    # The programme year of the draft's reference date (a decision, a course's end...).
    year: Mapped[int]
    title: Mapped[str] = mapped_column(Text)
    # The draft's words folded (no diacritics, lower case), for the list's ``q`` filter.
    search_text: Mapped[str] = mapped_column(Text)
    draft: Mapped[dict[str, Any]] = mapped_column(JSONB)
    correction_reason: Mapped[str | None] = mapped_column(Text)
    latest_version_no: Mapped[int] = mapped_column(server_default=text("0"))
    accepted_version_no: Mapped[int | None]
    first_submitted_at: Mapped[datetime | None]
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class ProgrammeRecordVersion(Base):
    """A submitted version, frozen: PostgreSQL refuses to change it (see the migration)."""

    __tablename__ = "programme_record_version"
    __table_args__ = (
        UniqueConstraint("record_id", "version_no"),
        CheckConstraint("kind IN ('submission', 'resubmission', 'correction')", name="kind_known"),
    )
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012 - SQLAlchemy's declarative API

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    record_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programme_record.id"))
    version_no: Mapped[int]
    kind: Mapped[RecordVersionKind] = mapped_column(String(20))
    # The year this version counts in: a correction may move a record to another year.
    year: Mapped[int]
    content: Mapped[dict[str, Any]] = mapped_column(JSONB)
    reason: Mapped[str | None] = mapped_column(Text)
    submitted_at: Mapped[datetime]
    submitted_by: Mapped[str] = mapped_column(String(100))


class RecordFigure(Base):
    """A figure a submitted record version counts, for the indicator that names its measure."""

    __tablename__ = "record_figure"
    __table_args__ = (Index("ix_record_figure_indicator_id_year", "indicator_id", "year"),)

    version_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("programme_record_version.id"), primary_key=True
    )
    indicator_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("indicator.id"), primary_key=True)
    # Canonical "dimension=value" pairs joined by ";", "" for the total.
    disaggregation: Mapped[str] = mapped_column(String(200), primary_key=True)
    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("org_unit.id"))
    year: Mapped[int]
    value: Mapped[Decimal] = mapped_column(Numeric(20, 4))
