"""The search page: words said in calls (and written in cases), found in Chinese, each hit
shown on the line it was said, with who said it and when, opening the call at that moment.

Reads the same ``CallSearch`` as ``GET /api/search`` under the same rule (an agent finds
the calls they took; every search is in the access audit, long numbers masked), and
renders the marks as <mark> around escaped text, so a transcript can never inject markup.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from aiohttp import web
from pydantic import Field

from crm.exceptions import InvalidQuery
from crm.rules import Kind
from crm.search import CallHit, Marks, SearchPage
from web.appkeys import CONFIG
from web.audit import record_access
from web.auth import principal_of
from web.pages.frame import company_zone, day_window, link_with, masked_calls, page
from web.params import FilterText, Params, PositiveId, parse_params
from web.search import SEARCH, audited_query, only_agent_of

PAGE_SIZE = 20


class SearchPageQuery(Params):
    q: str | None = Field(None, max_length=200)
    since: date | None = None
    until: date | None = None
    queue: FilterText | None = None
    page: PositiveId = 1


@dataclass(frozen=True, slots=True)
class Piece:
    """A run of a line's text, marked or not (the template escapes both)."""

    text: str
    marked: bool


def pieces(text: str, marks: Marks) -> list[Piece]:
    out: list[Piece] = []
    at = 0
    for start, end in marks:
        if start > at:
            out.append(Piece(text[at:start], False))
        out.append(Piece(text[start:end], True))
        at = end
    if at < len(text):
        out.append(Piece(text[at:], False))
    return out


def add_search_page(app: web.Application) -> None:
    app.router.add_get("/search", search_page)


async def search_page(request: web.Request) -> web.StreamResponse:
    problem: InvalidQuery | None = None
    found: SearchPage | None = None
    calls: list[CallHit] = []
    try:
        query = parse_params(SearchPageQuery, request.query)
    except InvalidQuery as bad:
        problem, query = bad, SearchPageQuery.model_validate({})
    if problem is None and query.q:
        principal = principal_of(request)
        since, until = day_window(query.since, query.until, company_zone(request))
        try:
            found = await request.app[SEARCH].search(
                query.q, since=since, until=until, queue=query.queue,
                only_agent_id=only_agent_of(principal),
                limit=PAGE_SIZE, offset=(query.page - 1) * PAGE_SIZE,
            )  # fmt: skip
        except InvalidQuery as bad:
            problem = bad
        else:
            what = audited_query(query.q, queue=query.queue, since=since, until=until)
            await record_access(request, principal, "search", what, granted=True)
            calls = await masked_calls(request, list(found.items), key="call_id")
    total = max(found.total, found.cases_total) if found else 0
    return page(
        request,
        "search.html",
        query=query,
        found=found,
        calls=calls,
        problem=problem,
        pieces=pieces,
        kinds=Kind.LABELS,
        queues={name: q.label for name, q in request.app[CONFIG].queues.items()},
        pages=max(1, -(-total // PAGE_SIZE)),
        link=lambda **change: link_with(request, **change),
    )
