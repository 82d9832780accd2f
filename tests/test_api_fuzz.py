"""The bounded schemathesis run (bench/api_fuzz.py) finds nothing wrong, and can find it.

The quick run is the bench's own: the whole service on a fresh database (SQLite, and
PostgreSQL when the suite has one), every operation of the document it serves, with a
supervisor's or admin's token and without credentials, from a fixed seed with no example
database, so the same requests go out every time. Asterisk stays out of reach: the routes
that would dial answer their documented 503.

Each run is made in a fresh interpreter (a spawned process): Hypothesis changes the
process's recursion limit while it generates, from the fuzzing thread, and on CPython
3.11 that can leave ``ast.parse`` failing later in the same process with "AST
constructor recursion depth mismatch" (python/cpython#106905), which pydantic's
attribute docstrings (the OpenAPI document) need. The suite's other tests keep a clean
interpreter that way.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
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


def in_a_fresh_interpreter(work: Callable[..., Any], *args: Any) -> Any:
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(work, *args).result()


def quick_run(backend: str) -> dict[str, Any]:
    """The bench's quick run, summed up in plain values (it crosses a process boundary)."""
    postgres = PG_URL if backend == "postgresql" else None
    result = asyncio.run(fuzz_service(Plan(examples=QUICK_EXAMPLES, seed=13), postgres))
    signed, anonymous = result.tallies
    return {
        "operations": (signed.operations, anonymous.operations),
        "signed_requests": signed.requests,
        "anonymous_requests": anonymous.requests,
        "anonymous_401": anonymous.statuses[401],
        "problems": [
            f"{tally.label}: {check} {operation}: {example}"
            for tally in result.tallies
            for (check, operation, _), example in sorted(tally.examples.items())
        ],
    }


@pytest.mark.parametrize("backend", BACKENDS)
async def test_the_quick_fuzz_run_finds_no_failure(backend: str) -> None:
    """0 server errors, 0 undocumented statuses, content types or error ids, 0 answers
    off their schema; every closed route refuses a request without credentials with 401."""
    run = await asyncio.to_thread(in_a_fresh_interpreter, quick_run, backend)
    signed_operations, anonymous_operations = run["operations"]
    assert signed_operations >= 45  # every operation but the websocket
    assert anonymous_operations == signed_operations
    assert run["signed_requests"] > 10 * signed_operations  # valid and invalid per operation
    assert run["problems"] == []
    # A request refused without credentials went through the guard, not a handler.
    assert run["anonymous_401"] > 0.9 * run["anonymous_requests"]


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


def faulty_run() -> tuple[set[str], int, int]:
    """Fuzz a service whose one route answers what it does not declare."""

    async def run() -> tuple[set[str], int, int]:
        app = web.Application()
        add_routes(app, [fault_answers])
        async with TestServer(app) as server:
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
        refused = anonymous.failures["refused_without_credentials"]
        return set(signed.failures), refused, anonymous.requests

    return asyncio.run(run())


async def test_the_fuzz_checks_notice_answers_the_document_does_not_describe() -> None:
    """Guards the run above against checks that pass whatever the service answers."""
    failures, refused, requests = await asyncio.to_thread(in_a_fresh_interpreter, faulty_run)
    assert failures == {
        "not_a_server_error",  # the 500
        "status_code_conformance",  # the 409 and the 500
        "content_type_conformance",  # text/plain
        "response_schema_conformance",  # items is not a list
    }
    # No guard here: the route answers anything but the 401 it must without credentials.
    assert refused == requests
