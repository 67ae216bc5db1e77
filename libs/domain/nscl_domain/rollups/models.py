"""Published rollups: each run kept, with the fingerprint of the inputs it was computed from."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from nscl_domain.db import Base, new_id


class RollupRun(Base):
    __tablename__ = "rollup_run"
    __table_args__ = (Index("ix_rollup_run_programme_id_year", "programme_id", "year"),)
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012 - SQLAlchemy's declarative API

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programme.id"))
    year: Mapped[int]
    computed_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # Hash of the accepted versions that went in: an unchanged input is not computed again.
    fingerprint: Mapped[str] = mapped_column(String(64))
    totals: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    sources: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
