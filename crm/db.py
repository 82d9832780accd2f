"""Engine, sessions and schema upgrades for the CRM database.

SQLite (the default, one file next to the service) and PostgreSQL are both supported; the
SQLite settings below are what make one file safe for a service that writes from many
concurrent calls while the API reads.
"""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import URL, event, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# WAL lets the API read while a call is being written; NORMAL is durable across a service
# crash (only an OS crash can lose the last commits); SQLite leaves foreign keys off unless
# asked. busy_timeout (set from the wait, below) makes our one connection wait for another
# process's write lock (a roster import, `hotline transcribe`) instead of failing at once.
SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
)

# How long a unit of work may wait for the database: for a free pooled connection, and on
# SQLite also for the file's write lock. Units of work last milliseconds; one still waiting
# after this is stuck behind something that is not coming back soon (a unit of work opened
# inside another waits for itself), and failing it (503 storage-unavailable, logged with
# its name) beats holding up live calls behind it, as the 60 s this used to be did.
DEFAULT_WAIT_S = 5.0


def create_engine(
    url: str, *, wait_s: float = DEFAULT_WAIT_S, pool_size: int | None = None
) -> AsyncEngine:
    """Create the async engine; for a SQLite file, also its folder and connection pragmas.

    ``pool_size`` fixes the number of connections (tests run the repositories on exactly
    one, on PostgreSQL too, so that a unit of work opening a second one while it holds
    the first shows as a wait). SQLite always has one.
    """
    parsed = make_url(url)
    sqlite = parsed.get_backend_name() == "sqlite"
    pool: dict[str, Any] = {"pool_timeout": wait_s}
    if sqlite or pool_size is not None:
        # SQLite has one writer at a time. Several pooled connections contend for its lock
        # through the busy handler, which sleeps in steps of up to 100 ms; one connection
        # makes writers queue in order instead (a 100-call burst: p99 390 → 180 ms).
        pool.update(pool_size=1 if sqlite else pool_size, max_overflow=0)
    engine = _create_async_engine(parsed, **pool)
    if sqlite:
        _make_sqlite_folder(parsed)
        busy_ms = max(1, round(wait_s * 1000))
        event.listen(engine.sync_engine, "connect", functools.partial(_set_sqlite_pragmas, busy_ms))
    return engine


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded values after commit, since records are built after it."""
    return async_sessionmaker(engine, expire_on_commit=False)


async def migrate(url: str) -> None:
    """Upgrade the database at ``url`` to the newest schema.

    Independent of the working directory and of ``alembic.ini`` so the installed service
    can upgrade itself at start. Alembic's command API is synchronous and its env runs its
    own event loop, so it runs in a worker thread.
    """
    await asyncio.to_thread(command.upgrade, alembic_config(url), "head")


def alembic_config(url: str) -> Config:
    """Alembic configuration for ``url`` pointing at the migrations inside this package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser treats "%" as interpolation; URL-escaped passwords contain it.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _make_sqlite_folder(url: URL) -> None:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    Path(database).parent.mkdir(parents=True, exist_ok=True)


def _set_sqlite_pragmas(busy_ms: int, dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for pragma in (*SQLITE_PRAGMAS, f"PRAGMA busy_timeout={busy_ms}"):
            cursor.execute(pragma)
    finally:
        cursor.close()
