"""One case as a supervisor reviews it: what it is, its deadlines, its calls and call-backs,
and every change with who made it. Read-only: working a case is the agent console's.

A call's page links here, and here each call links back to its page, so a reviewer goes
from what was said to what was done about it and back.
"""

from __future__ import annotations

from aiohttp import web

from crm.exceptions import InvalidQuery, NotFound
from crm.rules import Kind
from crm.staff import Role
from web.auth import principal_of
from web.cases import CRM
from web.masking import mask_record
from web.pages.frame import page, refusal
from web.params import Params, RecordId, parse_params


class CasePagePath(Params):
    id: RecordId


def add_case_page(app: web.Application) -> None:
    app.router.add_get("/cases/{id}", case_view)


async def case_view(request: web.Request) -> web.StreamResponse:
    try:
        case_id = parse_params(CasePagePath, request.match_info).id
        case = await request.app[CRM].cases.get(case_id)
    except (InvalidQuery, NotFound):
        return refusal(request, 404, "not_found_title", request.path)
    principal = principal_of(request)
    owner = principal.role is Role.AGENT and case.owner_agent_id == principal.agent_id
    if principal.role is not Role.SUPERVISOR and not owner:
        case = mask_record(case)  # web/masking.py's rule: the number for the owner only
    return page(
        request,
        "case.html",
        case=case,
        kinds=Kind.LABELS,
        timeline=await request.app[CRM].cases.timeline(case_id),
    )
