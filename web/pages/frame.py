"""What every staff page shares: who is signed in, the menu, times in the company's zone,
numbers masked for the role, and the refusal pages.

A page is rendered for a session only: an API token has no pages (it is a program, not a
person at a screen), so it is sent to the API document, as the home page does.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from aiohttp import web

from crm.staff import Role
from web.appkeys import CONFIG, QUEUE_FACTS
from web.auth import Principal, principal_of
from web.masking import mask_record
from web.templates import render

R = TypeVar("R")


def signed_in(request: web.Request) -> Principal:
    principal = principal_of(request)
    if principal.session is None:
        raise web.HTTPFound("/api/openapi.json")
    return principal


def page(request: web.Request, template: str, *, status: int = 200, **context: Any) -> web.Response:
    """``template`` with the frame's context: the user, the session's CSRF token, the menu."""
    principal = signed_in(request)
    session = principal.session
    assert session is not None  # signed_in sent a token elsewhere
    zone = company_zone(request)
    return render(
        request,
        template,
        status=status,
        user=session.user,
        csrf=session.csrf,
        here=request.path,
        local=lambda at, style="datetime": local_text(at, zone, style),
        **context,
    )


def refusal(request: web.Request, status: int, title: str, message: str) -> web.Response:
    """A refused page as a page (403, 404), not the API's JSON: a person is reading it."""
    return page(request, "refused.html", status=status, title_key=title, message=message)


def company_zone(request: web.Request) -> ZoneInfo:
    return ZoneInfo(request.app[CONFIG].company.timezone)


def local_text(at: datetime | None, zone: ZoneInfo, style: str = "datetime") -> str:
    """A UTC instant as the office reads it: in the company's zone, to the second."""
    if at is None:
        return ""
    here = at.astimezone(zone)
    if style == "time":
        return here.strftime("%H:%M:%S")
    return here.strftime("%Y-%m-%d %H:%M:%S")


def day_window(
    first: date | None, last: date | None, zone: ZoneInfo
) -> tuple[datetime | None, datetime | None]:
    """Calendar days in the company's zone as a UTC window ``[first 00:00, last+1 00:00)``."""
    since = None if first is None else datetime.combine(first, time(), zone)
    until = None if last is None else datetime.combine(last + timedelta(days=1), time(), zone)
    return since, until


async def masked_calls(request: web.Request, rows: Sequence[R], key: str = "id") -> list[R]:
    """Records about calls (their id in ``key``) with numbers and names masked but on the
    calls the user took.

    The rule is web/masking.py's (a supervisor sees all; an agent their own calls; an
    admin nothing in full), applied here because a page renders records, not the JSON
    that middleware reads.
    """
    principal = principal_of(request)
    if principal.role is Role.SUPERVISOR:
        return list(rows)
    taken: set[int] = set()
    if principal.role is Role.AGENT and principal.agent_id is not None:
        ids = [getattr(row, key) for row in rows]
        taken = await request.app[QUEUE_FACTS].answered_by(principal.agent_id, ids)
    return [row if getattr(row, key) in taken else mask_record(row) for row in rows]


def link_with(request: web.Request, **change: Any) -> str:
    """This page's address with some query values changed (paging keeps the filters)."""
    values = {k: v for k, v in request.query.items() if v != ""}
    for key, value in change.items():
        if value is None:
            values.pop(key, None)
        else:
            values[key] = str(value)
    return str(request.rel_url.with_query(values))
