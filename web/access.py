"""Who may read what over HTTP (service standards §6: personal data stays confidential).

Two bearer tokens, both set in the environment and never in the file: the staff token
(agents and supervisors: cases, residents, call-backs) and the reviewer token (also
recordings and transcripts). A reviewer is staff too. With no token configured a door is
closed to everyone rather than open to anyone.
"""

from __future__ import annotations

import functools
import hmac

from aiohttp import web

from web.appkeys import CONFIG
from web.errors import Handler, error


def _presented(request: web.Request) -> bytes:
    return request.headers.get("Authorization", "").removeprefix("Bearer ").strip().encode()


def _matches(given: bytes, token: str | None) -> bool:
    return token is not None and hmac.compare_digest(given, token.encode())


def reviewers_only(handler: Handler) -> Handler:
    @functools.wraps(handler)
    async def checked(request: web.Request) -> web.StreamResponse:
        token = request.app[CONFIG].access.reviewer_token
        if token is None:
            return error(
                403,
                "closed",
                "recordings and transcripts are closed: no reviewer token is configured "
                "(set HOTLINE_REVIEWER_TOKEN)",
            )
        if not _matches(_presented(request), token):
            return _unauthorised("recordings and transcripts need the reviewer token")
        return await handler(request)

    return checked


def staff_only(handler: Handler) -> Handler:
    @functools.wraps(handler)
    async def checked(request: web.Request) -> web.StreamResponse:
        access = request.app[CONFIG].access
        if access.staff_token is None and access.reviewer_token is None:
            return error(
                403,
                "closed",
                "residents and cases are closed: no staff token is configured "
                "(set HOTLINE_STAFF_TOKEN)",
            )
        given = _presented(request)
        if not (_matches(given, access.staff_token) or _matches(given, access.reviewer_token)):
            return _unauthorised("residents' data needs the staff token")
        return await handler(request)

    return checked


def _unauthorised(message: str) -> web.Response:
    response = error(401, "unauthorised", message)
    response.headers["WWW-Authenticate"] = 'Bearer realm="hotline"'
    return response
