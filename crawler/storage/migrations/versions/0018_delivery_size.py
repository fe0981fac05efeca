"""A delivery's size: the bytes of the message as its receiver accepted it (an
email's whole message, headers and parts), shown by the web UI's delivery
history. Unknown (NULL) for deliveries sent before, and for channels whose
messages are not measured.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as table:
        table.add_column(sa.Column("size_bytes", sa.Integer(), nullable=True))


def downgrade() -> None:
    # ALTER TABLE … DROP COLUMN, never batch mode's rebuild (see 0016): dropping the
    # old table would cascade to its delivery items on SQLite.
    with op.batch_alter_table("deliveries", recreate="never") as table:
        table.drop_column("size_bytes")
