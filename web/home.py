"""The page a user lands on after signing in: where each of their pages is."""

from __future__ import annotations

from aiohttp import web

from web.pages.frame import page


def add_home_routes(app: web.Application) -> None:
    app.router.add_get("/", home)


async def home(request: web.Request) -> web.StreamResponse:
    return page(request, "home.html")
