"""Webhook signing secrets sealed at rest, like the token-signing keys.

The secrets (the current one, and the previous one kept through a rotation's overlap) are
stored as Fernet tokens under a key derived from NSCL_SIGNING_KEY_PASSPHRASE, so a backup or
a dump holds no secret a forger could sign deliveries with. The columns widen to hold a
token. Existing rows are sealed here when the migration is given the passphrase; without it
they stay as they were (readable, as keys stored before a passphrase was set are) until
`nscl keys reseal` seals them. Downgrading opens them again, and needs the passphrase to do so.

Revision ID: 3b8d0f6a2c41
Revises: 7e1a9c3b5d20
Create Date: 2026-11-30 11:00:00+00:00
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op

from nscl_domain.identity.sealing import KeySealer, is_sealed_secret
from nscl_domain.settings import Settings

revision: str = "3b8d0f6a2c41"
down_revision: str | None = "7e1a9c3b5d20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ("secret", "previous_secret")


def _rewrite(change: Callable[[str, str], str]) -> None:
    """Rewrite each stored secret as ``change(what, stored)`` says."""
    bind = op.get_bind()
    rows = bind.execute(
        sa.text("SELECT id, secret, previous_secret FROM webhook_subscription FOR UPDATE")
    ).all()
    for row in rows:
        what = f"webhook subscription {row.id}"
        previous = row.previous_secret
        bind.execute(
            sa.text(
                "UPDATE webhook_subscription SET secret = :secret, previous_secret = :previous "
                "WHERE id = :id"
            ),
            {
                "id": row.id,
                "secret": change(what, row.secret),
                "previous": None if previous is None else change(what, previous),
            },
        )


def upgrade() -> None:
    for column in _COLUMNS:
        op.alter_column(
            "webhook_subscription", column, type_=sa.Text(), existing_type=sa.String(200)
        )
    sealer = KeySealer.from_settings(Settings())
    if sealer.passphrase:
        _rewrite(
            lambda what, stored: stored if is_sealed_secret(stored) else sealer.seal_secret(stored)
        )


def downgrade() -> None:
    sealer = KeySealer.from_settings(Settings())
    # Raises (and rolls back) when a secret is sealed under a passphrase not given here.
    _rewrite(sealer.open_secret)
    for column in _COLUMNS:
        op.alter_column(
            "webhook_subscription", column, type_=sa.String(200), existing_type=sa.Text()
        )
