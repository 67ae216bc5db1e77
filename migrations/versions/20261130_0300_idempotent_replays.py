"""Idempotency keys keep the first answer to replay, and a claim state.

A key is claimed (``in_progress``) before the request runs, so concurrent retries wait
for the first and replay its answer instead of racing it. Keys recorded before held an
object reference only; they are dropped (a retry with one of them creates afresh).

Revision ID: 9c1f2e7a4b30
Revises: d4998e88b18a
Create Date: 2026-11-30 03:30:00.000000+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "9c1f2e7a4b30"
down_revision: str | None = "d4998e88b18a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("DELETE FROM idempotency_key")
    op.drop_column("idempotency_key", "object_type")
    op.drop_column("idempotency_key", "object_id")
    op.add_column("idempotency_key", sa.Column("state", sa.String(length=20), nullable=False))
    op.add_column("idempotency_key", sa.Column("status_code", sa.Integer(), nullable=True))
    op.add_column(
        "idempotency_key",
        sa.Column("headers", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )
    op.add_column("idempotency_key", sa.Column("body", sa.LargeBinary(), nullable=True))
    op.add_column(
        "idempotency_key", sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    op.execute("DELETE FROM idempotency_key")
    op.drop_column("idempotency_key", "completed_at")
    op.drop_column("idempotency_key", "body")
    op.drop_column("idempotency_key", "headers")
    op.drop_column("idempotency_key", "status_code")
    op.drop_column("idempotency_key", "state")
    op.add_column("idempotency_key", sa.Column("object_id", sa.Uuid(), nullable=False))
    op.add_column("idempotency_key", sa.Column("object_type", sa.String(length=50), nullable=False))
