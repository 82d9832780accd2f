"""Alembic environment for the CRM database.

Runs from ``crm.db.migrate`` (URL given as the main option) or from the ``alembic`` command
in the repository (URL from ``-x url=...`` or ``HOTLINE_DB_URL``). It goes through
``crm.db.create_engine`` so migrations see the same SQLite pragmas as the service,
foreign keys included.
"""

from __future__ import annotations

import asyncio
import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection

from crm.db import create_engine
from crm.models import Base
from crm.search_index import in_models

config = context.config
target_metadata = Base.metadata


def _database_url() -> str:
    url = (
        context.get_x_argument(as_dictionary=True).get("url")
        or config.get_main_option("sqlalchemy.url")
        or os.environ.get("HOTLINE_DB_URL")
    )
    if not url:
        raise RuntimeError("no database URL: pass -x url=... or set HOTLINE_DB_URL")
    return url


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        include_name=in_models,  # the search index has no models (an FTS5 table cannot)
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    engine = create_engine(_database_url())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


def _run_offline() -> None:
    context.configure(
        url=_database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

if context.is_offline_mode():
    _run_offline()
else:
    asyncio.run(_run_online())
