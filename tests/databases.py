"""Databases for tests: a fresh SQLite file, and a fresh PostgreSQL database when
HOTLINE_TEST_PG_URL names a server (``make test`` starts one; the role needs CREATEDB).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import create_async_engine

PG_URL = os.environ.get("HOTLINE_TEST_PG_URL")
BACKENDS = ["sqlite", *(["postgresql"] if PG_URL else [])]


@asynccontextmanager
async def fresh_pg_database(admin_url: str) -> AsyncIterator[str]:
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"hotline_test_{uuid.uuid4().hex[:12]}"
    try:
        async with admin.connect() as connection:
            await connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        finally:
            async with admin.connect() as connection:
                await connection.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.dispose()
