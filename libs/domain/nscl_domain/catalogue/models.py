"""Tables of the programme catalogue: who takes part, what must be achieved, what must be done."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    column,
    select,
    table,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, column_property, mapped_column

from nscl_domain.db import Base, new_id

# Effective dating everywhere: valid_from inclusive, valid_to exclusive, NULL = open-ended.
_PERIOD_CHECK = "valid_to IS NULL OR valid_to > valid_from"


class OrgUnit(Base):
    """An organisation unit as it existed between valid_from and valid_to."""

    __tablename__ = "org_unit"
    __table_args__ = (
        CheckConstraint(_PERIOD_CHECK, name="period_ordered"),
        Index("ix_org_unit_parent_id", "parent_id"),
        Index("ix_org_unit_code", "code"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(50))
    code: Mapped[str | None] = mapped_column(String(20))
    name_vi: Mapped[str] = mapped_column(String(300))
    name_en: Mapped[str] = mapped_column(String(300))
    abbreviation: Mapped[str | None] = mapped_column(String(30))
    parent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("org_unit.id"))
    valid_from: Mapped[date]
    valid_to: Mapped[date | None]
    # Lower-case, diacritics folded: "cho don" finds "Chợ Đồn".
    search_text: Mapped[str] = mapped_column(Text)
    # The people reminded of the unit's deadlines: [{"name", "email", "role"}].
    contacts: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, server_default=text("'[]'::jsonb"), default=list
    )


class OrgSuccession(Base):
    """A successor link: merged into, split into, renamed to, or area absorbed by."""

    __tablename__ = "org_succession"
    __table_args__ = (
        CheckConstraint("predecessor_id <> successor_id", name="not_self"),
        CheckConstraint(
            "kind IN ('merged_into', 'split_into', 'renamed_to', 'absorbed_by_area')",
            name="kind_known",
        ),
        UniqueConstraint("predecessor_id", "successor_id", "kind"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    predecessor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("org_unit.id"))
    successor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("org_unit.id"))
    kind: Mapped[str] = mapped_column(String(30))
    effective: Mapped[date]
    note_en: Mapped[str | None] = mapped_column(Text)


# The parent programme, seen from a programme row: its key, read with the row.
_PARENT_PROGRAMME = table("programme", column("id"), column("key")).alias("parent_programme")


class Programme(Base):
    """The national programme or a provincial plan that implements it."""

    __tablename__ = "programme"
    __table_args__ = (
        CheckConstraint("level IN ('national', 'provincial')", name="level_known"),
        CheckConstraint("end_year >= start_year", name="years_ordered"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    level: Mapped[str] = mapped_column(String(20))
    parent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("programme.id"))
    owner_unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("org_unit.id"))
    decision_no: Mapped[str] = mapped_column(String(50))
    decision_date: Mapped[date]
    decided_by_vi: Mapped[str] = mapped_column(String(300))
    decided_by_en: Mapped[str] = mapped_column(String(300))
    name_vi: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str] = mapped_column(Text)
    start_year: Mapped[int]
    end_year: Mapped[int]
    # Responses name related objects by key: read with the row, not one query per reference.
    parent_key: Mapped[str | None] = column_property(
        select(_PARENT_PROGRAMME.c.key).where(_PARENT_PROGRAMME.c.id == parent_id).scalar_subquery()
    )
    owner_unit_key: Mapped[str] = column_property(
        select(OrgUnit.key)
        .where(OrgUnit.id == owner_unit_id)
        .correlate_except(OrgUnit)
        .scalar_subquery()
    )
    # Four eyes: the client that submitted a version may not accept or return it. An
    # administrator may waive it for a programme run by a single person (audited).
    four_eyes: Mapped[bool] = mapped_column(server_default=text("true"))


class Phase(Base):
    __tablename__ = "phase"
    __table_args__ = (CheckConstraint("end_year >= start_year", name="years_ordered"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programme.id"), index=True)
    name_vi: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    start_year: Mapped[int]
    end_year: Mapped[int]


class BaselinePeriod(Base):
    __tablename__ = "baseline_period"
    __table_args__ = (CheckConstraint("end_year >= start_year", name="years_ordered"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    name_vi: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    start_year: Mapped[int]
    end_year: Mapped[int]


class ProgrammeRole(Base):
    """A unit's role in a programme for a period (lead, standing body, reporting unit …)."""

    __tablename__ = "programme_role"
    __table_args__ = (
        CheckConstraint(_PERIOD_CHECK, name="period_ordered"),
        CheckConstraint(
            "role IN ('lead', 'standing_body', 'recurrent_estimate_recipient', "
            "'investment_estimate_recipient', 'reporting_unit', 'cooperating_unit', "
            "'receives_provincial_report')",
            name="role_known",
        ),
        Index("ix_programme_role_programme_id_role", "programme_id", "role"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    key: Mapped[str] = mapped_column(String(150), unique=True)
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programme.id"))
    role: Mapped[str] = mapped_column(String(50))
    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("org_unit.id"), index=True)
    focal_agency_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("org_unit.id"))
    valid_from: Mapped[date]
    valid_to: Mapped[date | None]


