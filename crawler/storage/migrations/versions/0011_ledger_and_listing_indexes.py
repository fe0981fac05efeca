"""Indexes for the JSON API's newest-first pages (without them, a listing of matches
or deliveries with no rule or recipient filter scans and sorts the whole table for
each page), for a channel's throttle (its messages of the last minute or hour) and
for the pending-items check of a story already delivered through another copy (a
scan of the reader's whole history without it: 84-125 s for a reader with 25,000
delivered and 25,000 pending articles).

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
    op.create_index(
        "ix_delivery_items_recipient_channel_story",
        "delivery_items",
        ["recipient", "channel", "story_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_delivery_items_recipient_channel_story", table_name="delivery_items")
    op.drop_index("ix_deliveries_channel_sent_at", table_name="deliveries")
    op.drop_index("ix_deliveries_created_at_id", table_name="deliveries")
    op.drop_index("ix_matches_matched_at_id", table_name="matches")
