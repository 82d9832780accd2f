"""Staff identities for tests: API tokens issued in the service's own database.

Tests act as a supervisor unless they say otherwise (the hotline fixture's client sends
``SUPERVISOR``); a test of who may do what issues its own users and tokens. Passwords
are hashed with argon2 at its cheapest cost so a suite of sign-ins stays fast.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from argon2 import PasswordHasher

from crm.staff import Role
from web.appkeys import STAFF
from web.auth import PRINCIPAL, Principal

SUPERVISOR_TOKEN = "hlt_test-supervisor-token-not-a-secret"
SUPERVISOR = {"Authorization": f"Bearer {SUPERVISOR_TOKEN}"}


def cheap_hasher() -> PasswordHasher:
    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


async def issue_token(
    app: web.Application,
    role: Role,
    *,
    name: str | None = None,
    secret: str | None = None,
) -> dict[str, str]:
    """An ``Authorization`` header for a new token of ``role`` (reused if it exists)."""
    staff = app[STAFF]
    secret = secret or f"hlt_{secrets.token_urlsafe(24)}"
    now = datetime.now(UTC)
    if await staff.token_for(secret, at=now) is None:
        await staff.issue_token(
            name or f"test-{role}-{secrets.token_hex(4)}",
            role,
            secret,
            expires_at=None,
            at=now,
        )
    return {"Authorization": f"Bearer {secret}"}


ADMIN_TOKEN = "hlt_test-admin-token-not-a-secret"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def issue_test_tokens(app: web.Application) -> None:
    """The supervisor's and the admin's tokens every test client may use."""
    await issue_token(app, Role.SUPERVISOR, name="tests", secret=SUPERVISOR_TOKEN)
    await issue_token(app, Role.ADMIN, name="tests-admin", secret=ADMIN_TOKEN)


def entitled(method: str, path: str) -> dict[str, str]:
    """Credentials of a user who may make this request: agents' records are the admin's."""
    if method != "GET" and path.startswith("/api/agents") and not path.endswith("/state"):
        return ADMIN
    return SUPERVISOR


def signed_in_as(principal: Principal) -> Middleware:
    """A stand-in for web/auth.py's guard, for apps that mount handlers alone.

    The handlers read who acts from the request (web/actors.py); the real guard that
    decides it is tested in test_access.py, so these apps skip it and name the caller.
    """

    @web.middleware
    async def stand_in_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        request[PRINCIPAL] = principal
        return await handler(request)

    return stand_in_guard


# The token every test client of the full service sends (issue_test_tokens), as the guard
# would find it: an integration, so a ``by`` in the body is recorded beside its name.
TESTS_TOKEN = Principal(name="tests", role=Role.SUPERVISOR, user_id=None, agent_id=None, token_id=1)
