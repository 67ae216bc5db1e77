"""Indexes for reading budgets by programme and year, and a line's allocation.

Rollup sections, totals and dossiers read one programme's estimates of a budget year;
the follow-up and the sections join allocations to their lines.

Revision ID: 5987d4c296c2
Revises: 6becd9865ae3
Create Date: 2026-11-27 15:37:39.198349+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "5987d4c296c2"
down_revision: str | None = "6becd9865ae3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_budget_allocation_line_id", "budget_allocation", ["line_id"], unique=False)
    op.create_index(
        "ix_budget_estimate_programme_id_budget_year",
        "budget_estimate",
        ["programme_id", "budget_year"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_budget_estimate_programme_id_budget_year", table_name="budget_estimate")
    op.drop_index("ix_budget_allocation_line_id", table_name="budget_allocation")
