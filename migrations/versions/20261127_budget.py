"""Budget: chart-of-accounts codes, estimates and lines, dossiers, allocations, spending.

Revision ID: 6410544f8f05
Revises: 4406536c806f
Create Date: 2026-11-27 08:59:47.087516+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "6410544f8f05"
down_revision: str | None = "4406536c806f"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


FROZEN_DOSSIER_FUNCTION = """
CREATE FUNCTION refuse_change_of_dossier_content() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR NEW.document IS DISTINCT FROM OLD.document
       OR NEW.total IS DISTINCT FROM OLD.total OR NEW.version_no IS DISTINCT FROM OLD.version_no
       OR NEW.destination_unit_id IS DISTINCT FROM OLD.destination_unit_id
       OR NEW.budget_year IS DISTINCT FROM OLD.budget_year THEN
        RAISE EXCEPTION 'budget_dossier is frozen once built: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "account_code",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("code", sa.String(length=20), nullable=False),
        sa.Column("name_vi", sa.Text(), nullable=False),
        sa.Column("valid_from_year", sa.Integer(), nullable=False),
        sa.Column("valid_to_year", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.CheckConstraint(
            "kind IN ('chapter', 'loai_khoan', 'muc_tieu_muc')",
            name=op.f("ck_account_code_kind_known"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_code")),
        sa.UniqueConstraint(
            "kind",
            "code",
            "valid_from_year",
            name=op.f("uq_account_code_kind_code_valid_from_year"),
        ),
    )
    op.create_table(
        "budget_dossier",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("budget_year", sa.Integer(), nullable=False),
        sa.Column("destination_unit_id", sa.Uuid(), nullable=False),
        sa.Column("version_no", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("document", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "built_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.String(length=100), nullable=True),
        sa.CheckConstraint(
            "status IN ('draft', 'sent', 'acknowledged')",
            name=op.f("ck_budget_dossier_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["destination_unit_id"],
            ["org_unit.id"],
            name=op.f("fk_budget_dossier_destination_unit_id_org_unit"),
        ),
        sa.ForeignKeyConstraint(
            ["programme_id"],
            ["programme.id"],
            name=op.f("fk_budget_dossier_programme_id_programme"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_budget_dossier")),
        sa.UniqueConstraint(
            "programme_id",
            "budget_year",
            "destination_unit_id",
            "version_no",
            name=op.f("uq_budget_dossier_programme_id_budget_year_destination_unit_id_version_no"),
        ),
    )
    op.create_index(
        op.f("ix_budget_dossier_destination_unit_id"),
        "budget_dossier",
        ["destination_unit_id"],
        unique=False,
    )
    op.create_table(
        "budget_estimate",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("budget_year", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("revision", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("returned_reason", sa.Text(), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('draft', 'submitted', 'returned', 'resubmitted', 'accepted')",
            name=op.f("ck_budget_estimate_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["programme_id"],
            ["programme.id"],
            name=op.f("fk_budget_estimate_programme_id_programme"),
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["org_unit.id"], name=op.f("fk_budget_estimate_unit_id_org_unit")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_budget_estimate")),
        sa.UniqueConstraint(
            "programme_id",
            "unit_id",
            "budget_year",
            name=op.f("uq_budget_estimate_programme_id_unit_id_budget_year"),
        ),
    )
    op.create_index(
        op.f("ix_budget_estimate_unit_id"), "budget_estimate", ["unit_id"], unique=False
    )
    op.create_table(
        "estimate_line",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("estimate_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Uuid(), nullable=True),
        sa.Column("activity", sa.Text(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("funding_source", sa.String(length=30), nullable=False),
        sa.Column("chapter", sa.String(length=20), nullable=True),
        sa.Column("loai_khoan", sa.String(length=20), nullable=True),
        sa.Column("muc_tieu_muc", sa.String(length=20), nullable=True),
        sa.Column("destination_unit_id", sa.Uuid(), nullable=True),
        sa.CheckConstraint(
            "funding_source IN ('recurrent_science', 'recurrent_sector', 'development_investment', 'other_enterprise', 'other_sponsorship', 'other')",
            name=op.f("ck_estimate_line_funding_source_known"),
        ),
        sa.CheckConstraint(
            "amount >= 0 AND amount <= 1000000000000000", name=op.f("ck_estimate_line_amount_range")
        ),
        sa.ForeignKeyConstraint(
            ["destination_unit_id"],
            ["org_unit.id"],
            name=op.f("fk_estimate_line_destination_unit_id_org_unit"),
        ),
        sa.ForeignKeyConstraint(
            ["estimate_id"],
            ["budget_estimate.id"],
            name=op.f("fk_estimate_line_estimate_id_budget_estimate"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["task_id"], ["task.id"], name=op.f("fk_estimate_line_task_id_task")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_estimate_line")),
    )
    op.create_index(
        "ix_estimate_line_destination_unit_id",
        "estimate_line",
        ["destination_unit_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_estimate_line_estimate_id"), "estimate_line", ["estimate_id"], unique=False
    )
    op.create_table(
        "budget_allocation",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("dossier_id", sa.Uuid(), nullable=False),
        sa.Column("line_id", sa.Uuid(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("recorded_by", sa.String(length=100), nullable=False),
        sa.Column(
            "recorded_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "amount >= 0 AND amount <= 1000000000000000",
            name=op.f("ck_budget_allocation_amount_range"),
        ),
        sa.ForeignKeyConstraint(
            ["dossier_id"],
            ["budget_dossier.id"],
            name=op.f("fk_budget_allocation_dossier_id_budget_dossier"),
        ),
        sa.ForeignKeyConstraint(
            ["line_id"],
            ["estimate_line.id"],
            name=op.f("fk_budget_allocation_line_id_estimate_line"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_budget_allocation")),
        sa.UniqueConstraint(
            "dossier_id", "line_id", name=op.f("uq_budget_allocation_dossier_id_line_id")
        ),
    )
    op.create_table(
        "budget_spending",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("allocation_id", sa.Uuid(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("spent_on", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("recorded_by", sa.String(length=100), nullable=False),
        sa.CheckConstraint(
            "amount > 0 AND amount <= 1000000000000000",
            name=op.f("ck_budget_spending_amount_range"),
        ),
        sa.ForeignKeyConstraint(
            ["allocation_id"],
            ["budget_allocation.id"],
            name=op.f("fk_budget_spending_allocation_id_budget_allocation"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_budget_spending")),
    )
    op.create_index(
        op.f("ix_budget_spending_allocation_id"), "budget_spending", ["allocation_id"], unique=False
    )
    # A dossier's content is frozen once built; only its status, as it travels, may change.
    op.execute(FROZEN_DOSSIER_FUNCTION)
    op.execute(
        "CREATE TRIGGER budget_dossier_frozen BEFORE UPDATE OR DELETE ON budget_dossier "
        "FOR EACH ROW EXECUTE FUNCTION refuse_change_of_dossier_content()"
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_budget_spending_allocation_id"), table_name="budget_spending")
    op.drop_table("budget_spending")
    op.drop_table("budget_allocation")
    op.drop_index(op.f("ix_estimate_line_estimate_id"), table_name="estimate_line")
    op.drop_index("ix_estimate_line_destination_unit_id", table_name="estimate_line")
    op.drop_table("estimate_line")
    op.drop_index(op.f("ix_budget_estimate_unit_id"), table_name="budget_estimate")
    op.drop_table("budget_estimate")
    op.drop_index(op.f("ix_budget_dossier_destination_unit_id"), table_name="budget_dossier")
    op.drop_table("budget_dossier")
    op.drop_table("account_code")
    op.execute("DROP FUNCTION refuse_change_of_dossier_content()")
