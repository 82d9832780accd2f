"""Databases for tests: a fresh SQLite file, and a fresh PostgreSQL database when
HOTLINE_TEST_PG_URL names a server (``make test`` starts one; the role needs CREATEDB).

Tests of the migrations themselves start from an empty database. The rest start from a
copy of one already migrated (a template database on PostgreSQL, a file on SQLite), which
saves half a second of Alembic per test. The template's name carries a hash of the
migration files, so a changed migration makes a new one and the old ones are dropped.

Repository tests run on ``one_connection_engine``: one pooled connection on both backends
(as the service has on SQLite) and a short wait for it, so that a unit of work opening a
second one while it holds the first, which can only wait for itself, fails the test within
seconds (conftest's ``pool_waits`` fails it on the log line even where the error is caught).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from crm.db import MIGRATIONS_DIR, create_engine, migrate

PG_URL = os.environ.get("HOTLINE_TEST_PG_URL")
BACKENDS = ["sqlite", *(["postgresql"] if PG_URL else [])]
# Long enough for the tests' own bursts of concurrent work to queue on one connection on a
# loaded machine; a unit of work nested in another waits this long, then fails.
UNIT_WAIT_S = 3.0


def one_connection_engine(url: str) -> AsyncEngine:
    """The service's engine for ``url`` with exactly one connection, on PostgreSQL too."""
    return create_engine(url, pool_size=1, wait_s=UNIT_WAIT_S)


def schema_hash() -> str:
    digest = hashlib.sha256()
    for path in sorted(MIGRATIONS_DIR.rglob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _url_for(admin_url: str, database: str) -> str:
    return make_url(admin_url).set(database=database).render_as_string(hide_password=False)


@asynccontextmanager
async def fresh_pg_database(admin_url: str, *, template: str | None = None) -> AsyncIterator[str]:
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"hotline_test_{uuid.uuid4().hex[:12]}"
    source = f' TEMPLATE "{template}"' if template else ""
    try:
        async with admin.connect() as connection:
            await connection.exec_driver_sql(f'CREATE DATABASE "{name}"{source}')
        try:
            yield _url_for(admin_url, name)
        finally:
            async with admin.connect() as connection:
                await connection.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.dispose()


async def pg_template(admin_url: str) -> str:
    """The migrated template database for this schema, made if missing."""
    name = f"hotline_template_{schema_hash()}"
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        if not await _template_exists(admin, name):
            async with admin.connect() as connection:
                stale = await connection.exec_driver_sql(
                    "SELECT datname FROM pg_database WHERE datname LIKE 'hotline_template_%'"
                )
                building = f"{name}_building"
                for (old,) in stale.all():
                    await _drop_stale(connection, old, ours=old == building)
                await connection.exec_driver_sql(f'CREATE DATABASE "{building}"')
            await migrate(_url_for(admin_url, building))
            async with admin.connect() as connection:
                # Renamed only once whole: a run stopped mid-migration leaves no half template.
                await connection.exec_driver_sql(f'ALTER DATABASE "{building}" RENAME TO "{name}"')
    finally:
        await admin.dispose()
    return name


async def _drop_stale(connection: AsyncConnection, database: str, *, ours: bool) -> None:
    """Templates of other schemas go, but never from under another test run.

    A second checkout on this machine (another branch, another schema) may be building
    or copying its own template right now: forcing it away killed that run's migration
    ("terminating connection due to administrator command"). Only our own half-built
    leftover is forced; another's is dropped only when nobody is connected to it.
    """
    if ours:
        await connection.exec_driver_sql(f'DROP DATABASE "{database}" WITH (FORCE)')
    elif not database.endswith("_building"):
        with contextlib.suppress(DBAPIError):  # in use by another run: leave it
            await connection.exec_driver_sql(f'DROP DATABASE "{database}"')


async def _template_exists(admin: AsyncEngine, name: str) -> bool:
    async with admin.connect() as connection:
        found = await connection.exec_driver_sql(
            "SELECT 1 FROM pg_database WHERE datname = $1", (name,)
        )
        return found.first() is not None


_SQLITE_TEMPLATES: dict[str, Path] = {}


async def sqlite_copy(folder: Path, scratch: Path) -> str:
    """A migrated SQLite file in ``folder``, copied from one migrated once per run."""
    template = _SQLITE_TEMPLATES.get(schema_hash())
    if template is None:
        template = scratch / f"template-{schema_hash()}.db"
        await migrate(f"sqlite+aiosqlite:///{template}")
        _SQLITE_TEMPLATES[schema_hash()] = template
    return f"sqlite+aiosqlite:///{_copy(template, folder)}"


def _copy(template: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "hotline.db"
    shutil.copyfile(template, target)
    return target
