"""A mute covers the muted story's follow-ups (docs/feedback.md): a story that
continues one a reader muted is muted for them too, by a mute of its own that names
the story it follows (shown on the reader's page, undone with it).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("story_mutes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("follows_story_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("story_mutes", schema=None) as batch_op:
        batch_op.drop_column("follows_story_id")
