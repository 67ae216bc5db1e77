"""A generated document, kept whole: the DOCX and XLSX an official receives, tied to the
published runs it was made from.

Insert-only (PostgreSQL refuses to change or delete a row): what was signed stays what it
was. The same runs render to the same bytes, so a second generation from them finds the
row already there and compares checksums instead of writing another.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    LargeBinary,
    String,
    UniqueConstraint,
    Uuid,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from nscl_domain.db import Base, new_id

DOCUMENT_KINDS = ("annual_report", "mid_term_review", "final_review")
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class DocumentArtefact(Base):
    __tablename__ = "document_artefact"
    __table_args__ = (
        UniqueConstraint("programme_id", "kind", "period", "fingerprint"),
        CheckConstraint(
            "kind IN (" + ", ".join(f"'{k}'" for k in DOCUMENT_KINDS) + ")", name="kind_known"
        ),
    )
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012 - SQLAlchemy's declarative API

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    programme_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("programme.id"))
    kind: Mapped[str] = mapped_column(String(20))
    # The year ("2024") of an annual report, the phase key of a review.
    period: Mapped[str] = mapped_column(String(100))
    # The published run the document reports on: the year's run, or a review's last year's.
    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("rollup_run.id"))
    # Every run read (a year's chart shows the phase's earlier years too), in year order.
    run_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid))
    fingerprint: Mapped[str] = mapped_column(String(64))
    docx: Mapped[bytes] = mapped_column(LargeBinary)
    xlsx: Mapped[bytes] = mapped_column(LargeBinary)
    docx_sha256: Mapped[str] = mapped_column(String(64))
    xlsx_sha256: Mapped[str] = mapped_column(String(64))
    job_id: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
