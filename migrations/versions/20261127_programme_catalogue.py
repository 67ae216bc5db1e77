"""Programme catalogue: organisation units over time, programmes, targets and tasks.

Revision ID: eec5dd9137d8
Revises: 7ba53cbdf49d
Create Date: 2026-11-27 07:41:32.171525+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "eec5dd9137d8"
down_revision: str | None = "7ba53cbdf49d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "baseline_period",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("name_vi", sa.String(length=200), nullable=False),
        sa.Column("name_en", sa.String(length=200), nullable=False),
        sa.Column("start_year", sa.Integer(), nullable=False),
        sa.Column("end_year", sa.Integer(), nullable=False),
        sa.CheckConstraint("end_year >= start_year", name=op.f("ck_baseline_period_years_ordered")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_baseline_period")),
        sa.UniqueConstraint("key", name=op.f("uq_baseline_period_key")),
    )
    op.create_table(
        "org_unit",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=50), nullable=False),
        sa.Column("code", sa.String(length=20), nullable=True),
        sa.Column("name_vi", sa.String(length=300), nullable=False),
        sa.Column("name_en", sa.String(length=300), nullable=False),
        sa.Column("abbreviation", sa.String(length=30), nullable=True),
        sa.Column("parent_id", sa.Uuid(), nullable=True),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "valid_to IS NULL OR valid_to > valid_from", name=op.f("ck_org_unit_period_ordered")
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["org_unit.id"], name=op.f("fk_org_unit_parent_id_org_unit")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_org_unit")),
        sa.UniqueConstraint("key", name=op.f("uq_org_unit_key")),
    )
    op.create_index("ix_org_unit_code", "org_unit", ["code"], unique=False)
    op.create_index("ix_org_unit_parent_id", "org_unit", ["parent_id"], unique=False)
    op.create_table(
        "org_succession",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("predecessor_id", sa.Uuid(), nullable=False),
        sa.Column("successor_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("effective", sa.Date(), nullable=False),
        sa.Column("note_en", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('merged_into', 'split_into', 'renamed_to', 'absorbed_by_area')",
            name=op.f("ck_org_succession_kind_known"),
        ),
        sa.CheckConstraint(
            "predecessor_id <> successor_id", name=op.f("ck_org_succession_not_self")
        ),
        sa.ForeignKeyConstraint(
            ["predecessor_id"],
            ["org_unit.id"],
            name=op.f("fk_org_succession_predecessor_id_org_unit"),
        ),
        sa.ForeignKeyConstraint(
            ["successor_id"], ["org_unit.id"], name=op.f("fk_org_succession_successor_id_org_unit")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_org_succession")),
        sa.UniqueConstraint("key", name=op.f("uq_org_succession_key")),
        sa.UniqueConstraint(
            "predecessor_id",
            "successor_id",
            "kind",
            name=op.f("uq_org_succession_predecessor_id_successor_id_kind"),
        ),
    )
    op.create_table(
        "programme",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("level", sa.String(length=20), nullable=False),
        sa.Column("parent_id", sa.Uuid(), nullable=True),
        sa.Column("owner_unit_id", sa.Uuid(), nullable=False),
        sa.Column("decision_no", sa.String(length=50), nullable=False),
        sa.Column("decision_date", sa.Date(), nullable=False),
        sa.Column("decided_by_vi", sa.String(length=300), nullable=False),
        sa.Column("decided_by_en", sa.String(length=300), nullable=False),
        sa.Column("name_vi", sa.Text(), nullable=False),
        sa.Column("name_en", sa.Text(), nullable=False),
        sa.Column("start_year", sa.Integer(), nullable=False),
        sa.Column("end_year", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "level IN ('national', 'provincial')", name=op.f("ck_programme_level_known")
        ),
        sa.CheckConstraint("end_year >= start_year", name=op.f("ck_programme_years_ordered")),
        sa.ForeignKeyConstraint(
            ["owner_unit_id"], ["org_unit.id"], name=op.f("fk_programme_owner_unit_id_org_unit")
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["programme.id"], name=op.f("fk_programme_parent_id_programme")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_programme")),
        sa.UniqueConstraint("key", name=op.f("uq_programme_key")),
    )
    op.create_table(
        "indicator",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("name_vi", sa.Text(), nullable=False),
        sa.Column("name_en", sa.Text(), nullable=False),
        sa.Column("unit", sa.String(length=30), nullable=False),
        sa.Column("aggregation_across_units", sa.String(length=20), nullable=False),
        sa.Column("aggregation_across_time", sa.String(length=20), nullable=False),
        sa.Column("disaggregations", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("derived_from", sa.String(length=50), nullable=True),
        sa.CheckConstraint(
            "aggregation_across_time IN ('sum', 'latest', 'maximum')",
            name=op.f("ck_indicator_time_aggregation_known"),
        ),
        sa.CheckConstraint(
            "aggregation_across_units IN ('sum', 'latest', 'maximum', 'minimum', 'average')",
            name=op.f("ck_indicator_unit_aggregation_known"),
        ),
        sa.ForeignKeyConstraint(
            ["programme_id"], ["programme.id"], name=op.f("fk_indicator_programme_id_programme")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_indicator")),
        sa.UniqueConstraint("key", name=op.f("uq_indicator_key")),
    )
    op.create_index(op.f("ix_indicator_programme_id"), "indicator", ["programme_id"], unique=False)
    op.create_table(
        "phase",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("name_vi", sa.String(length=200), nullable=False),
        sa.Column("name_en", sa.String(length=200), nullable=False),
        sa.Column("start_year", sa.Integer(), nullable=False),
        sa.Column("end_year", sa.Integer(), nullable=False),
        sa.CheckConstraint("end_year >= start_year", name=op.f("ck_phase_years_ordered")),
        sa.ForeignKeyConstraint(
            ["programme_id"], ["programme.id"], name=op.f("fk_phase_programme_id_programme")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_phase")),
        sa.UniqueConstraint("key", name=op.f("uq_phase_key")),
    )
    op.create_index(op.f("ix_phase_programme_id"), "phase", ["programme_id"], unique=False)
    op.create_table(
        "programme_role",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=150), nullable=False),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("role", sa.String(length=50), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("focal_agency_id", sa.Uuid(), nullable=True),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.CheckConstraint(
            "role IN ('lead', 'standing_body', 'recurrent_estimate_recipient', 'investment_estimate_recipient', 'reporting_unit', 'cooperating_unit', 'receives_provincial_report')",
            name=op.f("ck_programme_role_role_known"),
        ),
        sa.CheckConstraint(
            "valid_to IS NULL OR valid_to > valid_from",
            name=op.f("ck_programme_role_period_ordered"),
        ),
        sa.ForeignKeyConstraint(
            ["focal_agency_id"],
            ["org_unit.id"],
            name=op.f("fk_programme_role_focal_agency_id_org_unit"),
        ),
        sa.ForeignKeyConstraint(
            ["programme_id"],
            ["programme.id"],
            name=op.f("fk_programme_role_programme_id_programme"),
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["org_unit.id"], name=op.f("fk_programme_role_unit_id_org_unit")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_programme_role")),
        sa.UniqueConstraint("key", name=op.f("uq_programme_role_key")),
    )
    op.create_index(
        "ix_programme_role_programme_id_role",
        "programme_role",
        ["programme_id", "role"],
        unique=False,
    )
    op.create_index(op.f("ix_programme_role_unit_id"), "programme_role", ["unit_id"], unique=False)
    op.create_table(
        "task_group",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("name_vi", sa.Text(), nullable=False),
        sa.Column("name_en", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["programme_id"], ["programme.id"], name=op.f("fk_task_group_programme_id_programme")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_group")),
        sa.UniqueConstraint("key", name=op.f("uq_task_group_key")),
    )
    op.create_index(
        op.f("ix_task_group_programme_id"), "task_group", ["programme_id"], unique=False
    )
    op.create_table(
        "target",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("indicator_id", sa.Uuid(), nullable=False),
        sa.Column("phase_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("value", sa.Numeric(precision=20, scale=4), nullable=True),
        sa.Column("min_pct", sa.Numeric(precision=9, scale=4), nullable=True),
        sa.Column("max_pct", sa.Numeric(precision=9, scale=4), nullable=True),
        sa.Column("baseline_period_id", sa.Uuid(), nullable=True),
        sa.Column("disaggregation", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("approximate", sa.Boolean(), nullable=False),
        sa.Column("text_vi", sa.Text(), nullable=False),
        sa.Column("text_en", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('phase_total', 'minimum', 'yearly_growth_range', 'baseline_percentage', 'share_percentage')",
            name=op.f("ck_target_kind_known"),
        ),
        sa.CheckConstraint(
            "max_pct IS NULL OR min_pct IS NULL OR max_pct >= min_pct", name=op.f("ck_target_range")
        ),
        sa.ForeignKeyConstraint(
            ["baseline_period_id"],
            ["baseline_period.id"],
            name=op.f("fk_target_baseline_period_id_baseline_period"),
        ),
        sa.ForeignKeyConstraint(
            ["indicator_id"], ["indicator.id"], name=op.f("fk_target_indicator_id_indicator")
        ),
        sa.ForeignKeyConstraint(["phase_id"], ["phase.id"], name=op.f("fk_target_phase_id_phase")),
        sa.ForeignKeyConstraint(
            ["programme_id"], ["programme.id"], name=op.f("fk_target_programme_id_programme")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_target")),
        sa.UniqueConstraint("key", name=op.f("uq_target_key")),
    )
    op.create_index(op.f("ix_target_programme_id"), "target", ["programme_id"], unique=False)
    op.create_table(
        "task",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("group_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.String(length=20), nullable=False),
        sa.Column("text_vi", sa.Text(), nullable=False),
        sa.Column("text_en", sa.Text(), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"], ["task_group.id"], name=op.f("fk_task_group_id_task_group")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task")),
        sa.UniqueConstraint("key", name=op.f("uq_task_key")),
    )
    op.create_index(op.f("ix_task_group_id"), "task", ["group_id"], unique=False)
    op.create_table(
        "task_extension",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("task_id", sa.Uuid(), nullable=True),
        sa.Column("title_vi", sa.Text(), nullable=False),
        sa.Column("title_en", sa.Text(), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("decided_by_id", sa.Uuid(), nullable=False),
        sa.Column("decision_no", sa.String(length=50), nullable=False),
        sa.Column("decision_date", sa.Date(), nullable=False),
        sa.Column("extended_to_year", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["decided_by_id"],
            ["org_unit.id"],
            name=op.f("fk_task_extension_decided_by_id_org_unit"),
        ),
        sa.ForeignKeyConstraint(
            ["programme_id"],
            ["programme.id"],
            name=op.f("fk_task_extension_programme_id_programme"),
        ),
        sa.ForeignKeyConstraint(
            ["task_id"], ["task.id"], name=op.f("fk_task_extension_task_id_task")
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["org_unit.id"], name=op.f("fk_task_extension_unit_id_org_unit")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_extension")),
        sa.UniqueConstraint("key", name=op.f("uq_task_extension_key")),
    )
    op.create_index(
        op.f("ix_task_extension_programme_id"), "task_extension", ["programme_id"], unique=False
    )
    op.create_table(
        "task_unit",
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.CheckConstraint("role IN ('lead', 'cooperating')", name=op.f("ck_task_unit_role_known")),
        sa.ForeignKeyConstraint(
            ["task_id"], ["task.id"], name=op.f("fk_task_unit_task_id_task"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["org_unit.id"], name=op.f("fk_task_unit_unit_id_org_unit")
        ),
        sa.PrimaryKeyConstraint("task_id", "unit_id", "role", name=op.f("pk_task_unit")),
    )


def downgrade() -> None:
    op.drop_table("task_unit")
    op.drop_index(op.f("ix_task_extension_programme_id"), table_name="task_extension")
    op.drop_table("task_extension")
    op.drop_index(op.f("ix_task_group_id"), table_name="task")
    op.drop_table("task")
    op.drop_index(op.f("ix_target_programme_id"), table_name="target")
    op.drop_table("target")
    op.drop_index(op.f("ix_task_group_programme_id"), table_name="task_group")
    op.drop_table("task_group")
    op.drop_index(op.f("ix_programme_role_unit_id"), table_name="programme_role")
    op.drop_index("ix_programme_role_programme_id_role", table_name="programme_role")
    op.drop_table("programme_role")
    op.drop_index(op.f("ix_phase_programme_id"), table_name="phase")
    op.drop_table("phase")
    op.drop_index(op.f("ix_indicator_programme_id"), table_name="indicator")
    op.drop_table("indicator")
    op.drop_table("programme")
    op.drop_table("org_succession")
    op.drop_index("ix_org_unit_parent_id", table_name="org_unit")
    op.drop_index("ix_org_unit_code", table_name="org_unit")
    op.drop_table("org_unit")
    op.drop_table("baseline_period")
