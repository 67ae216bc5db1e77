"""History and baselines: backfilled report versions with their official letter, and the
baseline figures targets compare with.

A version entered from the past records the letter that carried it (number, date, issuing
unit) and the day DOST received it; the report keeps the day its first version was
received, which timeliness is judged on. Baseline figures (a period such as 2011–2020, or a
base year such as 2020, per unit or for the province) are not reports: they have a table of
their own, each figure with its source document.

Adding columns to report_version does not touch its rows' frozen trigger: the defaults are
stored in the catalogue (PostgreSQL 11+), no row is updated.

Revision ID: 5b7d3e91c2a4
Revises: dd29bdc4ae50
Create Date: 2026-11-30 07:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5b7d3e91c2a4"
down_revision: str | None = "dd29bdc4ae50"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("report", sa.Column("received_on", sa.Date(), nullable=True))
    op.add_column(
        "report_version",
        sa.Column("backfilled", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )
    op.add_column(
        "report_version", sa.Column("letter_number", sa.String(length=100), nullable=True)
    )
    op.add_column("report_version", sa.Column("letter_date", sa.Date(), nullable=True))
    op.add_column("report_version", sa.Column("letter_issuer", sa.Text(), nullable=True))
    op.add_column("report_version", sa.Column("received_on", sa.Date(), nullable=True))
    op.create_check_constraint(
        op.f("ck_report_version_backfill_has_letter"),
        "report_version",
        "NOT backfilled OR (letter_number IS NOT NULL AND letter_date IS NOT NULL "
        "AND letter_issuer IS NOT NULL AND received_on IS NOT NULL "
        "AND letter_date <= received_on)",
    )
    op.create_table(
        "baseline_figure",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("indicator_id", sa.Uuid(), nullable=False),
        sa.Column("disaggregation", sa.String(length=200), nullable=False),
        sa.Column("unit_id", sa.Uuid(), nullable=True),
        sa.Column("baseline_period_id", sa.Uuid(), nullable=True),
        sa.Column("year", sa.Integer(), nullable=True),
        sa.Column("value", sa.Numeric(precision=20, scale=4), nullable=False),
        sa.Column("source_document", sa.Text(), nullable=False),
        sa.Column("source_date", sa.Date(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("recorded_by", sa.String(length=100), nullable=False),
        sa.Column(
            "recorded_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "(baseline_period_id IS NULL) <> (year IS NULL)",
            name=op.f("ck_baseline_figure_period_or_year"),
        ),
        sa.CheckConstraint("value >= 0", name=op.f("ck_baseline_figure_value_not_negative")),
        sa.ForeignKeyConstraint(
            ["baseline_period_id"],
            ["baseline_period.id"],
            name=op.f("fk_baseline_figure_baseline_period_id_baseline_period"),
        ),
        sa.ForeignKeyConstraint(
            ["indicator_id"],
            ["indicator.id"],
            name=op.f("fk_baseline_figure_indicator_id_indicator"),
        ),
        sa.ForeignKeyConstraint(
            ["programme_id"],
            ["programme.id"],
            name=op.f("fk_baseline_figure_programme_id_programme"),
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["org_unit.id"], name=op.f("fk_baseline_figure_unit_id_org_unit")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_baseline_figure")),
        # The provincial total (unit NULL) and a period's figure (year NULL) are one figure
        # each: NULLs must collide here like values.
        sa.UniqueConstraint(
            "programme_id",
            "indicator_id",
            "disaggregation",
            "unit_id",
            "baseline_period_id",
            "year",
            name="uq_baseline_figure_identity",
            postgresql_nulls_not_distinct=True,
        ),
    )
    op.create_index(
        "ix_baseline_figure_programme_id_indicator_id",
        "baseline_figure",
        ["programme_id", "indicator_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_baseline_figure_programme_id_indicator_id", table_name="baseline_figure")
    op.drop_table("baseline_figure")
    op.drop_constraint(
        op.f("ck_report_version_backfill_has_letter"), "report_version", type_="check"
    )
    for column in ("received_on", "letter_issuer", "letter_date", "letter_number", "backfilled"):
        op.drop_column("report_version", column)
    op.drop_column("report", "received_on")
