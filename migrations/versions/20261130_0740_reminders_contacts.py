"""Deadline reminders: contacts on units, reminder days on regimes, one row per reminder sent.

A unit's contacts (name, e-mail, role) are the people reminded; a regime says how many days
before its due date reminders go (14, 3 and 1 by default); `reminder_sent` holds one row
per obligation × reminder kind × contact e-mail, written with the job that sends it, so a
reminder is queued once whatever the number of workers or runs. The daily schedule sends
them at 08:00 in Vietnam.

Revision ID: 7e1a9c3b5d20
Revises: a7e18b0c0de1
Create Date: 2026-11-30 07:30:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "7e1a9c3b5d20"
down_revision: str | None = "a7e18b0c0de1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "org_unit",
        sa.Column(
            "contacts",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
    )
    op.add_column(
        "reporting_regime",
        sa.Column(
            "reminder_days_before",
            postgresql.ARRAY(sa.Integer()),
            server_default=sa.text("'{14,3,1}'::integer[]"),
            nullable=False,
        ),
    )
    op.create_table(
        "reminder_sent",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("obligation_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("contact_name", sa.Text(), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["obligation_id"],
            ["reporting_obligation.id"],
            name=op.f("fk_reminder_sent_obligation_id_reporting_obligation"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reminder_sent")),
        sa.UniqueConstraint(
            "obligation_id", "kind", "email", name=op.f("uq_reminder_sent_obligation_id_kind_email")
        ),
    )
    op.execute(
        """
        INSERT INTO job_schedule (id, key, job_name, args, cron, description, created_by)
        VALUES (gen_random_uuid(), 'daily-deadline-reminders', 'reminders.send', '{}'::jsonb,
                '0 8 * * *',
                'Remind units that have not submitted of their approaching or missed deadlines.',
                'migration')
        ON CONFLICT (key) DO NOTHING
        """
    )


def downgrade() -> None:
    op.execute("DELETE FROM job_schedule WHERE key = 'daily-deadline-reminders'")
    op.drop_table("reminder_sent")
    op.drop_column("reporting_regime", "reminder_days_before")
    op.drop_column("org_unit", "contacts")
