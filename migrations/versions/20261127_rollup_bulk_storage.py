"""Rollup storage for bulk writes: sources on the run, sections as JSON text, cells
without per-row key checks.

A rebuild then writes one row per run instead of one per source, PostgreSQL builds the
sections as JSON text without converting them to JSONB, and the engine's cells (written
from the run and the indicators in the same statement) skip foreign-key triggers.

Revision ID: 6becd9865ae3
Revises: c35c65ecbcf6
Create Date: 2026-11-27 15:13:11.949584+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "6becd9865ae3"
down_revision: str | None = "c35c65ecbcf6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


SOURCE_COLUMNS = ("source_ids", "source_units", "source_breakdowns")


def upgrade() -> None:
    op.add_column(
        "rollup_run",
        sa.Column("source_ids", postgresql.ARRAY(sa.Uuid()), server_default="{}", nullable=False),
    )
    op.add_column(
        "rollup_run",
        sa.Column("source_units", postgresql.ARRAY(sa.Uuid()), server_default="{}", nullable=False),
    )
    op.add_column(
        "rollup_run",
        sa.Column(
            "source_breakdowns", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False
        ),
    )
    # Runs are frozen for the service; the migration moves their sources over once.
    op.execute("ALTER TABLE rollup_run DISABLE TRIGGER rollup_run_frozen")
    op.execute(
        "UPDATE rollup_run r SET source_ids = s.ids, source_units = s.units, "
        "source_breakdowns = s.breakdowns FROM ("
        "  SELECT run_id, array_agg(source_id ORDER BY source_id) AS ids,"
        "         array_agg(unit_id ORDER BY source_id) AS units,"
        "         array_agg(breakdown::text ORDER BY source_id) AS breakdowns"
        "  FROM rollup_source GROUP BY run_id) s WHERE s.run_id = r.id"
    )
    op.execute("ALTER TABLE rollup_run ENABLE TRIGGER rollup_run_frozen")
    for column in SOURCE_COLUMNS:
        op.alter_column("rollup_run", column, server_default=None)
    op.alter_column(
        "rollup_run",
        "sections",
        existing_type=postgresql.JSONB(astext_type=sa.Text()),
        type_=sa.JSON(),
        existing_nullable=False,
        postgresql_using="sections::json",
    )
    op.drop_index("ix_rollup_source_source_id", table_name="rollup_source")
    op.drop_table("rollup_source")
    op.drop_constraint("fk_rollup_cell_run_id_rollup_run", "rollup_cell", type_="foreignkey")
    op.drop_constraint("fk_rollup_cell_indicator_id_indicator", "rollup_cell", type_="foreignkey")


def downgrade() -> None:
    op.create_foreign_key(
        "fk_rollup_cell_run_id_rollup_run", "rollup_cell", "rollup_run", ["run_id"], ["id"]
    )
    op.create_foreign_key(
        "fk_rollup_cell_indicator_id_indicator",
        "rollup_cell",
        "indicator",
        ["indicator_id"],
        ["id"],
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
    op.execute(
        "INSERT INTO rollup_source (run_id, source_id, unit_id, breakdown) "
        "SELECT r.id, s.source_id, s.unit_id, s.breakdown FROM rollup_run r, "
        "unnest(r.source_ids, r.source_units, r.source_breakdowns) AS s(source_id, unit_id, breakdown)"
    )
    op.execute(
        "CREATE TRIGGER rollup_source_frozen BEFORE UPDATE OR DELETE ON rollup_source "
        "FOR EACH ROW EXECUTE FUNCTION refuse_change_of_frozen_row()"
    )
    op.alter_column(
        "rollup_run",
        "sections",
        existing_type=sa.JSON(),
        type_=postgresql.JSONB(astext_type=sa.Text()),
        existing_nullable=False,
        postgresql_using="sections::jsonb",
    )
    for column in SOURCE_COLUMNS:
        op.drop_column("rollup_run", column)
