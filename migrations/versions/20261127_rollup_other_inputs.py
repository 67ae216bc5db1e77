"""The digests of a run's other inputs, so a refresh can keep sections that did not change.

Runs written before have none and are never reused that way.

Revision ID: d4998e88b18a
Revises: 5987d4c296c2
Create Date: 2026-11-27 16:06:55.068404+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d4998e88b18a"
down_revision: str | None = "5987d4c296c2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "rollup_run", sa.Column("other_inputs", sa.Text(), server_default="", nullable=False)
    )
    op.alter_column("rollup_run", "other_inputs", server_default=None)


def downgrade() -> None:
    op.drop_column("rollup_run", "other_inputs")
