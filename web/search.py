"""HTTP API for searching transcripts and case text (GET /api/search).

A search reads transcripts, the most personal data the hotline keeps, so it follows the
transcript rules (web/privacy.py, standards §6): a supervisor searches every call, an
agent only the calls they took (the same clause decides: crm.queue_facts.took_call), an
admin none (the permissions table). Every search is in the access audit, with numbers in
the query masked as an admin would see them.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from aiohttp import web
from pydantic import AfterValidator, Field, ValidationInfo

from crm import validation
from crm.exceptions import InvalidInput, InvalidQuery
from crm.phones import masked
from crm.search import MAX_QUERY, CallSearch, SearchPage, search_phrase
from crm.staff import Role
from web.audit import record_access
from web.auth import Principal, principal_of
from web.errors import ErrorId
from web.params import FilterText, WindowQuery
from web.replies import json_reply
from web.routes import Reply, add_routes, route

SEARCH: web.AppKey[CallSearch] = web.AppKey("search", CallSearch)

_NUMBER = re.compile(r"\d{7,}")
# No agent has this id: an agent account without its agent finds no call.
_NOBODY = 0


def _search_text(value: str, info: ValidationInfo) -> str:
    try:
        checked = validation.text("q", value, max_len=MAX_QUERY)
    except InvalidInput as err:
        raise InvalidQuery("q", err.reason) from None
    search_phrase(checked)
    assert checked is not None
    return checked


SearchText = Annotated[
    str, AfterValidator(_search_text), Field(json_schema_extra={"maxLength": MAX_QUERY})
]


class SearchQuery(WindowQuery):
    """The window is of calls' started_at and of cases' opened_at."""

    q: SearchText = Field(
        description="The words to find (Chinese, letters, digits; a phrase, in order). One "
        "Chinese character finds every text that has it."
    )
    queue: FilterText | None = Field(
        None, description="Calls of this queue only; cases with a call in it."
    )


def audited_query(
    text: str,
    *,
    queue: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> str:
    """What the audit row says was searched: long numbers masked (an admin reads it)."""
    shown = _NUMBER.sub(lambda found: masked(found.group()), text)
    filters = [
        f"{k}={v.isoformat() if isinstance(v, datetime) else v}"
        for k, v in (("queue", queue), ("since", since), ("until", until))
        if v is not None
    ]
    return " ".join([f"search {shown!r}", *filters])


def only_agent_of(principal: Principal) -> int | None:
    """Whose calls a search may find: an agent's own (an agent account without its agent
    finds none); None, every call."""
    if principal.role is not Role.AGENT:
        return None
    return principal.agent_id if principal.agent_id is not None else _NOBODY


@route(
    "GET",
    "/api/search",
    operation_id="search",
    summary="Find words in call transcripts and case text, newest first",
    replies={200: Reply("The calls (with their matching turns) and cases.", SearchPage)},
    errors=[ErrorId.STORAGE_UNAVAILABLE],
)
async def search(request: web.Request, query: SearchQuery) -> web.StreamResponse:
    """Two-character words (漏水, 停电) and numbers (3栋201) are found inside Chinese
    text; several words are a phrase in the order given. Each call lists the turns that
    hold the words with marks ([start, end) character offsets) for highlighting. An
    agent finds only the calls they took; cases are found for everyone who works them."""
    principal = principal_of(request)
    what = audited_query(query.q, queue=query.queue, since=query.since, until=query.until)
    await record_access(request, principal, "search", what, granted=True)
    page = await request.app[SEARCH].search(
        query.q,
        since=query.since,
        until=query.until,
        queue=query.queue,
        only_agent_id=only_agent_of(principal),
        limit=query.limit,
        offset=query.offset,
    )
    return json_reply(page)


ROUTES = (search,)


def add_search_routes(app: web.Application) -> None:
    """Mount GET /api/search; the app must hold a ``CallSearch`` under ``SEARCH``."""
    add_routes(app, ROUTES)
