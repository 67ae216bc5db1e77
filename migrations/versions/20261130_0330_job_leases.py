"""Jobs: leases, hand-over sequence and cooperative cancellation.

A running attempt holds a lease it renews while it runs; the sweep hands a job over again
as soon as its lease lapses. Each hand-over to the queue carries its own sequence number,
so nothing the queue remembers of an earlier hand-over can refuse a later one.

Revision ID: 9c1f7e2a4b60
Revises: 9c1f2e7a4b30
Create Date: 2026-11-30 03:30:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9c1f7e2a4b60"
down_revision: str | None = "9c1f2e7a4b30"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("job", sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "job", sa.Column("handovers", sa.Integer(), server_default=sa.text("0"), nullable=False)
    )
    op.add_column(
        "job",
        sa.Column(
            "cancel_requested", sa.Boolean(), server_default=sa.text("false"), nullable=False
        ),
    )


def downgrade() -> None:
    op.drop_column("job", "cancel_requested")
    op.drop_column("job", "handovers")
    op.drop_column("job", "lease_expires_at")
