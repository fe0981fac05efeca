"""Adaptive polling (crawler/orchestration/polling.py): what each source's server
last asked about how often to come back (Retry-After, Cache-Control max-age, a
feed's ttl and sy:updatePeriod), and the next poll the scheduler set with its
interval and reason, kept over a restart and shown by ``newswatch status``.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

COLUMNS = (
    ("retry_after_seconds", sa.Float()),
    ("max_age_seconds", sa.Float()),
    ("ttl_seconds", sa.Float()),
    ("update_period_seconds", sa.Float()),
    ("next_poll_at", sa.DateTime(timezone=True)),
    ("poll_interval_seconds", sa.Float()),
    ("poll_reason", sa.String(length=300)),
)


def upgrade() -> None:
    with op.batch_alter_table("sources") as table:
        for name, kind in COLUMNS:
            table.add_column(sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    # ALTER TABLE … DROP COLUMN (SQLite 3.35+), never batch mode's rebuild: that drops
    # the old ``sources`` table, and with foreign keys on SQLite deletes its rows first,
    # which sets every articles.source_id to NULL (ON DELETE SET NULL). An older SQLite
    # refuses the ALTER and the whole downgrade rolls back, losing nothing.
    with op.batch_alter_table("sources", recreate="never") as table:
        for name, _kind in reversed(COLUMNS):
            table.drop_column(name)
