"""Source health (crawler/domain/health.py): each finished poll as the health of
its source reads it (``source_polls``), and each source's current state with its
reason, evidence and since when, and the state its operators were last told of
(``source_health``). Two indexes on ``articles`` by source: the health read after
every poll would otherwise scan every source's articles.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "source_polls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("at", UTC_TIME, nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("error_class", sa.String(length=20), nullable=True),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("new_urls", sa.Integer(), nullable=False),
        sa.Column("stored", sa.Integer(), nullable=False),
        sa.Column("challenges", sa.Integer(), nullable=False),
        sa.Column("sample_url", sa.String(length=2048), nullable=True),
        sa.Column("moved_to", sa.String(length=2048), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_source_polls"),
    )
    op.create_index("ix_source_polls_source_at", "source_polls", ["source", "at"])
    op.create_index("ix_source_polls_at", "source_polls", ["at"])
    op.create_table(
        "source_health",
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("since", UTC_TIME, nullable=False),
        sa.Column("checked_at", UTC_TIME, nullable=False),
        sa.Column("told_state", sa.String(length=20), nullable=True),
        sa.Column("told_at", UTC_TIME, nullable=True),
        sa.Column("changes", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("source", name="pk_source_health"),
    )

    op.create_index("ix_articles_source_fetched_at", "articles", ["source_id", "fetched_at"])
    op.create_index("ix_articles_source_published_at", "articles", ["source_id", "published_at"])


def downgrade() -> None:
    op.drop_index("ix_articles_source_published_at", table_name="articles")
    op.drop_index("ix_articles_source_fetched_at", table_name="articles")
    op.drop_table("source_health")
    op.drop_index("ix_source_polls_at", table_name="source_polls")
    op.drop_index("ix_source_polls_source_at", table_name="source_polls")
    op.drop_table("source_polls")
