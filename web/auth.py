"""Who is asking, and may they: the one gate every request passes (service standards §6).

A request names its user with an API token (``Authorization: Bearer …``, RFC 6750: the
scheme in any case, nothing else accepted) or with the session cookie the login page
set. ``guard`` finds the route's permission in web/permissions.py (a route nobody listed
is refused), identifies the user and checks their role. A request made with the cookie
is one a browser may have been tricked into sending, so when it changes anything it must
also come from our own origin and carry the session's CSRF token; a bearer token is
never sent by a browser on its own, so it needs neither. A body sent to the JSON API must
say it is JSON: a foreign page can post ``text/plain`` without asking, but not JSON.
"""

from __future__ import annotations

import hmac
import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote, urlsplit

from aiohttp import web

from crm.staff import Role, SessionRecord, TokenRecord
from telephony.config import AccessConfig, CookieSecurity
from web.appkeys import CLOCK, CONFIG, STAFF
from web.audit import record_access
from web.errors import ErrorId, Handler, error
from web.permissions import Permission, allowed, permission_for
from web.proxies import request_scheme
from web.templates import render

log = logging.getLogger(__name__)

SESSION_COOKIE = "hotline_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# RFC 6750 §2.1 b68token.
_TOKEN68 = re.compile(r"^[A-Za-z0-9._~+/-]+=*$")
# Routes that take a body other than JSON (the roster file) check its type themselves.
OWN_MEDIA_TYPES = frozenset({"/api/residents/import"})
# Permissions whose refusal by role is written in the access audit.
AUDITED = frozenset({Permission.HEAR_CALLS})


@dataclass(frozen=True, slots=True)
class Principal:
    """The user (or integration token) a request acts for."""

    name: str
    role: Role
    user_id: int | None
    agent_id: int | None
    token_id: int | None = None
    session: SessionRecord | None = None

    @property
    def by_cookie(self) -> bool:
        return self.session is not None

    @property
    def label(self) -> str:
        """How audit rows and case histories name them."""
        return self.name if self.token_id is None else f"token:{self.name}"


PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("principal", Principal)


def principal_of(request: web.Request) -> Principal:
    """The guard's finding; a handler behind a non-open route always has one."""
    return request[PRINCIPAL]


