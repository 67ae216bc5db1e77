"""Lists: find the reports changed since a moment (`GET /v1/reports?updated_since=`).

The other list filters ride on indexes the baseline has (units, programme-years, the keys
of dossiers, allocations, account codes and clients), and every list pages on its primary
key; only a report's last change had none, and a client syncing a unit polls by it.

Revision ID: 69e249815979
Revises: 104761abeb59
Create Date: 2026-11-30 06:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "69e249815979"
down_revision: str | None = "104761abeb59"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_report_updated_at", "report", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_report_updated_at", table_name="report")
