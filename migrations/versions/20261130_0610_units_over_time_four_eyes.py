"""Four eyes: who submitted what is under review, and a programme's setting for the rule.

Reports, plans and estimates record the client that submitted their current version, so
the reviewer can be told apart from it; rows submitted before this revision take it from
their history (report and plan versions, the audit trail of estimates). A programme wants
four eyes unless an administrator waived it.

Revision ID: 5d1c0e7a9b42
Revises: 69e249815979
Create Date: 2026-11-30 06:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5d1c0e7a9b42"
down_revision: str | None = "69e249815979"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_REVIEWED = ("report", "plan", "budget_estimate")


def upgrade() -> None:
    for table in _REVIEWED:
        op.add_column(table, sa.Column("submitted_by", sa.String(length=100), nullable=True))
    op.add_column(
        "programme",
        sa.Column("four_eyes", sa.Boolean(), server_default=sa.text("true"), nullable=False),
    )
    # What is under review now was sent by whoever made its latest version.
    op.execute(
        """
        UPDATE report r SET submitted_by = v.submitted_by
        FROM report_version v
        WHERE v.report_id = r.id AND v.version_no = r.latest_version_no
        """
    )
    op.execute(
        """
        UPDATE plan p SET submitted_by = v.created_by
        FROM (
            SELECT DISTINCT ON (plan_id) plan_id, created_by
            FROM plan_version WHERE kind <> 'change'
            ORDER BY plan_id, version_no DESC
        ) v
        WHERE v.plan_id = p.id AND p.submitted_at IS NOT NULL
        """
    )
    op.execute(
        """
        UPDATE budget_estimate e SET submitted_by = a.client_id
        FROM (
            SELECT DISTINCT ON (object_id) object_id, client_id
            FROM audit_event WHERE action = 'estimate.submitted'
            ORDER BY object_id, occurred_at DESC
        ) a
        WHERE a.object_id = e.id::text AND e.submitted_at IS NOT NULL
        """
    )


def downgrade() -> None:
    op.drop_column("programme", "four_eyes")
    for table in reversed(_REVIEWED):
        op.drop_column(table, "submitted_by")
