"""Documents: the annual report and phase reviews kept as immutable artefacts.

One row per document rendered from a set of published runs, with both files and their
SHA-256 checksums; a trigger (the baseline's refuse_change_of_frozen_row) keeps a signed
document from changing after it is written.

Revision ID: 5c1f0d2a7e31
Revises: a7f495515eb9
Create Date: 2026-11-30 06:30:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "5c1f0d2a7e31"
down_revision: str | None = "a7f495515eb9"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "document_artefact",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("period", sa.String(length=100), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("run_ids", postgresql.ARRAY(sa.Uuid()), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("docx", sa.LargeBinary(), nullable=False),
        sa.Column("xlsx", sa.LargeBinary(), nullable=False),
        sa.Column("docx_sha256", sa.String(length=64), nullable=False),
        sa.Column("xlsx_sha256", sa.String(length=64), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "kind IN ('annual_report', 'mid_term_review', 'final_review')",
            name=op.f("ck_document_artefact_kind_known"),
        ),
        sa.ForeignKeyConstraint(
            ["programme_id"],
            ["programme.id"],
            name=op.f("fk_document_artefact_programme_id_programme"),
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["rollup_run.id"], name=op.f("fk_document_artefact_run_id_rollup_run")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_document_artefact")),
        sa.UniqueConstraint(
            "programme_id",
            "kind",
            "period",
            "fingerprint",
            name=op.f("uq_document_artefact_programme_id_kind_period_fingerprint"),
        ),
    )
    op.execute(
        "CREATE TRIGGER document_artefact_frozen BEFORE UPDATE OR DELETE ON document_artefact "
        "FOR EACH ROW EXECUTE FUNCTION refuse_change_of_frozen_row()"
    )


def downgrade() -> None:
    op.drop_table("document_artefact")
