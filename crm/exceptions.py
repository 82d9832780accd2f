"""Errors of the CRM package.

    CrmError
    ├── NotFound        the record asked for does not exist (what, key)
    ├── InvalidQuery    an API filter was refused (field, reason)
    ├── InvalidInput    a value to store was refused (field, reason)
    ├── Conflict        the change clashes with what is stored (e.g. a duplicate endpoint)
    └── StorageError    the database failed; raised ``from`` the SQLAlchemy error

Callers catch ``StorageError`` instead of SQLAlchemy's errors so that the choice of database
library stays inside ``crm.calls``.
"""

from __future__ import annotations


class CrmError(Exception):
    """Base of every error this package raises on purpose."""


class NotFound(CrmError):
    """Raised when a record looked up by key does not exist."""

    def __init__(self, what: str, key: object) -> None:
        super().__init__(f"{what} {key!r} not found")
        self.what = what
        self.key = key


class InvalidQuery(CrmError):
    """Raised for a query parameter the API cannot use; names the field so clients can fix it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class InvalidInput(CrmError):
    """Raised for a value that cannot be stored; names the field so clients can fix it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class Conflict(CrmError):
    """Raised when a change clashes with the stored state (HTTP 409)."""


class StorageError(CrmError):
    """Raised when the database cannot do what was asked (down, locked, schema missing)."""
