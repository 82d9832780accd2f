"""Signing in and out: the login page, cookie sessions, lock-out after failed attempts.

The session cookie carries a random secret (the database keeps only its hash): HttpOnly
so a page's script cannot read it, SameSite=Lax so another site's form does not send it,
Secure behind TLS. A session ends when idle too long or at its absolute limit, whatever
the activity. The login form is protected from cross-site posting too (someone else's
page signing you in as them): its hidden token must match a cookie set with the form.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from datetime import timedelta
from zoneinfo import ZoneInfo

from aiohttp import web

from crm.staff import LoginOutcome, LoginResult, UserRecord
from web.appkeys import CLOCK, CONFIG, STAFF
from web.audit import record_access
from web.auth import (
    CSRF_FIELD,
    SESSION_COOKIE,
    Principal,
    Refusal,
    check_origin,
    cookie_secure,
    principal_of,
    see_other,
)
from web.i18n import Words, language_of
from web.proxies import client_address
from web.templates import render

log = logging.getLogger(__name__)

LOGIN_COOKIE = "hotline_login"
NAME_MAX = 64
PASSWORD_MAX = 1024


def add_login_routes(app: web.Application) -> None:
    app.router.add_get("/login", login_page)
    app.router.add_post("/login", sign_in)
    app.router.add_post("/logout", sign_out)


def safe_next(raw: str | None) -> str:
    """Where to go after signing in: only a path on this site (no ``//host`` or scheme)."""
    if not raw or not raw.startswith("/") or raw.startswith("//") or "\\" in raw:
        return "/"
    return raw


def _form_page(
    request: web.Request,
    *,
    status: int = 200,
    name: str = "",
    problem: str = "",
    notice: str = "",
) -> web.Response:
    token = secrets.token_urlsafe(24)
    response = render(
        request,
        "login.html",
        status=status,
        csrf=token,
        name=name,
        problem=problem,
        notice=notice,
        next=safe_next(request.query.get("next")),
    )
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        max_age=3600,
        path="/login",
        httponly=True,
        samesite="Strict",
        secure=cookie_secure(request, request.app[CONFIG].access),
    )
    return response


async def login_page(request: web.Request) -> web.StreamResponse:
    t = Words(language_of(request))
    notice = ""
    if request.query.get("expired"):
        notice = t("expired")
    elif request.query.get("signed_out"):
        notice = t("signed_out")
    return _form_page(request, notice=notice)


async def sign_in(request: web.Request) -> web.StreamResponse:
    t = Words(language_of(request))
    try:
        check_origin(request, None)
    except Refusal as refusal:
        return _form_page(request, status=403, problem=refusal.message)
    form = await request.post()
    given = form.get(CSRF_FIELD)
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not isinstance(given, str) or not expected or not hmac.compare_digest(given, expected):
        return _form_page(request, status=403, problem=t("form_expired"))
    name, password = form.get("name"), form.get("password")
    if not isinstance(name, str) or not isinstance(password, str):
        return _form_page(request, status=400, problem=t("wrong_login"))
    name = name.strip()[:NAME_MAX]
    if len(password) > PASSWORD_MAX:
        return _form_page(request, status=401, name=name, problem=t("wrong_login"))
    staff, now = request.app[STAFF], request.app[CLOCK].now()
    result = await staff.check_login(name, password, at=now)
    user = result.user
    if result.outcome is LoginOutcome.OK and user is not None:
        return await _open(request, user.id)
    if result.outcome is LoginOutcome.LOCKED and result.locked_until is not None:
        tz = ZoneInfo(request.app[CONFIG].company.timezone)
        until = result.locked_until.astimezone(tz).strftime("%H:%M")
        response = _form_page(request, status=429, name=name, problem=t("locked", until=until))
        seconds = max(1, int((result.locked_until - now).total_seconds()))
        response.headers["Retry-After"] = str(seconds)
    else:
        response = _form_page(request, status=401, name=name, problem=t("wrong_login"))
    log.info("sign-in refused (%s) from %s", result.outcome, client_address(request))
    await _audit_sign_in(request, result, granted=False)
    return response


def _as_principal(user: UserRecord) -> Principal:
    return Principal(user.name, user.role, user.id, user.agent_id)


async def _audit_sign_in(request: web.Request, result: LoginResult, *, granted: bool) -> None:
    """A refused sign-in names the account only when it exists: a password typed into
    the name field must not land in the audit table."""
    principal = _as_principal(result.user) if result.user is not None else None
    reason = "" if granted else str(result.outcome)
    await record_access(request, principal, "sign-in", "session", granted=granted, reason=reason)


async def _open(request: web.Request, user_id: int) -> web.StreamResponse:
    access = request.app[CONFIG].access
    staff, now = request.app[STAFF], request.app[CLOCK].now()
    absolute = timedelta(hours=access.session_max_hours)
    secret = secrets.token_urlsafe(32)
    session = await staff.open_session(
        user_id, secret, secrets.token_urlsafe(24), at=now, absolute=absolute
    )
    await record_access(request, _as_principal(session.user), "sign-in", "session", granted=True)
    response = see_other(safe_next(request.query.get("next")))
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=int(absolute.total_seconds()),
        path="/",
        httponly=True,
        samesite="Lax",
        secure=cookie_secure(request, access),
    )
    response.del_cookie(LOGIN_COOKIE, path="/login")
    return response


async def sign_out(request: web.Request) -> web.StreamResponse:
    principal = principal_of(request)
    secret = request.cookies.get(SESSION_COOKIE)
    if principal.by_cookie and secret:
        await request.app[STAFF].close_session(secret)
    response = see_other("/login?signed_out=1")
    response.del_cookie(SESSION_COOKIE, path="/")
    return response
