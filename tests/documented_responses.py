"""Every JSON answer a test receives from a declared route must match the document.

``conftest.aiohttp_client`` puts ``DocumentedResponses.middleware`` into each app a test
starts: it looks up the route's operation in the OpenAPI document generated from the
app's declarations (``web.routes.ROUTES``) and validates the answer's status and body
with ``jsonschema``. A mismatch is kept, not raised (the test under way still sees the
real answer), and fails the test when it ends, naming the route and what differed.
Routes not yet declared (hand-written documents) are not checked.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from jsonschema import Draft202012Validator

from web.openapi import openapi_document
from web.routes import ROUTES

# Declarations are module constants: one document (and validator) per set of them serves
# every test's app (generating it for each app would add about a second per 50 tests).
_Key = tuple[int, ...]
_DOCUMENTS: dict[_Key, dict[str, Any]] = {}
_VALIDATORS: dict[tuple[_Key, str, str, int], Draft202012Validator | None] = {}


class DocumentedResponses:
    def __init__(self) -> None:
        self.mismatches: list[str] = []
        self.checked = 0

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: web.RequestHandler
    ) -> web.StreamResponse:
        response = await handler(request)
        if isinstance(response, web.Response) and response.content_type == "application/json":
            self._check(request, response)
        return response

    def _check(self, request: web.Request, response: web.Response) -> None:
        resource = request.match_info.route.resource
        if resource is None or not request.app.get(ROUTES):
            return
        path, method = resource.canonical, request.method.lower()
        if method == "head":
            return
        doc = self._document(request.app)
        operation = doc["paths"].get(path, {}).get(method)
        if operation is None or not _declared(request.app, path, method):
            return
        where = f"{request.method} {path} → {response.status}"
        documented = operation["responses"].get(str(response.status))
        if documented is None:
            self.mismatches.append(f"{where}: status not documented")
            return
        validator = self._validator(request.app, path, method, response.status, documented)
        if validator is None:
            self.mismatches.append(f"{where}: documented without a JSON body")
            return
        assert isinstance(response.body, bytes)
        body = json.loads(response.body)
        self.checked += 1
        for problem in validator.iter_errors(body):
            at = "/".join(str(p) for p in problem.absolute_path) or "body"
            self.mismatches.append(f"{where}: {at}: {problem.message[:300]}")

    def _document(self, app: web.Application) -> dict[str, Any]:
        key = _key(app)
        if key not in _DOCUMENTS:
            _DOCUMENTS[key] = openapi_document(
                app[ROUTES], info={"title": "test", "version": "0"}, security_schemes={}
            )
        return _DOCUMENTS[key]

    def _validator(
        self,
        app: web.Application,
        path: str,
        method: str,
        status: int,
        documented: dict[str, Any],
    ) -> Draft202012Validator | None:
        key = (_key(app), path, method, status)
        if key not in _VALIDATORS:
            schema = documented.get("content", {}).get("application/json", {}).get("schema")
            if schema is None:
                _VALIDATORS[key] = None
            else:
                components = self._document(app)["components"]
                # "#/components/schemas/…" resolves against this root.
                root = {"components": components, "allOf": [schema]}
                _VALIDATORS[key] = Draft202012Validator(root)
        return _VALIDATORS[key]


def _key(app: web.Application) -> _Key:
    return tuple(id(r) for r in app[ROUTES])


def _declared(app: web.Application, path: str, method: str) -> bool:
    return any(r.path == path and r.method.lower() == method for r in app[ROUTES])
