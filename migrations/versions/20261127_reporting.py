"""Reporting: regimes, obligations, reports, frozen versions and their figures; rollup runs.

Revision ID: 4406536c806f
Revises: 7df168e87a63
Create Date: 2026-11-27 08:24:19.450910+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "4406536c806f"
down_revision: str | None = "7df168e87a63"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


FROZEN_TABLES = ("report_version", "indicator_value", "task_progress", "rollup_run")

REFUSE_CHANGE_FUNCTION = """
CREATE FUNCTION refuse_change_of_frozen_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is frozen once written: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "idempotency_key",
        sa.Column("client_id", sa.String(length=100), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("object_type", sa.String(length=50), nullable=False),
        sa.Column("object_id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("client_id", "key", name=op.f("pk_idempotency_key")),
    )
    op.create_table(
        "validation_rule",
        sa.Column("code", sa.String(length=50), nullable=False),
        sa.Column("severity", sa.String(length=10), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column(
            "params",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "severity IN ('error', 'warning')", name=op.f("ck_validation_rule_severity_known")
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_validation_rule")),
    )
    op.create_table(
        "reporting_regime",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("name_vi", sa.Text(), nullable=False),
        sa.Column("name_en", sa.Text(), nullable=False),
        sa.Column("due_month", sa.Integer(), nullable=False),
        sa.Column("due_day", sa.Integer(), nullable=False),
        sa.Column(
            "cutoff_days_before_due", sa.Integer(), server_default=sa.text("0"), nullable=False
        ),
        sa.Column("years", sa.ARRAY(sa.Integer()), nullable=True),
        sa.CheckConstraint(
            "kind IN ('annual', 'ad_hoc', 'mid_term_review', 'final_review')",
            name=op.f("ck_reporting_regime_kind_known"),
        ),
        sa.CheckConstraint(
            "due_month BETWEEN 1 AND 12 AND due_day BETWEEN 1 AND 31",
            name=op.f("ck_reporting_regime_due"),
        ),
        sa.ForeignKeyConstraint(
            ["programme_id"],
            ["programme.id"],
            name=op.f("fk_reporting_regime_programme_id_programme"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reporting_regime")),
        sa.UniqueConstraint("key", name=op.f("uq_reporting_regime_key")),
    )
    op.create_index(
        op.f("ix_reporting_regime_programme_id"), "reporting_regime", ["programme_id"], unique=False
    )
    op.create_table(
        "reporting_request",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("title_vi", sa.Text(), nullable=False),
        sa.Column("title_en", sa.Text(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("indicator_keys", sa.ARRAY(sa.String(length=100)), nullable=False),
        sa.Column("questions", sa.ARRAY(sa.Text()), nullable=False),
        sa.Column("requested_by", sa.String(length=100), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["programme_id"],
            ["programme.id"],
            name=op.f("fk_reporting_request_programme_id_programme"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reporting_request")),
    )
    op.create_index(
        op.f("ix_reporting_request_programme_id"),
        "reporting_request",
        ["programme_id"],
        unique=False,
    )
    op.create_table(
        "rollup_run",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column(
            "computed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("totals", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("sources", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.ForeignKeyConstraint(
            ["programme_id"], ["programme.id"], name=op.f("fk_rollup_run_programme_id_programme")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollup_run")),
    )
    op.create_index(
        "ix_rollup_run_programme_id_year", "rollup_run", ["programme_id", "year"], unique=False
    )
    op.create_table(
        "reporting_obligation",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("regime_id", sa.Uuid(), nullable=True),
        sa.Column("request_id", sa.Uuid(), nullable=True),
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("cutoff_date", sa.Date(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "(regime_id IS NULL) <> (request_id IS NULL)",
            name=op.f("ck_reporting_obligation_regime_or_request"),
        ),
        sa.ForeignKeyConstraint(
            ["programme_id"],
            ["programme.id"],
            name=op.f("fk_reporting_obligation_programme_id_programme"),
        ),
        sa.ForeignKeyConstraint(
            ["regime_id"],
            ["reporting_regime.id"],
            name=op.f("fk_reporting_obligation_regime_id_reporting_regime"),
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["reporting_request.id"],
            name=op.f("fk_reporting_obligation_request_id_reporting_request"),
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["org_unit.id"], name=op.f("fk_reporting_obligation_unit_id_org_unit")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reporting_obligation")),
        sa.UniqueConstraint(
            "regime_id",
            "unit_id",
            "year",
            name=op.f("uq_reporting_obligation_regime_id_unit_id_year"),
        ),
        sa.UniqueConstraint(
            "request_id", "unit_id", name=op.f("uq_reporting_obligation_request_id_unit_id")
        ),
    )
    op.create_index(
        "ix_reporting_obligation_programme_id_year",
        "reporting_obligation",
        ["programme_id", "year"],
        unique=False,
    )
    op.create_index(
        op.f("ix_reporting_obligation_unit_id"), "reporting_obligation", ["unit_id"], unique=False
    )
    op.create_table(
        "report",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("obligation_id", sa.Uuid(), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("revision", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("draft", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("correction_reason", sa.Text(), nullable=True),
        sa.Column("returned_reason", sa.Text(), nullable=True),
        sa.Column("latest_version_no", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("accepted_version_no", sa.Integer(), nullable=True),
        sa.Column("first_submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
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
        sa.CheckConstraint(
            "status IN ('draft', 'submitted', 'returned', 'resubmitted', 'accepted')",
            name=op.f("ck_report_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["obligation_id"],
            ["reporting_obligation.id"],
            name=op.f("fk_report_obligation_id_reporting_obligation"),
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["org_unit.id"], name=op.f("fk_report_unit_id_org_unit")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report")),
        sa.UniqueConstraint("obligation_id", name=op.f("uq_report_obligation_id")),
    )
    op.create_index(op.f("ix_report_unit_id"), "report", ["unit_id"], unique=False)
    op.create_table(
        "report_version",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("report_id", sa.Uuid(), nullable=False),
        sa.Column("version_no", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("content", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("warnings", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_by", sa.String(length=100), nullable=False),
        sa.CheckConstraint(
            "kind IN ('submission', 'resubmission', 'correction')",
            name=op.f("ck_report_version_kind_known"),
        ),
        sa.ForeignKeyConstraint(
            ["report_id"], ["report.id"], name=op.f("fk_report_version_report_id_report")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_version")),
        sa.UniqueConstraint(
            "report_id", "version_no", name=op.f("uq_report_version_report_id_version_no")
        ),
    )
    op.create_table(
        "indicator_value",
        sa.Column("version_id", sa.Uuid(), nullable=False),
        sa.Column("indicator_id", sa.Uuid(), nullable=False),
        sa.Column("disaggregation", sa.String(length=200), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("value", sa.Numeric(precision=20, scale=4), nullable=False),
        sa.Column("derived", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["indicator_id"],
            ["indicator.id"],
            name=op.f("fk_indicator_value_indicator_id_indicator"),
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["org_unit.id"], name=op.f("fk_indicator_value_unit_id_org_unit")
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["report_version.id"],
            name=op.f("fk_indicator_value_version_id_report_version"),
        ),
        sa.PrimaryKeyConstraint(
            "version_id", "indicator_id", "disaggregation", name=op.f("pk_indicator_value")
        ),
    )
    op.create_index(
        "ix_indicator_value_indicator_id_year",
        "indicator_value",
        ["indicator_id", "year"],
        unique=False,
    )
    op.create_table(
        "task_progress",
        sa.Column("version_id", sa.Uuid(), nullable=False),
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("narrative", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "status IN ('not_started', 'in_progress', 'completed', 'suspended')",
            name=op.f("ck_task_progress_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["task_id"], ["task.id"], name=op.f("fk_task_progress_task_id_task")
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["report_version.id"],
            name=op.f("fk_task_progress_version_id_report_version"),
        ),
        sa.PrimaryKeyConstraint("version_id", "task_id", name=op.f("pk_task_progress")),
    )
    # Submitted versions, their figures and published rollups never change: corrections are
    # new versions, new runs. PostgreSQL enforces it for every role.
    op.execute(REFUSE_CHANGE_FUNCTION)
    for table in FROZEN_TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_frozen BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION refuse_change_of_frozen_row()"
        )


def downgrade() -> None:
    op.drop_table("task_progress")
    op.drop_index("ix_indicator_value_indicator_id_year", table_name="indicator_value")
    op.drop_table("indicator_value")
    op.drop_table("report_version")
    op.drop_index(op.f("ix_report_unit_id"), table_name="report")
    op.drop_table("report")
    op.drop_index(op.f("ix_reporting_obligation_unit_id"), table_name="reporting_obligation")
    op.drop_index("ix_reporting_obligation_programme_id_year", table_name="reporting_obligation")
    op.drop_table("reporting_obligation")
    op.drop_index("ix_rollup_run_programme_id_year", table_name="rollup_run")
    op.drop_table("rollup_run")
    op.drop_index(op.f("ix_reporting_request_programme_id"), table_name="reporting_request")
    op.drop_table("reporting_request")
    op.drop_index(op.f("ix_reporting_regime_programme_id"), table_name="reporting_regime")
    op.drop_table("reporting_regime")
    op.drop_table("validation_rule")
    op.drop_table("idempotency_key")
    op.execute("DROP FUNCTION refuse_change_of_frozen_row()")
