"""Who am I (for pages and scripts), and the access audit for admins."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from aiohttp import web

from crm.repository import DOCUMENTED_FIELDS
from crm.staff import AuditRecord, Role
from web.appkeys import STAFF
from web.auth import principal_of
from web.errors import ErrorId
from web.params import Limit, Offset, Params
from web.replies import json_reply
from web.routes import Reply, add_routes, route


@dataclass(frozen=True, slots=True)
class Me:
    """The user (or API token) the request acts for."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    name: str
    """User or token name."""
    role: Role
    """agent, supervisor or admin."""
    agent_id: int | None
    """The agent record of an agent user."""
    via: str
    """session (signed in at the login page) or token."""
    csrf_token: str | None
    """What a page sends as X-CSRF-Token with every change; null for a token."""
    session_expires_at: datetime | None
    """When the session ends however busy (the absolute limit); null for a token."""


class AuditQuery(Params):
    limit: Limit = 100
    offset: Offset = 0


@dataclass(frozen=True, slots=True)
class AuditPage:
    """Access decisions, newest first."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    items: tuple[AuditRecord, ...]
    """The rows on this page."""


@route(
    "GET",
    "/api/me",
    operation_id="getMe",
    summary="The signed-in user or token",
    replies={200: Reply("Who the request acts for.", Me)},
)
async def me(request: web.Request) -> web.StreamResponse:
    principal = principal_of(request)
    session = principal.session
    return json_reply(
        Me(
            name=principal.name,
            role=principal.role,
            agent_id=principal.agent_id,
            via="session" if session else "token",
            csrf_token=session.csrf if session else None,
            session_expires_at=session.expires_at if session else None,
        )
    )


@route(
    "GET",
    "/api/audit",
    operation_id="listAccessAudit",
    summary="The access audit, newest first (admins)",
    replies={200: Reply("One page of access decisions.", AuditPage)},
    errors=[ErrorId.STORAGE_UNAVAILABLE],
)
async def audit_log(request: web.Request, query: AuditQuery) -> web.StreamResponse:
    rows = await request.app[STAFF].audit_log(limit=query.limit, offset=query.offset)
    return json_reply(AuditPage(tuple(rows)))


def add_account_routes(app: web.Application) -> None:
    add_routes(app, (me, audit_log))