class Indicator(Base):
    __tablename__ = "indicator"
    __table_args__ = (
        CheckConstraint(
            "aggregation_across_units IN ('sum', 'latest', 'maximum', 'minimum', 'average')",
            name="unit_aggregation_known",
        ),
        CheckConstraint(
            "aggregation_across_time IN ('sum', 'latest', 'maximum')",
            name="time_aggregation_known",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programme.id"), index=True)
    name_vi: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str] = mapped_column(Text)
    unit: Mapped[str] = mapped_column(String(30))
    aggregation_across_units: Mapped[str] = mapped_column(String(20))
    aggregation_across_time: Mapped[str] = mapped_column(String(20))
    disaggregations: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    derived_from: Mapped[str | None] = mapped_column(String(50))
    # A provincial indicator counts towards this indicator of the national programme.
    national_indicator_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("indicator.id"))


class Target(Base):
    """What an indicator must reach in a phase, and how achievement is judged."""

    __tablename__ = "target"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('phase_total', 'minimum', 'yearly_growth_range', "
            "'baseline_percentage', 'share_percentage')",
            name="kind_known",
        ),
        CheckConstraint("max_pct IS NULL OR min_pct IS NULL OR max_pct >= min_pct", name="range"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programme.id"), index=True)
    indicator_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("indicator.id"))
    phase_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("phase.id"))
    kind: Mapped[str] = mapped_column(String(30))
    value: Mapped[Decimal | None] = mapped_column(Numeric(20, 4))
    min_pct: Mapped[Decimal | None] = mapped_column(Numeric(9, 4))
    max_pct: Mapped[Decimal | None] = mapped_column(Numeric(9, 4))
    baseline_period_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("baseline_period.id"))
    disaggregation: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    approximate: Mapped[bool]
    text_vi: Mapped[str] = mapped_column(Text)
    text_en: Mapped[str] = mapped_column(Text)


class TaskGroup(Base):
    __tablename__ = "task_group"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programme.id"), index=True)
    number: Mapped[int]
    name_vi: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str] = mapped_column(Text)


class Task(Base):
    __tablename__ = "task"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    group_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("task_group.id"), index=True)
    number: Mapped[str] = mapped_column(String(20))
    text_vi: Mapped[str] = mapped_column(Text)
    text_en: Mapped[str] = mapped_column(Text)
    search_text: Mapped[str] = mapped_column(Text)


class TaskUnit(Base):
    """A unit that leads or co-operates on a task."""

    __tablename__ = "task_unit"
    __table_args__ = (CheckConstraint("role IN ('lead', 'cooperating')", name="role_known"),)

    task_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("task.id", ondelete="CASCADE"), primary_key=True
    )
    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("org_unit.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(20), primary_key=True)


class TaskExtension(Base):
    """A task of the previous programme (to 2020) extended into 2021–2030, and who decided it."""

    __tablename__ = "task_extension"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programme.id"), index=True)
    task_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("task.id"))
    title_vi: Mapped[str] = mapped_column(Text)
    title_en: Mapped[str] = mapped_column(Text)
    unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("org_unit.id"))
    decided_by_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("org_unit.id"))
    decision_no: Mapped[str] = mapped_column(String(50))
    decision_date: Mapped[date]
    extended_to_year: Mapped[int]
