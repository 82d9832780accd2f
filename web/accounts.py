"""Who am I (for pages and scripts), and the access audit for admins."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from web.appkeys import STAFF
from web.auth import principal_of
from web.calls import _int_param
from web.errors import answer_errors


def add_account_routes(app: web.Application) -> None:
    app.router.add_get("/api/me", me)
    app.router.add_get("/api/audit", audit_log)


async def me(request: web.Request) -> web.StreamResponse:
    """The signed-in user; a page's script reads its CSRF token here."""
    principal = principal_of(request)
    session = principal.session
    return web.json_response(
        {
            "name": principal.name,
            "role": principal.role,
            "agent_id": principal.agent_id,
            "via": "session" if session else "token",
            "csrf_token": session.csrf if session else None,
            "session_expires_at": session.expires_at.isoformat() if session else None,
        }
    )


@answer_errors
async def audit_log(request: web.Request) -> web.StreamResponse:
    query = request.query
    rows = await request.app[STAFF].audit_log(
        limit=_int_param(query, "limit", 100, 1, 500),
        offset=_int_param(query, "offset", 0, 0, 2**31 - 1),
    )
    return web.json_response(
        {
            "items": [
                {
                    "id": r.id,
                    "at": r.at.isoformat(),
                    "user_id": r.user_id,
                    "actor": r.actor,
                    "address": r.address,
                    "action": r.action,
                    "target": r.target,
                    "granted": r.granted,
                    "reason": r.reason,
                }
                for r in rows
            ]
        }
    )


def account_openapi_paths() -> dict[str, Any]:
    ok = {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}
    refused = {"description": "No or wrong credentials (error_id unauthorised)."}
    return {
        "/api/me": {
            "get": {
                "operationId": "getMe",
                "summary": "The signed-in user or token: name, role, agent, CSRF token.",
                "responses": {"200": ok, "401": refused},
            }
        },
        "/api/audit": {
            "get": {
                "operationId": "listAccessAudit",
                "summary": "The access audit, newest first (admins).",
                "parameters": [
                    {"name": n, "in": "query", "schema": {"type": "integer"}}
                    for n in ("limit", "offset")
                ],
                "responses": {
                    "200": ok,
                    "400": {"description": "A bad limit or offset (invalid-query)."},
                    "401": refused,
                    "403": {"description": "Not an admin (forbidden)."},
                },
            }
        },
    }
