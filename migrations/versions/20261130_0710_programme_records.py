"""Programme records: honours, National Quality Award entries, training courses,
communication activities, model enterprises and inspections, reviewed like reports.

A record is the working copy (its draft changes); what was submitted is kept in
programme_record_version, frozen as report versions are, with the figures it counts in
record_figure (read by rollups beside a report version's indicator values).

Revision ID: a7f495515eb9
Revises: 5b7d3e91c2a4
Create Date: 2026-11-30 05:55:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "a7f495515eb9"
down_revision: str | None = "5b7d3e91c2a4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RECORD_KINDS = (
    "kind IN ('honour', 'quality_award', 'training_course', 'communication', "
    "'model_enterprise', 'inspection')"
)
SUBMISSION_STATUSES = "status IN ('draft', 'submitted', 'returned', 'resubmitted', 'accepted')"


def upgrade() -> None:
    op.create_table(
        "programme_record",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("draft", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("correction_reason", sa.Text(), nullable=True),
        sa.Column("latest_version_no", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("accepted_version_no", sa.Integer(), nullable=True),
        sa.Column("first_submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("revision", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("returned_reason", sa.Text(), nullable=True),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        # The client that submitted the version under review: four eyes refuses it the review.
        sa.Column("submitted_by", sa.String(length=100), nullable=True),
        sa.CheckConstraint(SUBMISSION_STATUSES, name=op.f("ck_programme_record_status_known")),
        sa.CheckConstraint(RECORD_KINDS, name=op.f("ck_programme_record_kind_known")),
        sa.ForeignKeyConstraint(
            ["programme_id"],
            ["programme.id"],
            name=op.f("fk_programme_record_programme_id_programme"),
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["org_unit.id"], name=op.f("fk_programme_record_unit_id_org_unit")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_programme_record")),
    )
    # Lists filter by programme, year and kind; a reporter's by its unit.
    op.create_index(
        "ix_programme_record_programme_id_year_kind",
        "programme_record",
        ["programme_id", "year", "kind"],
        unique=False,
    )
    op.create_index(
        op.f("ix_programme_record_unit_id"), "programme_record", ["unit_id"], unique=False
    )
    op.create_table(
        "programme_record_version",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("version_no", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("content", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_by", sa.String(length=100), nullable=False),
        sa.CheckConstraint(
            "kind IN ('submission', 'resubmission', 'correction')",
            name=op.f("ck_programme_record_version_kind_known"),
        ),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["programme_record.id"],
            name=op.f("fk_programme_record_version_record_id_programme_record"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_programme_record_version")),
        sa.UniqueConstraint(
            "record_id", "version_no", name=op.f("uq_programme_record_version_record_id_version_no")
        ),
    )
    # A version's figures, one row each, so rollups aggregate them in SQL.
    op.create_table(
        "record_figure",
        sa.Column("version_id", sa.Uuid(), nullable=False),
        sa.Column("indicator_id", sa.Uuid(), nullable=False),
        sa.Column("disaggregation", sa.String(length=200), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("value", sa.Numeric(precision=20, scale=4), nullable=False),
        sa.ForeignKeyConstraint(
            ["indicator_id"], ["indicator.id"], name=op.f("fk_record_figure_indicator_id_indicator")
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["org_unit.id"], name=op.f("fk_record_figure_unit_id_org_unit")
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["programme_record_version.id"],
            name=op.f("fk_record_figure_version_id_programme_record_version"),
        ),
        sa.PrimaryKeyConstraint(
            "version_id", "indicator_id", "disaggregation", name=op.f("pk_record_figure")
        ),
    )
    op.create_index(
        "ix_record_figure_indicator_id_year",
        "record_figure",
        ["indicator_id", "year"],
        unique=False,
    )
    # What was submitted never changes: a correction is a new version (the baseline's
    # refuse_change_of_frozen_row guards report versions the same way).
    for table in ("programme_record_version", "record_figure"):
        op.execute(
            f"CREATE TRIGGER {table}_frozen BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION refuse_change_of_frozen_row()"
        )


def downgrade() -> None:
    op.drop_table("record_figure")
    op.drop_table("programme_record_version")
    op.drop_table("programme_record")
