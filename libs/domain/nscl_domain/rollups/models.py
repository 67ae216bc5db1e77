"""Rollups: every computed run kept with its inputs' fingerprint, its cells and its sources;
a publication pointer per programme-year names the run readers see.

Runs and cells are insert-only (PostgreSQL refuses to change them). Publishing
moves the pointer in the transaction that writes the run, so a reader sees the previous
run or the new one whole, never a mix.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from nscl_domain.db import Base, new_id

TOTAL = ""
"""The breakdown of a cell over every unit; others read ``unit_kind=…`` or ``programme=…``."""


class RollupRun(Base):
    __tablename__ = "rollup_run"
    __table_args__ = (
        UniqueConstraint("programme_id", "year", "seq"),
        # pushed: a province's published run, received from its own instance (national-intake).
        CheckConstraint("kind IN ('full', 'incremental', 'pushed')", name="kind_known"),
        CheckConstraint("level IN ('provincial', 'national')", name="level_known"),
    )
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012 - SQLAlchemy's declarative API

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programme.id"))
    year: Mapped[int]
    seq: Mapped[int]
    level: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(20))
    # Hash of what went in (accepted versions, budget state, the units' structure): a run
    # whose inputs did not change is not computed again.
    fingerprint: Mapped[str] = mapped_column(String(64))
    # The digests of what the run shows besides its figures (obligations, estimates, money,
    # plans): while they stand, a refresh keeps the sections built from them.
    other_inputs: Mapped[str] = mapped_column(Text)
    computed_at: Mapped[datetime] = mapped_column(server_default=func.now())
    job_id: Mapped[uuid.UUID | None]
    sources: Mapped[int]
    # What it was computed from: accepted report versions (provincial) or the provincial
    # runs published at the time (national), each with its unit and breakdown. Kept on the
    # run as parallel arrays: a rebuild writes one row per run, not one per source.
    source_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid))
    source_units: Mapped[list[uuid.UUID | None]] = mapped_column(ARRAY(Uuid))
    source_breakdowns: Mapped[list[str]] = mapped_column(ARRAY(Text))
    # Budget, task progress and timeliness of the year, read whole; JSON text, which
    # PostgreSQL builds far faster than JSONB and nobody queries inside.
    sections: Mapped[dict[str, Any]] = mapped_column(JSON)


class RollupCell(Base):
    """One aggregated figure: an indicator (and disaggregation) over a breakdown of units."""

    __tablename__ = "rollup_cell"

    # No foreign keys: cells are written only by the engine, in the statement that reads
    # the run and the indicators they name, and per-row key checks doubled that write.
    run_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    indicator_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    disaggregation: Mapped[str] = mapped_column(String(200), primary_key=True)
    breakdown: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[Decimal] = mapped_column(Numeric(24, 4))
    # What combines upwards exactly: sums and counts (for averages), extremes.
    value_sum: Mapped[Decimal] = mapped_column(Numeric(24, 4))
    value_count: Mapped[int]
    value_min: Mapped[Decimal] = mapped_column(Numeric(20, 4))
    value_max: Mapped[Decimal] = mapped_column(Numeric(20, 4))


class RollupPublication(Base):
    """The run readers see for a programme-year."""

    __tablename__ = "rollup_publication"

    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programme.id"), primary_key=True)
    year: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("rollup_run.id"))
    published_at: Mapped[datetime]


class NationalIntake(Base):
    """A province's published run as its own instance pushed it (national-intake): who sent
    it, when, and which run of the province it was. Each one becomes a frozen ``pushed``
    rollup run of the provincial programme here, with the province's run id as its id."""

    __tablename__ = "national_intake"
    __table_args__ = (UniqueConstraint("programme_id", "run_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programme.id"))
    year: Mapped[int]
    # The province's run: its id (also the id of the pushed run here), seq and fingerprint.
    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("rollup_run.id"))
    seq: Mapped[int]
    fingerprint: Mapped[str] = mapped_column(String(64))
    computed_at: Mapped[datetime]
    cells: Mapped[int]
    received_at: Mapped[datetime]
    received_by: Mapped[str] = mapped_column(String(100))
