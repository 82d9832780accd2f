"""Which routes need which token: the check (``web.access``), its scheme, its refusals.

A route declared with an ``Access`` is wrapped in its guard, documented with its
security scheme, and lists the errors the guard answers (no token: 401 unauthorised;
none configured: 403 closed), so the document says what the door does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from web.access import reviewers_only, staff_only
from web.errors import ErrorId, Handler


@dataclass(frozen=True)
class Access:
    guard: Callable[[Handler], Handler]
    security: tuple[str, ...]
    errors: frozenset[ErrorId] = frozenset({ErrorId.UNAUTHORISED, ErrorId.CLOSED})

    def __call__(self, handler: Handler) -> Handler:
        return self.guard(handler)


REVIEWERS = Access(reviewers_only, ("reviewer",))
STAFF = Access(staff_only, ("staff", "reviewer"))  # a reviewer is staff too

SECURITY_SCHEMES: dict[str, Any] = {
    "reviewer": {
        "type": "http",
        "scheme": "bearer",
        "description": "The reviewer token (HOTLINE_REVIEWER_TOKEN): recordings and "
        "transcripts are personal data, for authorised reviewers only.",
    },
    "staff": {
        "type": "http",
        "scheme": "bearer",
        "description": "The staff token (HOTLINE_STAFF_TOKEN) of agents and supervisors; the "
        "reviewer token works too. Residents' names, rooms and phones are personal data.",
    },
}
