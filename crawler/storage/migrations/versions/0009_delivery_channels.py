"""The ledger per channel: a delivery goes to one recipient on one channel, and an
article (revision) reaches each (recipient, channel) at most once.

A delivery a channel refused for good (a webhook's 404) is marked ``failed_at``: it
is shown, and never tried again. Every delivery made before is an email
(``channel`` "email"), so the ledger of an existing install keeps its meaning.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A downgrade on SQLite leaves these columns (see there): add the missing ones.
    present = {column["name"] for column in sa.inspect(op.get_bind()).get_columns("deliveries")}
    wanted: list[sa.Column[Any]] = [
        sa.Column("channel", sa.String(length=60), nullable=False, server_default="email"),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True),
    ]
    missing = [column for column in wanted if column.name not in present]
    if missing:
        with op.batch_alter_table("deliveries", schema=None) as batch_op:
            for column in missing:
                batch_op.add_column(column)
    with op.batch_alter_table("delivery_items", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("channel", sa.String(length=60), nullable=False, server_default="email")
        )
        batch_op.drop_constraint("uq_delivery_items_recipient_article", type_="unique")
        batch_op.create_unique_constraint(
            "uq_delivery_items_recipient_channel_article",
            ["recipient", "channel", "article_id", "revision"],
        )


def downgrade() -> None:
    with op.batch_alter_table("delivery_items", schema=None) as batch_op:
        batch_op.drop_constraint("uq_delivery_items_recipient_channel_article", type_="unique")
        batch_op.create_unique_constraint(
            "uq_delivery_items_recipient_article", ["recipient", "article_id", "revision"]
        )
        batch_op.drop_column("channel")
    # SQLite drops a column by rebuilding the table, and dropping the old `deliveries`
    # would cascade to every delivery item (foreign keys are on): the ledger would be
    # lost. There the column stays, harmless to the older code (it has a default).
    if op.get_bind().dialect.name != "sqlite":
        with op.batch_alter_table("deliveries", schema=None) as batch_op:
            batch_op.drop_column("failed_at")
            batch_op.drop_column("channel")
