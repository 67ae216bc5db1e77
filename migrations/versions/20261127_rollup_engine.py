"""Rollup engine: runs with cells and sources, publication, national indicators, job progress.

Rollup runs are derived data: the old table is replaced and the nightly rebuild (or
`POST /v1/rollups`) computes them again.

Revision ID: c35c65ecbcf6
Revises: 3ba607ee63cd
Create Date: 2026-11-27 14:30:25.114677+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "c35c65ecbcf6"
down_revision: str | None = "3ba607ee63cd"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


RUN_COLUMNS = (
    sa.Column("id", sa.Uuid(), nullable=False),
    sa.Column("programme_id", sa.Uuid(), nullable=False),
    sa.Column("year", sa.Integer(), nullable=False),
)
FROZEN = ("rollup_run", "rollup_cell", "rollup_source")


def upgrade() -> None:
    op.drop_index("ix_rollup_run_programme_id_year", table_name="rollup_run")
    op.drop_table("rollup_run")
    op.create_table(
        "rollup_run",
        *RUN_COLUMNS,
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("level", sa.String(length=20), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column(
            "computed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("job_id", sa.Uuid(), nullable=True),
        sa.Column("sources", sa.Integer(), nullable=False),
        sa.Column("sections", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.CheckConstraint(
            "kind IN ('full', 'incremental')", name=op.f("ck_rollup_run_kind_known")
        ),
        sa.CheckConstraint(
            "level IN ('provincial', 'national')", name=op.f("ck_rollup_run_level_known")
        ),
        sa.ForeignKeyConstraint(
            ["programme_id"], ["programme.id"], name=op.f("fk_rollup_run_programme_id_programme")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollup_run")),
        sa.UniqueConstraint(
            "programme_id", "year", "seq", name=op.f("uq_rollup_run_programme_id_year_seq")
        ),
    )
    op.create_table(
        "rollup_cell",
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("indicator_id", sa.Uuid(), nullable=False),
        sa.Column("disaggregation", sa.String(length=200), nullable=False),
        sa.Column("breakdown", sa.String(length=200), nullable=False),
        sa.Column("value", sa.Numeric(precision=24, scale=4), nullable=False),
        sa.Column("value_sum", sa.Numeric(precision=24, scale=4), nullable=False),
        sa.Column("value_count", sa.Integer(), nullable=False),
        sa.Column("value_min", sa.Numeric(precision=20, scale=4), nullable=False),
        sa.Column("value_max", sa.Numeric(precision=20, scale=4), nullable=False),
        sa.ForeignKeyConstraint(
            ["indicator_id"], ["indicator.id"], name=op.f("fk_rollup_cell_indicator_id_indicator")
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["rollup_run.id"], name=op.f("fk_rollup_cell_run_id_rollup_run")
        ),
        sa.PrimaryKeyConstraint(
            "run_id", "indicator_id", "disaggregation", "breakdown", name=op.f("pk_rollup_cell")
        ),
    )
    op.create_table(
        "rollup_publication",
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["programme_id"],
            ["programme.id"],
            name=op.f("fk_rollup_publication_programme_id_programme"),
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["rollup_run.id"], name=op.f("fk_rollup_publication_run_id_rollup_run")
        ),
        sa.PrimaryKeyConstraint("programme_id", "year", name=op.f("pk_rollup_publication")),
    )
    op.create_table(
        "rollup_source",
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("source_id", sa.Uuid(), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=True),
        sa.Column("breakdown", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["rollup_run.id"], name=op.f("fk_rollup_source_run_id_rollup_run")
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["org_unit.id"], name=op.f("fk_rollup_source_unit_id_org_unit")
        ),
        sa.PrimaryKeyConstraint("run_id", "source_id", name=op.f("pk_rollup_source")),
    )
    op.create_index("ix_rollup_source_source_id", "rollup_source", ["source_id"], unique=False)
    for table in FROZEN:
        op.execute(
            f"CREATE TRIGGER {table}_frozen BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION refuse_change_of_frozen_row()"
        )
    op.add_column("indicator", sa.Column("national_indicator_id", sa.Uuid(), nullable=True))
    op.create_foreign_key(
        op.f("fk_indicator_national_indicator_id_indicator"),
        "indicator",
        "indicator",
        ["national_indicator_id"],
        ["id"],
    )
    op.create_table(
        "job_progress",
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("progress", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_job_progress")),
    )


def downgrade() -> None:
    op.drop_table("job_progress")
    op.drop_constraint(
        op.f("fk_indicator_national_indicator_id_indicator"), "indicator", type_="foreignkey"
    )
    op.drop_column("indicator", "national_indicator_id")
    op.drop_index("ix_rollup_source_source_id", table_name="rollup_source")
    op.drop_table("rollup_source")
    op.drop_table("rollup_publication")
    op.drop_table("rollup_cell")
    op.drop_table("rollup_run")
    op.create_table(
        "rollup_run",
        *RUN_COLUMNS,
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
    op.execute(
        "CREATE TRIGGER rollup_run_frozen BEFORE UPDATE OR DELETE ON rollup_run "
        "FOR EACH ROW EXECUTE FUNCTION refuse_change_of_frozen_row()"
    )
