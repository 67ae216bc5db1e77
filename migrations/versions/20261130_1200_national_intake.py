"""National intake: a province's instance pushes its published rollup to the national one.

`national_intake` records each push (programme, year, the province's run id, seq and
fingerprint, when and by whom it was received), one per programme × run; each push becomes
a frozen rollup run of kind `pushed`, which the national rollup combines like any
published provincial run.

Revision ID: 4c2d8e6f1a93
Revises: 3b8d0f6a2c41
Create Date: 2026-11-30 12:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "4c2d8e6f1a93"
down_revision: str | None = "3b8d0f6a2c41"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint(op.f("ck_rollup_run_kind_known"), "rollup_run", type_="check")
    op.create_check_constraint(
        op.f("ck_rollup_run_kind_known"),
        "rollup_run",
        "kind IN ('full', 'incremental', 'pushed')",
    )
    op.create_table(
        "national_intake",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("programme_id", sa.Uuid(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cells", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_by", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["programme_id"],
            ["programme.id"],
            name=op.f("fk_national_intake_programme_id_programme"),
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["rollup_run.id"], name=op.f("fk_national_intake_run_id_rollup_run")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_national_intake")),
        sa.UniqueConstraint(
            "programme_id", "run_id", name=op.f("uq_national_intake_programme_id_run_id")
        ),
    )


def downgrade() -> None:
    op.drop_table("national_intake")
    # Runs are frozen: pushed ones stay, and so does the kind that names them.
    op.execute(
        """
        DO $$ BEGIN
            IF NOT EXISTS (SELECT 1 FROM rollup_run WHERE kind = 'pushed') THEN
                ALTER TABLE rollup_run DROP CONSTRAINT ck_rollup_run_kind_known;
                ALTER TABLE rollup_run ADD CONSTRAINT ck_rollup_run_kind_known
                    CHECK (kind IN ('full', 'incremental'));
            END IF;
        END $$
        """
    )
