"""What every repository in ``crm`` shares: short transactions and detached records.

Each method of a repository is one short transaction on its own session, so a slow API
reader never holds a lock a live call is waiting for, and database errors leave as
``StorageError`` (the choice of SQLAlchemy stays inside this package).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import fields, is_dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm.exceptions import StorageError


class Repository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    @asynccontextmanager
    async def _transaction(self, operation: str) -> AsyncIterator[AsyncSession]:
        try:
            async with self._sessions() as session, session.begin():
                yield session
        except SQLAlchemyError as err:
            raise StorageError(f"{operation} failed") from err


def require_aware(name: str, value: datetime) -> None:
    """Refuse naive datetimes here, where the caller can see which argument was wrong."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value.isoformat()}")


def record_json(record: Any) -> dict[str, Any]:
    """A frozen record as JSON: field names kept, times in ISO 8601, nested records too."""
    return {f.name: _json_value(getattr(record, f.name)) for f in fields(record)}


def _json_value(value: object) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_json_value(item) for item in value]
    if is_dataclass(value) and not isinstance(value, type):
        return record_json(value)
    return value
