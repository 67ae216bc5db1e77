"""Plans: five-year and annual plans, their frozen versions, change requests and decisions.

Revision ID: 3ba607ee63cd
Revises: 6410544f8f05
Create Date: 2026-11-27 14:18:32.335156+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "3ba607ee63cd"
down_revision: str | None = "6410544f8f05"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "plan",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("start_year", sa.Integer(), nullable=False),
        sa.Column("end_year", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("revision", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("content", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("returned_reason", sa.Text(), nullable=True),
        sa.Column("accepted_version_no", sa.Integer(), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("kind IN ('five_year', 'annual')", name=op.f("ck_plan_kind_known")),
        sa.CheckConstraint(
            "status IN ('draft', 'submitted', 'returned', 'resubmitted', 'accepted')",
            name=op.f("ck_plan_status_known"),
        ),
        sa.CheckConstraint("end_year >= start_year", name=op.f("ck_plan_years_ordered")),
        sa.ForeignKeyConstraint(
            ["programme_id"], ["programme.id"], name=op.f("fk_plan_programme_id_programme")
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["org_unit.id"], name=op.f("fk_plan_unit_id_org_unit")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan")),
        sa.UniqueConstraint(
            "programme_id",
            "unit_id",
            "kind",
            "start_year",
            name=op.f("uq_plan_programme_id_unit_id_kind_start_year"),
        ),
    )
    op.create_index(op.f("ix_plan_unit_id"), "plan", ["unit_id"], unique=False)
    op.create_table(
        "plan_change_request",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("plan_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("proposed_content", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("base_version_no", sa.Integer(), nullable=False),
        sa.Column("proposed_by", sa.String(length=100), nullable=False),
        sa.Column("proposed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(length=100), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.Column("resulting_version_no", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "status IN ('proposed', 'approved', 'rejected', 'withdrawn')",
            name=op.f("ck_plan_change_request_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["plan.id"], name=op.f("fk_plan_change_request_plan_id_plan")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_change_request")),
    )
    op.create_index(
        op.f("ix_plan_change_request_plan_id"), "plan_change_request", ["plan_id"], unique=False
    )
    op.create_index(
        "uq_plan_change_request_open",
        "plan_change_request",
        ["plan_id"],
        unique=True,
        postgresql_where=sa.text("status = 'proposed'"),
    )
    op.create_table(
        "plan_version",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("plan_id", sa.Uuid(), nullable=False),
        sa.Column("version_no", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("content", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("change_request_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.CheckConstraint(
            "kind IN ('submission', 'resubmission', 'change')",
            name=op.f("ck_plan_version_kind_known"),
        ),
        sa.ForeignKeyConstraint(
            ["change_request_id"],
            ["plan_change_request.id"],
            name=op.f("fk_plan_version_change_request_id_plan_change_request"),
        ),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["plan.id"], name=op.f("fk_plan_version_plan_id_plan")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_version")),
        sa.UniqueConstraint(
            "plan_id", "version_no", name=op.f("uq_plan_version_plan_id_version_no")
        ),
    )
    # A plan's history is its versions: what was submitted, accepted or changed stays as it was.
    op.execute(
        "CREATE TRIGGER plan_version_frozen BEFORE UPDATE OR DELETE ON plan_version "
        "FOR EACH ROW EXECUTE FUNCTION refuse_change_of_frozen_row()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER plan_version_frozen ON plan_version")
    op.drop_table("plan_version")
    op.drop_index(
        "uq_plan_change_request_open",
        table_name="plan_change_request",
        postgresql_where=sa.text("status = 'proposed'"),
    )
    op.drop_index(op.f("ix_plan_change_request_plan_id"), table_name="plan_change_request")
    op.drop_table("plan_change_request")
    op.drop_index(op.f("ix_plan_unit_id"), table_name="plan")
    op.drop_table("plan")
