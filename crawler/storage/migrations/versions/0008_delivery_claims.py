"""A delivery is claimed by the run that sends it, so no other run sends it meanwhile.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # ALTER TABLE … DROP COLUMN, not a rebuild: dropping the old table on SQLite, with
    # foreign keys on, deletes its rows first, and the ON DELETE rules of the tables that
    # point at it with them (migration 0016 has the whole story).
    with op.batch_alter_table("deliveries", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("claimed_until")
        batch_op.drop_column("claimed_by")
