"""Engine and sessions for ``DATABASE_URL`` (SQLite by default)."""

from __future__ import annotations

import functools
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.orm import DeclarativeBase, sessionmaker

__all__ = ["Base", "get_engine", "init_db", "session_factory"]


class Base(DeclarativeBase):
    """Declarative base of every table."""


@functools.cache
def get_engine(url: str) -> Engine:
    """One engine per database URL, shared by the threads of a process.

    SQLite gets WAL journaling and a busy timeout so that the API and the
    workers of an embedded run can write at the same time.
    """
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(conn, _record) -> None:
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def init_db(url: str) -> Engine:
    """Create the tables (idempotent), add columns a newer version declares, return the engine."""
    from . import models  # noqa: F401  (registers the tables)

    engine = get_engine(url)
    Base.metadata.create_all(engine)
    _add_missing_columns(engine)
    return engine


def _add_missing_columns(engine: Engine) -> None:
    """Bring a database made by an older version up to date without losing its jobs.

    New columns are always nullable (or have a server default), so adding
    them is all an upgrade needs; old rows read as "not recorded".
    """
    inspector = inspect(engine)
    with engine.begin() as conn:
        for table in Base.metadata.sorted_tables:
            have = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name not in have:
                    kind = column.type.compile(dialect=engine.dialect)
                    conn.execute(
                        text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}')
                    )


@functools.cache
def session_factory(url: str) -> sessionmaker:
    """A session factory bound to ``url``'s engine, with tables created."""
    return sessionmaker(init_db(url), expire_on_commit=False)
