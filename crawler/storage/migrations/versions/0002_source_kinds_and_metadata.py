"""Conditional polling state for sources; section, keywords and description for articles.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=20), nullable=False, server_default="feed")
        )
        batch_op.add_column(sa.Column("content_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("discovered_url", sa.String(length=2048), nullable=True))
    with op.batch_alter_table("articles", schema=None) as batch_op:
        batch_op.add_column(sa.Column("section", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("keywords", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("description", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("articles", schema=None) as batch_op:
        batch_op.drop_column("description")
        batch_op.drop_column("keywords")
        batch_op.drop_column("section")
    # ALTER TABLE … DROP COLUMN, not a rebuild: dropping the old table on SQLite, with
    # foreign keys on, deletes its rows first, and the ON DELETE rules of the tables that
    # point at it with them (migration 0016 has the whole story).
    with op.batch_alter_table("sources", schema=None, recreate="never") as batch_op:
        batch_op.drop_column("discovered_url")
        batch_op.drop_column("content_hash")
        batch_op.drop_column("kind")
