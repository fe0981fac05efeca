"""Indexes for the JSON API's newest-first pages (without them, a listing of matches
or deliveries with no rule or recipient filter scans and sorts the whole table for
each page) and for a channel's throttle (its messages of the last minute or hour).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_matches_matched_at_id", "matches", ["matched_at", "id"])
    op.create_index("ix_deliveries_created_at_id", "deliveries", ["created_at", "id"])
    op.create_index("ix_deliveries_channel_sent_at", "deliveries", ["channel", "sent_at"])


def downgrade() -> None:
    op.drop_index("ix_deliveries_channel_sent_at", table_name="deliveries")
    op.drop_index("ix_deliveries_created_at_id", table_name="deliveries")
    op.drop_index("ix_matches_matched_at_id", table_name="matches")
