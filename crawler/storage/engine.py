"""The database engine, the migrations, and ``StoreBase``: what every query mixin
stands on."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self

from sqlalchemy import create_engine, event, inspect, select, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = "crawler.storage:migrations"
# The newest migration (tests/test_store.py checks it is Alembic's head). A database
# already there is not handed to Alembic at all: importing and running it costs half
# a second on every start of every command.
SCHEMA_REVISION = "0018"


def create_database_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and foreign keys."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return engine


def upgrade_database(engine: Engine, revision: str = "head") -> None:
    """Apply the Alembic migrations up to ``revision`` (the only way tables are made)."""
    from alembic import command
    from alembic.config import Config as AlembicConfig

    alembic_config = AlembicConfig()
    alembic_config.set_main_option("script_location", MIGRATIONS)
    with engine.begin() as connection:
        alembic_config.attributes["connection"] = connection
        command.upgrade(alembic_config, revision)


def _insert_ignoring_conflict(
    session: Session, model: type[Any], values: dict[str, Any] | None
) -> Any:
    """INSERT … ON CONFLICT DO NOTHING (any unique key) in the session's dialect; with
    ``values`` None, the statement is executed with a list of rows (executemany)."""
    dialect = session.get_bind().dialect.name
    statement: Any  # postgresql.Insert or sqlite.Insert: both have on_conflict_do_nothing
    if dialect == "postgresql":
        # Imported here: the PostgreSQL dialect package imports all its drivers'
        # modules (~0.06 s), which an SQLite installation never needs.
        from sqlalchemy.dialects import postgresql

        statement = postgresql.insert(model)
    elif dialect == "sqlite":
        statement = sqlite.insert(model)
    else:
        raise NotImplementedError(f"newswatch supports SQLite and PostgreSQL, not {dialect}")
    if values is not None:
        statement = statement.values(**values)
    return statement.on_conflict_do_nothing()


class StoreBase:
    """The engine and sessions every query mixin works with, and the schema's upkeep;
    ``Store`` (crawler/storage/store.py) adds the queries."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._session = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def from_url(cls, url: str) -> Self:
        return cls(create_database_engine(url))

    def upgrade(self) -> None:
        """Bring the schema to the newest migration (nothing to do when it is there)."""
        if self.schema_revision() != SCHEMA_REVISION:
            upgrade_database(self.engine)

    def schema_revision(self) -> str | None:
        """The migration the database is at (None for a database without one)."""
        # A database that does not answer raises here: only a missing table means new.
        with self.engine.connect() as connection:
            if not inspect(connection).has_table("alembic_version"):
                return None
            return connection.scalar(text("SELECT version_num FROM alembic_version"))

    def close(self) -> None:
        self.engine.dispose()

    def ping(self) -> None:
        """Raise when the database does not answer."""
        with self.engine.connect() as connection:
            connection.execute(select(1))
