"""Exact and near duplicates, aliases, revisions, retention.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("articles", schema=None) as batch_op:
        batch_op.add_column(sa.Column("content_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("story_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("signature", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("revision", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(
            sa.Column("notify_revision", sa.Integer(), nullable=False, server_default="1")
        )
        batch_op.add_column(sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_unique_constraint("uq_articles_content_hash", ["content_hash"])
        batch_op.create_index("ix_articles_story_id", ["story_id"], unique=False)

    op.create_table(
        "article_aliases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["articles.id"],
            name="fk_article_aliases_article_id_articles",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_article_aliases"),
        sa.UniqueConstraint("url", name="uq_article_aliases_url"),
    )
    op.create_index("ix_article_aliases_article_id", "article_aliases", ["article_id"])

    op.create_table(
        "article_revisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["articles.id"],
            name="fk_article_revisions_article_id_articles",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_article_revisions"),
        sa.UniqueConstraint("article_id", "revision", name="uq_article_revisions_article_revision"),
    )

    with op.batch_alter_table("delivery_items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("revision", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("story_id", sa.Integer(), nullable=True))
        batch_op.drop_constraint("uq_delivery_items_recipient_article", type_="unique")
        batch_op.create_unique_constraint(
            "uq_delivery_items_recipient_article", ["recipient", "article_id", "revision"]
        )


def downgrade() -> None:
    with op.batch_alter_table("delivery_items", schema=None) as batch_op:
        batch_op.drop_constraint("uq_delivery_items_recipient_article", type_="unique")
        batch_op.create_unique_constraint(
            "uq_delivery_items_recipient_article", ["recipient", "article_id"]
        )
        batch_op.drop_column("story_id")
        batch_op.drop_column("revision")
    op.drop_table("article_revisions")
    op.drop_index("ix_article_aliases_article_id", table_name="article_aliases")
    op.drop_table("article_aliases")
    with op.batch_alter_table("articles", schema=None) as batch_op:
        batch_op.drop_index("ix_articles_story_id")
        batch_op.drop_constraint("uq_articles_content_hash", type_="unique")
        batch_op.drop_column("purged_at")
        batch_op.drop_column("notify_revision")
        batch_op.drop_column("revision")
        batch_op.drop_column("signature")
        batch_op.drop_column("story_id")
        batch_op.drop_column("content_hash")
