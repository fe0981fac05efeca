"""Alembic environment: runs on the connection or URL that crawler.storage.store hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from crawler.storage.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as connection:
        _run(connection)
    engine.dispose()


def _is_model_object(name: str | None, kind: str, _parent: object) -> bool:
    """Leave the full-text index (migration 0006) out of autogenerate: it is the
    database's own machinery, not a model."""
    if kind == "table" and (name or "").startswith("articles_fts"):
        return False
    return not (kind == "index" and name == "ix_articles_search")


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds tables instead.
        render_as_batch=True,
        compare_type=True,
        include_name=_is_model_object,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("newswatch migrations run online only: newswatch db upgrade")
run_migrations_online()
