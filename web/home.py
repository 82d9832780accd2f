"""The page a user lands on after signing in; the pages of the next issues hang off it."""

from __future__ import annotations

from aiohttp import web

from web.auth import principal_of
from web.templates import render


def add_home_routes(app: web.Application) -> None:
    app.router.add_get("/", home)


async def home(request: web.Request) -> web.StreamResponse:
    principal = principal_of(request)
    if principal.session is None:  # an API token has no pages
        raise web.HTTPFound("/api/openapi.json")
    session = principal.session
    return render(request, "home.html", user=session.user, csrf=session.csrf)