class Refusal(Exception):
    def __init__(self, status: int, error_id: str, message: str, challenge: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.error_id = error_id
        self.message = message
        self.challenge = challenge


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    resource = request.match_info.route.resource
    if resource is None:  # 404 or 405: nothing is served, nothing to guard
        return await handler(request)
    needed = permission_for(request.method, resource.canonical)
    if needed is None:
        log.error("route %s %s has no permission entry: refused", request.method, resource)
        return error(403, ErrorId.FORBIDDEN, "this route is closed")
    if needed is Permission.OPEN:
        return await handler(request)
    try:
        principal = await identify(request)
        if principal is None:
            raise Refusal(401, "unauthorised", "sign in, or send an API token", _challenge())
        if request.method not in SAFE_METHODS or resource.canonical in WEBSOCKETS:
            check_origin(request, principal)
        if request.method not in SAFE_METHODS:
            await check_csrf(request, principal)
            check_media_type(request, resource.canonical)
        if not allowed(principal.role, needed):
            if needed in AUDITED:  # a refused reach for recordings is worth an admin's look
                await record_access(
                    request,
                    principal,
                    str(needed),
                    request.path,
                    granted=False,
                    reason=f"a {principal.role} may not",
                )
            raise Refusal(403, "forbidden", f"the {principal.role} role may not do this ({needed})")
    except Refusal as refusal:
        return refused(request, refusal)
    request[PRINCIPAL] = principal
    return await handler(request)


WEBSOCKETS = frozenset({"/api/live", "/api/console/feed"})  # a foreign page may not open them


def refused(request: web.Request, refusal: Refusal) -> web.StreamResponse:
    """A page is sent to the login page (and back after); the API answers the error."""
    if refusal.status == 401 and not request.path.startswith("/api/"):
        expired = SESSION_COOKIE in request.cookies
        target = f"/login?next={quote(request.path_qs, safe='')}"
        if expired:
            target += "&expired=1"
        redirect = see_other(target)
        if expired:
            redirect.del_cookie(SESSION_COOKIE, path="/")
        return redirect
    if refusal.status == 403 and _is_page(request):
        return render(request, "forbidden.html", status=403)
    response = error(refusal.status, refusal.error_id, refusal.message)
    if refusal.challenge:
        response.headers["WWW-Authenticate"] = refusal.challenge
    return response


def _is_page(request: web.Request) -> bool:
    """A browser asked for a page (not the API, not a form post): it gets a page back."""
    return request.method == "GET" and not request.path.startswith("/api/")


def see_other(location: str) -> web.Response:
    """A 303 to ``location`` (a response to return, not an exception to raise)."""
    return web.Response(status=303, headers={"Location": location})


def _challenge(error_code: str = "") -> str:
    return 'Bearer realm="hotline"' + (f', error="{error_code}"' if error_code else "")


async def identify(request: web.Request) -> Principal | None:
    """The user the request's token or cookie names; None when it names nobody."""
    staff = request.app[STAFF]
    now = request.app[CLOCK].now()
    header = request.headers.get("Authorization")
    if header is not None:
        token = await staff.token_for(bearer_token(header), at=now)
        if token is None:
            raise Refusal(
                401,
                "unauthorised",
                "the API token is unknown, revoked or expired",
                _challenge("invalid_token"),
            )
        return _token_principal(token)
    secret = request.cookies.get(SESSION_COOKIE)
    if not secret:
        return None
    idle = timedelta(minutes=request.app[CONFIG].access.session_idle_minutes)
    session = await staff.session_for(secret, at=now, idle=idle)
    if session is None:
        return None
    user = session.user
    return Principal(user.name, user.role, user.id, user.agent_id, session=session)


def _token_principal(token: TokenRecord) -> Principal:
    return Principal(token.name, token.role, None, None, token_id=token.id)


def bearer_token(header: str) -> str:
    """The token of an ``Authorization: Bearer <token>`` header (RFC 6750 §2.1)."""
    scheme, _, credentials = header.strip().partition(" ")
    token = credentials.strip()
    if scheme.lower() != "bearer" or not _TOKEN68.fullmatch(token):
        raise Refusal(
            401,
            "unauthorised",
            "the Authorization header must be 'Bearer <token>'",
            _challenge("invalid_request"),
        )
    return token


def own_origin(request: web.Request) -> str:
    return f"{request_scheme(request)}://{request.host}"


def check_origin(request: web.Request, principal: Principal | None) -> None:
    """A browser's request must come from our own pages (or an origin the admin allowed).

    Browsers send ``Origin`` on every state-changing request and websocket; a client
    with a bearer token and no ``Origin`` is a program, not a page.
    """
    origin = request.headers.get("Origin")
    if origin is None:
        referer = request.headers.get("Referer")
        if referer is not None:
            parts = urlsplit(referer)
            origin = f"{parts.scheme}://{parts.netloc}"
    if origin is None:
        if principal is not None and not principal.by_cookie:
            return
        if request.method in SAFE_METHODS:  # a websocket from a program holding the cookie
            return
        raise Refusal(403, "bad-origin", "a browser request must say where it comes from")
    allowed_origins = {own_origin(request), *request.app[CONFIG].access.allowed_origins}
    if origin not in allowed_origins:
        raise Refusal(403, "bad-origin", f"requests from {origin} are not accepted")


async def check_csrf(request: web.Request, principal: Principal) -> None:
    """Scripts send the token as a header, forms (sign out) as a field."""
    if principal.session is None:
        return
    given = request.headers.get(CSRF_HEADER, "")
    if not given and request.content_type == "application/x-www-form-urlencoded":
        field = (await request.post()).get(CSRF_FIELD)
        given = field if isinstance(field, str) else ""
    if not given or not hmac.compare_digest(given.encode(), principal.session.csrf.encode()):
        raise Refusal(403, "csrf", f"the {CSRF_HEADER} header must carry this session's CSRF token")


def check_media_type(request: web.Request, template: str) -> None:
    if not request.path.startswith("/api/") or template in OWN_MEDIA_TYPES:
        return
    if request.body_exists and request.content_type != "application/json":
        raise Refusal(
            415,
            "unsupported-media-type",
            f"send the body as application/json, not {request.content_type}",
        )


def cookie_secure(request: web.Request, access: AccessConfig) -> bool:
    if access.secure_cookies is CookieSecurity.ALWAYS:
        return True
    if access.secure_cookies is CookieSecurity.NEVER:
        return False
    return request_scheme(request) == "https"


SECURITY_SCHEMES: dict[str, Any] = {
    "token": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token for an integration (hotline token create NAME --role R), "
        "acting with that role.",
    },
    "session": {
        "type": "apiKey",
        "in": "cookie",
        "name": SESSION_COOKIE,
        "description": "A signed-in user's session (the login page). A request that changes "
        "anything also sends X-CSRF-Token (from GET /api/me) and comes from our Origin.",
    },
}
