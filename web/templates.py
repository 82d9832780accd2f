"""Server-rendered pages: one Jinja environment, escaping on, the page's words passed in.

Pages never load anything from outside (hotlines run on private networks): styles and
scripts come from ``/static``, fonts are the system's. Every page answers with headers
that keep it out of frames and caches, since most will show personal data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from web.appkeys import CONFIG
from web.errors import Handler
from web.i18n import LANG_COOKIE, Language, Words, language_of

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
)
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
}


def render(
    request: web.Request, template: str, *, status: int = 200, **context: Any
) -> web.Response:
    language = language_of(request)
    html = _ENV.get_template(template).render(
        t=Words(language), company=request.app[CONFIG].company.name, **context
    )
    response = web.Response(text=html, status=status, content_type="text/html")
    response.headers.update(PAGE_HEADERS)
    if request.query.get("lang") in set(Language):
        response.set_cookie(
            LANG_COOKIE, language, max_age=365 * 86400, path="/", samesite="Lax", httponly=True
        )
    return response


@web.middleware
async def no_sniffing(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every answer, JSON and audio too: its type is what it says, and never framed."""
    response = await handler(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    return response
