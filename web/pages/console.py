"""The agent console (坐席工作台): their phone's state and the screen pop (issue 15).

The page is a frame; what changes comes over the agent's own feed (web/console.py) and
state changes go to the same ``POST /api/agents/{id}/state`` the API offers, with the
session's CSRF token, so the page can do nothing the API would refuse.
"""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from crm.case_records import CaseRecord
from crm.cases import CaseQuery
from web.appkeys import CONFIG, ROSTER
from web.auth import principal_of
from web.cases import CRM
from web.console import OPEN
from web.i18n import Words, language_of
from web.pages.frame import page, refusal


def add_console_page(app: web.Application) -> None:
    app.router.add_get("/console", console)


async def console(request: web.Request) -> web.StreamResponse:
    principal = principal_of(request)
    agent = request.app[ROSTER].agents.get(principal.agent_id or 0)
    if agent is None:
        words = Words(language_of(request))
        return refusal(request, 403, "forbidden_title", words("console_no_agent"))
    mine, _ = await request.app[CRM].cases.list(
        CaseQuery(owner_agent_id=agent.id, status=OPEN, limit=50)
    )
    return page(
        request,
        "console.html",
        agent=agent.view(),
        pause_reasons=request.app[CONFIG].acd.pause_reasons,
        my_cases=sorted(mine, key=_most_urgent),
    )


def _most_urgent(case: CaseRecord) -> tuple[bool, datetime]:
    """Overdue first, then the nearest open deadline; cases without one last."""
    due = [d.due_at for d in case.deadlines if d.met_at is None and d.cancelled_at is None]
    return (not case.overdue, min(due) if due else datetime.max.replace(tzinfo=UTC))
