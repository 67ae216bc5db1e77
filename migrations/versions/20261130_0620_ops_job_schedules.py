"""Schedules as data: job_schedule, and the job a schedule fired at a fire time.

The nightly rebuild (01:30) and prune (02:15) that the worker's settings fixed become rows
an operator can pause or change, and each provincial programme gets its post-deadline
rebuild (02:00 on 1 December, after the 30 November deadline). Times are read in
Asia/Ho_Chi_Minh. A (schedule, fire time) pair has one job, whatever the workers.

Revision ID: dd29bdc4ae50
Revises: 5d1c0e7a9b42
Create Date: 2026-11-30 06:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "dd29bdc4ae50"
down_revision: str | None = "5d1c0e7a9b42"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_schedule",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("job_name", sa.String(length=100), nullable=False),
        sa.Column(
            "args",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("cron", sa.String(length=100), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "checked_through",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("created_by", sa.String(length=200), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_schedule")),
        sa.UniqueConstraint("key", name=op.f("uq_job_schedule_key")),
    )
    op.add_column("job", sa.Column("schedule_id", sa.Uuid(), nullable=True))
    op.add_column("job", sa.Column("fire_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "uq_job_schedule_fire",
        "job",
        ["schedule_id", "fire_at"],
        unique=True,
        postgresql_where=sa.text("schedule_id IS NOT NULL"),
    )
    # The schedules the worker's code held until now, and one post-deadline rebuild per
    # provincial programme already in the catalogue (the seed adds them for new ones).
    op.execute(
        """
        INSERT INTO job_schedule (id, key, job_name, args, cron, description, created_by)
        VALUES
          (gen_random_uuid(), 'nightly-rollups-rebuild', 'rollups.rebuild', '{}'::jsonb,
           '30 1 * * *', 'Rebuild every programme-year whose inputs changed.', 'migration'),
          (gen_random_uuid(), 'nightly-jobs-prune', 'jobs.prune',
           '{"older_than_days": 30}'::jsonb, '15 2 * * *',
           'Delete finished jobs older than 30 days.', 'migration')
        ON CONFLICT (key) DO NOTHING
        """
    )
    op.execute(
        """
        INSERT INTO job_schedule (id, key, job_name, args, cron, description, created_by)
        SELECT gen_random_uuid(), 'post-deadline-rebuild:' || p.key, 'rollups.rebuild',
               jsonb_build_object('programme_id', p.id::text), '0 2 1 12 *',
               'Rebuild ' || p.key || ' after the 30 November reporting deadline.', 'migration'
        FROM programme p
        WHERE p.level = 'provincial'
        ON CONFLICT (key) DO NOTHING
        """
    )


def downgrade() -> None:
    op.drop_index("uq_job_schedule_fire", table_name="job")
    op.drop_column("job", "fire_at")
    op.drop_column("job", "schedule_id")
    op.drop_table("job_schedule")
