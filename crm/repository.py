"""What every repository in ``crm`` shares: short transactions and detached records.

Each method of a repository is one short transaction on its own session, so a slow API
reader never holds a lock a live call is waiting for, and database errors leave as
``StorageError`` (the choice of SQLAlchemy stays inside this package).

A unit of work never opens another while it is open (no call to a repository method
inside ``_transaction``): on SQLite's one connection the inner one would wait for the
outer's connection until the pool gives up, holding up every call meanwhile. Read what is
needed in the same session, or after the first transaction has closed.
tests/test_units_of_work.py runs the repositories on one connection to keep it so.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, fields, is_dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm.exceptions import StorageError

log = logging.getLogger(__name__)

# The units of work open on each sessionmaker now, by name: the log line of one that found
# no free connection says who had them.
_open_work: weakref.WeakKeyDictionary[async_sessionmaker[AsyncSession], Counter[str]] = (
    weakref.WeakKeyDictionary()
)


class Repository:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    @asynccontextmanager
    async def _transaction(self, operation: str) -> AsyncIterator[AsyncSession]:
        started = time.monotonic()
        work = _open_work.setdefault(self._sessions, Counter())
        work[operation] += 1
        try:
            async with self._sessions() as session, session.begin():
                yield session
        except SQLAlchemyError as err:
            raise self._failure(operation, err, time.monotonic() - started) from err
        finally:
            work[operation] -= 1

    def _failure(self, operation: str, err: SQLAlchemyError, waited_s: float) -> StorageError:
        """The ``StorageError`` for ``err``; a wait for a connection that ran out is logged.

        It means every connection was held for the whole configured wait (a unit of work
        opened inside another, or one stuck), which a 503 alone would tell nobody; the
        line names the operation and the units of work that were open.
        """
        if isinstance(err, PoolTimeout):
            others = Counter(_open_work.get(self._sessions, Counter()))
            others[operation] -= 1
            log.error(
                "%s: no database connection free after %.1f s (pool exhausted); "
                "open units of work: %s",
                operation,
                waited_s,
                ", ".join(f"{name} ×{n}" if n > 1 else name for name, n in (+others).items())
                or "none",
            )
        return StorageError(f"{operation} failed")


def require_aware(name: str, value: datetime) -> None:
    """Refuse naive datetimes here, where the caller can see which argument was wrong."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value.isoformat()}")


# The records' attribute docstrings describe their fields in the HTTP API's document
# (``web.openapi`` generates it through pydantic, which reads them when told to here);
# every field is always sent, so even one with a default is required there.
DOCUMENTED_FIELDS = {
    "use_attribute_docstrings": True,
    "json_schema_serialization_defaults_required": True,
}


@dataclass(frozen=True, slots=True)
class OneOf:
    """A record field whose values are a closed set, as ``Annotated[str, OneOf(Kind.ALL)]``.

    The document lists them as the field's ``enum``, so a client can switch on them and a
    value outside the set fails the API tests' response check. The set is the constants'
    own tuple, never a copy. Pydantic asks ``Annotated`` metadata for its schema through
    this hook by name, so the records still need no pydantic import.
    """

    values: tuple[str, ...]

    def __get_pydantic_json_schema__(self, schema: Any, handler: Any) -> dict[str, Any]:
        generated: dict[str, Any] = dict(handler(schema))
        generated["enum"] = list(self.values)
        return generated


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
