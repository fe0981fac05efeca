"""Keyword search over stored articles (title and body).

SQLite: an external-content FTS5 table ``articles_fts`` over ``articles(title,
body)`` (rowid = ``articles.id``), kept in step by triggers and filled from the
rows already stored. PostgreSQL: a GIN index on
``to_tsvector('simple', title || ' ' || body)``; queries must use that very
expression (``Store.search_articles`` does).

SQLite drops a table's triggers with the table, and Alembic's batch mode rebuilds
a table to alter it: a later migration that batch-alters ``articles`` on SQLite
must create the triggers below again afterwards (the FTS table itself survives,
and its rowids are the article ids, which the rebuild keeps).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SQLITE_TRIGGERS = (
    """
    CREATE TRIGGER articles_fts_insert AFTER INSERT ON articles BEGIN
        INSERT INTO articles_fts(rowid, title, body) VALUES (new.id, new.title, new.body);
    END
    """,
    """
    CREATE TRIGGER articles_fts_delete AFTER DELETE ON articles BEGIN
        INSERT INTO articles_fts(articles_fts, rowid, title, body)
        VALUES ('delete', old.id, old.title, old.body);
    END
    """,
    # Retention empties bodies and revisions replace them: the index follows.
    """
    CREATE TRIGGER articles_fts_update AFTER UPDATE OF title, body ON articles BEGIN
        INSERT INTO articles_fts(articles_fts, rowid, title, body)
        VALUES ('delete', old.id, old.title, old.body);
        INSERT INTO articles_fts(rowid, title, body) VALUES (new.id, new.title, new.body);
    END
    """,
)
SQLITE_TRIGGER_NAMES = ("articles_fts_insert", "articles_fts_delete", "articles_fts_update")
POSTGRES_INDEX = (
    "CREATE INDEX IF NOT EXISTS ix_articles_search ON articles "
    "USING gin (to_tsvector('simple', title || ' ' || body))"
)


def create_sqlite_search() -> None:
    """The FTS5 table (if missing), its triggers, and every stored row indexed."""
    op.execute(
        "CREATE VIRTUAL TABLE IF NOT EXISTS articles_fts USING fts5("
        "title, body, content='articles', content_rowid='id', "
        "tokenize='unicode61 remove_diacritics 2')"
    )
    for name in SQLITE_TRIGGER_NAMES:
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    for statement in SQLITE_TRIGGERS:
        op.execute(statement)
    # 'rebuild' re-reads the content table: the backfill of existing articles.
    op.execute("INSERT INTO articles_fts(articles_fts) VALUES ('rebuild')")


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        create_sqlite_search()
    elif dialect == "postgresql":
        op.execute(POSTGRES_INDEX)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for name in SQLITE_TRIGGER_NAMES:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS articles_fts")
    elif dialect == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_articles_search")
