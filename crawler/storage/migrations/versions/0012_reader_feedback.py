"""Readers answer their digest (docs/feedback.md): the one-time links already used,
the votes ("more like this", "not relevant"), the stories muted and the rules paused
or unsubscribed, per reader. Each answer keeps the link that made it, so its undo
finds it, and an undo is a time, not a deletion, so the reader's page can show it.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "used_links",
        sa.Column("token_id", sa.String(length=64), nullable=False),
        sa.Column("used_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("token_id", name="pk_used_links"),
    )
    op.create_index("ix_used_links_used_at", "used_links", ["used_at"])
    op.create_table(
        "feedback_votes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("story_id", sa.Integer(), nullable=True),
        sa.Column("article_id", sa.Integer(), nullable=True),
        sa.Column("rule", sa.String(length=200), nullable=False),
        sa.Column("vote", sa.String(length=20), nullable=False),
        sa.Column("token_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("undone_at", UTC_TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_feedback_votes"),
    )
    op.create_index("ix_feedback_votes_recipient_rule", "feedback_votes", ["recipient", "rule"])
    op.create_index("ix_feedback_votes_token_id", "feedback_votes", ["token_id"])
    op.create_index("ix_feedback_votes_created_at", "feedback_votes", ["created_at"])
    op.create_table(
        "story_mutes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("story_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("token_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("undone_at", UTC_TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_story_mutes"),
    )
    op.create_index("ix_story_mutes_recipient_story", "story_mutes", ["recipient", "story_id"])
    op.create_index("ix_story_mutes_token_id", "story_mutes", ["token_id"])
    op.create_index("ix_story_mutes_created_at", "story_mutes", ["created_at"])
    op.create_table(
        "rule_holds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("rule", sa.String(length=200), nullable=False),
        sa.Column("until", UTC_TIME, nullable=True),
        sa.Column("token_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.Column("undone_at", UTC_TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_rule_holds"),
    )
    op.create_index("ix_rule_holds_recipient_rule", "rule_holds", ["recipient", "rule"])
    op.create_index("ix_rule_holds_token_id", "rule_holds", ["token_id"])
    op.create_index("ix_rule_holds_created_at", "rule_holds", ["created_at"])


def downgrade() -> None:
    op.drop_table("rule_holds")
    op.drop_table("story_mutes")
    op.drop_table("feedback_votes")
    op.drop_table("used_links")
