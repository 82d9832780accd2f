"""The page a user lands on after signing in; the pages of the next issues hang off it."""

from __future__ import annotations

from aiohttp import web

from web.appkeys import STAFF
from web.auth import principal_of
from web.templates import render


def add_home_routes(app: web.Application) -> None:
    app.router.add_get("/", home)


async def home(request: web.Request) -> web.StreamResponse:
    principal = principal_of(request)
    if principal.session is None:  # an API token has no pages
        raise web.HTTPFound("/api/openapi.json")
    user = principal.session.user
    if user.id is not None:
        user = await request.app[STAFF].user_by_id(user.id)
    return render(request, "home.html", user=user, csrf=principal.session.csrf)
