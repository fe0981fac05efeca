"""Deliveries are digests or immediate alerts.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=10), nullable=False, server_default="digest")
        )


def downgrade() -> None:
    # ALTER TABLE … DROP COLUMN, not a rebuild: dropping the old table on SQLite, with
    # foreign keys on, deletes its rows first, and the ON DELETE rules of the tables that
    # point at it with them (migration 0016 has the whole story).
    with op.batch_alter_table("deliveries", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("kind")
