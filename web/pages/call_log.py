"""The call log page: every call, filtered the ways a supervisor reviews service (issue 14).

Filters are a GET form, so a filtered log is a link a supervisor can keep or send. Dates
are calendar days in the company's zone (what the office means by "yesterday"), turned
into a UTC window here. A filter that cannot be read is shown on the page above an
empty log, never a JSON error a person would have to decode.
"""

from __future__ import annotations

from datetime import date
from math import ceil
from typing import Literal

from aiohttp import web
from pydantic import Field

from crm.call_review import CallReview, CallRow, ReviewFilters, Sort
from crm.exceptions import InvalidQuery
from crm.rules import Kind
from telephony.session import EndReason
from web.appkeys import CONFIG, ROSTER
from web.pages.frame import company_zone, day_window, link_with, masked_calls, page
from web.params import FilterText, Params, PositiveId, TrueOrFalse, parse_params

PAGE_SIZE = 50
CALL_REVIEW: web.AppKey[CallReview] = web.AppKey("call_review", CallReview)


class CallLogQuery(Params):
    """The log's filters as the form sends them; an empty field is no filter."""

    since: date | None = Field(None, description="First day (company time), YYYY-MM-DD.")
    until: date | None = Field(None, description="Last day (company time), YYYY-MM-DD.")
    queue: FilterText | None = None
    agent: PositiveId | None = None
    caller: FilterText | None = None
    direction: Literal["in", "out"] | None = None
    end: FilterText | None = None
    rings: Literal["within", "late"] | None = None
    recording: TrueOrFalse | None = None
    transcript: TrueOrFalse | None = None
    kind: FilterText | None = None
    sort: Sort = Sort.NEWEST
    page: PositiveId = 1


def add_call_log_page(app: web.Application) -> None:
    app.router.add_get("/calls", call_log)


async def call_log(request: web.Request) -> web.StreamResponse:
    problem: InvalidQuery | None = None
    try:
        query = parse_params(CallLogQuery, request.query)
    except InvalidQuery as bad:
        problem, query = bad, CallLogQuery.model_validate({})
    config = request.app[CONFIG]
    rows: list[CallRow] = []
    total = 0
    if problem is None:
        if query.since and query.until and query.until < query.since:
            problem = InvalidQuery("until", "must not be before the first day")
        elif query.kind is not None and query.kind not in Kind.ALL:
            problem = InvalidQuery("kind", f"must be one of {', '.join(Kind.ALL)}")
        else:
            found, total = await request.app[CALL_REVIEW].page(
                _filters(query, request), sort=query.sort,
                limit=PAGE_SIZE, offset=(query.page - 1) * PAGE_SIZE,
            )  # fmt: skip
            rows = await masked_calls(request, found)
    agents = sorted((a.view() for a in request.app[ROSTER].agents.values()), key=lambda a: a.name)
    pages = max(1, ceil(total / PAGE_SIZE))
    return page(
        request,
        "call_log.html",
        query=query,
        rows=rows,
        total=total,
        pages=pages,
        problem=problem,
        queues={name: q.label for name, q in config.queues.items()},
        agents=[(a.id, a.name) for a in agents],
        kinds=Kind.LABELS,
        ends=END_REASONS,
        sorts=list(Sort),
        rings_s=config.ring.rings_deadline_ms / 1000,
        link=lambda **change: link_with(request, **change),
    )


END_REASONS = tuple(v for k, v in vars(EndReason).items() if k.isupper())


def _filters(query: CallLogQuery, request: web.Request) -> ReviewFilters:
    since, until = day_window(query.since, query.until, company_zone(request))
    return ReviewFilters(
        since=since,
        until=until,
        queue=query.queue,
        agent_id=query.agent,
        caller=query.caller,
        direction=query.direction,
        end_reason=query.end,
        within_rings=None if query.rings is None else query.rings == "within",
        rings_deadline_ms=request.app[CONFIG].ring.rings_deadline_ms,
        has_recording=query.recording,
        has_transcript=query.transcript,
        case_kind=query.kind,
    )
