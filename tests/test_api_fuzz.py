"""The bounded schemathesis run (bench/api_fuzz.py) finds nothing wrong, and can find it.

The quick run is the bench's own: the whole service on a fresh database (SQLite, and
PostgreSQL when the suite has one), every operation of the document it serves, with a
supervisor's or admin's token and without credentials, from a fixed seed with no example
database, so the same requests go out every time. Asterisk stays out of reach: the routes
that would dial answer their documented 503.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from schemathesis import GenerationMode

from bench.api_fuzz import (
    ANONYMOUS_CHECKS,
    CHECKS,
    QUICK_EXAMPLES,
    Plan,
    Tally,
    fuzz,
    fuzz_service,
    load_schema,
)
from tests.databases import BACKENDS, PG_URL
from web.calls import CallPage
from web.errors import ErrorId, error
from web.openapi import openapi_document
from web.params import IdPath
from web.routes import Reply, add_routes, route


@pytest.mark.parametrize("backend", BACKENDS)
async def test_the_quick_fuzz_run_finds_no_failure(backend: str) -> None:
    """0 server errors, 0 undocumented statuses, content types or error ids, 0 answers
    off their schema; every closed route refuses a request without credentials with 401."""
    postgres = PG_URL if backend == "postgresql" else None
    result = await fuzz_service(Plan(examples=QUICK_EXAMPLES, seed=13), postgres)
    signed, anonymous = result.tallies
    assert signed.operations >= 45  # every operation but the websocket
    assert anonymous.operations == signed.operations
    assert signed.requests > 10 * signed.operations  # valid and invalid requests per operation
    problems = [
        f"{tally.label}: {check} {operation}: {example}"
        for tally in result.tallies
        for (check, operation, _), example in sorted(tally.examples.items())
    ]
    assert problems == []
    # A request refused without credentials went through the guard, not a handler.
    assert anonymous.statuses[401] > 0.9 * anonymous.requests


# -- the checks can fail: a service whose answers the document does not describe --------


@route(
    "GET",
    "/api/test/fuzz/{id}",
    operation_id="fuzzFault",
    summary="A handler answering what its declaration does not say (faults injected).",
    replies={200: Reply("A page of calls.", CallPage)},
)
async def fault_answers(request: web.Request, path: IdPath) -> web.StreamResponse:
    match path.id % 4:
        case 0:
            return web.json_response({"items": "none", "total": 0, "limit": 1, "offset": 0})
        case 1:
            return error(409, ErrorId.CONFLICT, "a status the route does not declare")
        case 2:
            raise RuntimeError("a bug")
        case _:
            return web.Response(text="plain text")


async def test_the_fuzz_checks_notice_answers_the_document_does_not_describe(
    aiohttp_server: Callable[..., Any],
) -> None:
    """Guards the run above against checks that pass whatever the service answers."""
    app = web.Application()
    add_routes(app, [fault_answers])
    server: TestServer = await aiohttp_server(app)
    document = openapi_document(
        [fault_answers], info={"title": "fault", "version": "0"}, security_schemes={}
    )
    schema = load_schema(document)
    base = str(server.make_url("")).rstrip("/")
    plan = Plan(examples=30, seed=13, modes=(GenerationMode.POSITIVE,))
    signed = Tally("with credentials", CHECKS)
    anonymous = Tally("without credentials", ANONYMOUS_CHECKS)
    await asyncio.to_thread(fuzz, schema, base, plan, signed, lambda operation: {})
    await asyncio.to_thread(fuzz, schema, base, plan, anonymous, None)
    assert set(signed.failures) == {
        "not_a_server_error",  # the 500
        "status_code_conformance",  # the 409 and the 500
        "content_type_conformance",  # text/plain
        "response_schema_conformance",  # items is not a list
    }
    # No guard here: the route answers anything but the 401 it must without credentials.
    assert anonymous.failures["refused_without_credentials"] == anonymous.requests
