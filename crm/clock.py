"""Where the CRM gets the current time.

Rules that depend on "now" (callback deadlines, overdue tickets) take a ``Clock`` so tests
can fix the time instead of sleeping or patching ``datetime``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Return the current time, timezone-aware, in UTC."""
        ...


class SystemClock:
    """The real clock, for production."""

    def now(self) -> datetime:
        return datetime.now(UTC)
