"""A declaration per route: what it takes and what it answers, checked and documented.

``@route(...)`` reads the handler's signature: a parameter ``path``, ``query`` or
``body`` annotated with a ``Params`` or ``Body`` model is parsed from the request and
passed in, so the model a handler is given is the model the document describes (a
handler that reads a file as its body names the media types it ``accepts`` instead). The
declaration also lists the replies per status (their body types) and the error ids the
handler may answer on top of those its inputs imply (a query: invalid-query; a body:
invalid-input); an id in the path that names nothing is the route's ``not_found`` id.
``web.openapi`` builds the document from the declarations an app registered
(``ROUTES``), and nothing else.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import hdrs, web

from crm.staff import Role
from web.bodies import Body, parse_body
from web.errors import ErrorId, Handler, answer_errors
from web.params import Params, parse_params
from web.permissions import Permission, allowed, permission_for

RouteHandler = Callable[..., Awaitable[web.StreamResponse]]


M = TypeVar("M")

ROUTES: web.AppKey[list[Route]] = web.AppKey("routes", list)


@dataclass(frozen=True)
class Reply:
    """One documented response: a description and what its body is.

    ``body`` is any type pydantic can describe (a model, a crm record dataclass, a list
    of them); None is a response without a JSON body, or of ``media_type`` if given.
    """

    description: str
    body: Any = None
    media_type: str | None = None
    also: tuple[str, ...] = ()  # other media types the same status may have (text/plain)


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: RouteHandler
    operation_id: str
    summary: str
    description: str | None
    replies: Mapping[int, Reply]
    declared_errors: frozenset[ErrorId]
    path_params: type[Params] | None = None
    query: type[Params] | None = None
    body: type[Body] | None = None
    not_found: ErrorId = ErrorId.NOT_FOUND
    permission: Permission | None = None  # None: not in the table (never in a service)
    messages: Any = None  # a websocket's: the type of each message it sends
    accepts: tuple[str, ...] = ()  # media types of a body the handler reads itself (a file)

    @property
    def errors(self) -> frozenset[ErrorId]:
        """Every error id the route may answer: declared and implied by its inputs."""
        implied: set[ErrorId] = set()
        if self.query is not None:
            implied.add(ErrorId.INVALID_QUERY)
        if self.body is not None or self.accepts:
            implied.add(ErrorId.INVALID_INPUT)
        return self.declared_errors | implied | self.permission_errors

    @property
    def permission_errors(self) -> frozenset[ErrorId]:
        """What the guard (web/auth.py) may answer before the handler runs."""
        if self.permission is None or self.permission is Permission.OPEN:
            return frozenset()
        found = {ErrorId.UNAUTHORISED}
        if not all(allowed(role, self.permission) for role in Role):
            found.add(ErrorId.FORBIDDEN)
        if self.method not in ("GET", "HEAD"):
            found |= {ErrorId.CSRF, ErrorId.BAD_ORIGIN}
            if self.body is not None or self.accepts:
                found.add(ErrorId.UNSUPPORTED_MEDIA_TYPE)
        return frozenset(found)

    @property
    def security(self) -> list[dict[str, list[str]]]:
        """OpenAPI security: none for an open route, else a token or the session."""
        if self.permission is None or self.permission is Permission.OPEN:
            return []
        return [{"token": []}, {"session": []}]

    def aiohttp_handler(self) -> Handler:
        async def parsed(request: web.Request) -> web.StreamResponse:
            given: dict[str, Any] = {}
            if self.path_params is not None:
                given["path"] = parse_params(self.path_params, request.match_info)
            if self.query is not None:
                given["query"] = parse_params(self.query, request.query)
            if self.body is not None:
                given["body"] = parse_body(self.body, await request.read())
            return await self.handler(request, **given)

        named: Handler = functools.wraps(self.handler)(parsed)
        return answer_errors(named, not_found=self.not_found)


def route(
    method: str,
    path: str,
    *,
    operation_id: str,
    summary: str,
    replies: Mapping[int, Reply],
    errors: Iterable[ErrorId] = (),
    description: str | None = None,
    not_found: ErrorId = ErrorId.NOT_FOUND,
    messages: Any = None,
    accepts: tuple[str, ...] = (),
) -> Callable[[RouteHandler], Route]:
    """Who may call the route is not declared here: web/permissions.py's table says, for
    every route (an app with a route missing from it refuses to start: web/app.py)."""
    permission = permission_for(method.upper(), path)

    def declare(handler: RouteHandler) -> Route:
        inputs = _inputs(handler)
        return Route(
            method=method.upper(),
            path=path,
            handler=handler,
            operation_id=operation_id,
            summary=summary,
            description=description or inspect.getdoc(handler),
            replies=replies,
            declared_errors=frozenset(errors),
            path_params=_model(inputs, "path", Params),
            query=_model(inputs, "query", Params),
            body=_model(inputs, "body", Body),
            not_found=not_found,
            permission=permission,
            messages=messages,
            accepts=accepts,
        )

    return declare


def _inputs(handler: RouteHandler) -> dict[str, Any]:
    hints = typing.get_type_hints(handler)
    names = list(inspect.signature(handler).parameters)
    if not names or names[0] != "request":
        raise TypeError(f"{handler.__qualname__}: the first parameter must be the request")
    unknown = set(names[1:]) - {"path", "query", "body"}
    if unknown:
        raise TypeError(f"{handler.__qualname__}: unknown inputs {sorted(unknown)}")
    return {name: hints[name] for name in names[1:]}


def _model(inputs: dict[str, Any], name: str, base: type[M]) -> type[M] | None:
    model = inputs.get(name)
    if model is None:
        return None
    if not (isinstance(model, type) and issubclass(model, base)):
        raise TypeError(f"{name} must be annotated with a {base.__name__} model, got {model}")
    return model


def add_routes(app: web.Application, routes: Iterable[Route]) -> None:
    """Mount ``routes`` and keep their declarations for the document (``ROUTES``)."""
    declared = app.setdefault(ROUTES, [])
    for declaration in routes:
        handler = declaration.aiohttp_handler()
        if declaration.method == hdrs.METH_GET:
            app.router.add_get(declaration.path, handler)  # and HEAD, as aiohttp does
        else:
            app.router.add_route(declaration.method, declaration.path, handler)
        declared.append(declaration)
