"""Our HTTP server: health, the OpenAPI document, prompt audio, and the CRM's API.

Asterisk may fetch prompts from ``/prompts/{name}.wav`` (media ``sound:http://…``) when
it runs on another host than the service; in the sandbox it plays installed copies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import Field

from crm.repository import DOCUMENTED_FIELDS
from web.appkeys import CONFIG, OPENAPI, PROMPTS, STASIS, STREAM_STATUS
from web.auth import SECURITY_SCHEMES
from web.calls import add_call_routes
from web.errors import ErrorId, error
from web.openapi import DocumentCache, openapi_document
from web.params import Params
from web.replies import json_reply
from web.routes import ROUTES, Reply, Route, add_routes, route

PROMPT_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True, slots=True)
class AriHealth:
    """The ARI event stream, as the service sees it."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    connected: bool
    """The websocket to Asterisk is up."""
    connects: int
    """Successful connections since the start."""
    last_connected_at: datetime | None
    """The last successful connection."""
    last_error: str | None
    """Why the last attempt failed, if it did."""
    retry_in_s: float | None
    """Seconds until the next attempt, if waiting."""
    application_replaced: bool
    """Another process registered our ARI application and takes its calls."""


@dataclass(frozen=True, slots=True)
class Health:
    """Whether new calls will be answered, and why not."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    status: str
    """ready or not-ready."""
    ari: AriHealth
    """The event stream."""
    asterisk_started_at: datetime | None
    """Asterisk's own start time."""
    live_calls: int
    """Calls the service is handling now."""


@route(
    "GET",
    "/healthz",
    operation_id="getHealth",
    summary="Service health: whether the ARI event stream is connected.",
    replies={
        200: Reply("Ready: calls are being answered.", Health),
        503: Reply("Not ready: ARI is not connected; retrying.", Health),
    },
)
async def healthz(request: web.Request) -> web.StreamResponse:
    """Ready means: the ARI event stream is up, so new calls will be answered."""
    status = request.app[STREAM_STATUS]
    stasis = request.app[STASIS]
    ready = status.connected and not stasis.replaced
    health = Health(
        status="ready" if ready else "not-ready",
        ari=AriHealth(
            connected=status.connected,
            connects=status.connects,
            last_connected_at=status.last_connected_at,
            last_error=status.last_error,
            retry_in_s=status.retry_in_s,
            application_replaced=stasis.replaced,
        ),
        asterisk_started_at=stasis.asterisk_started_at,
        live_calls=len(stasis.sessions),
    )
    return json_reply(health, status=200 if ready else 503)


class PromptPath(Params):
    name: str = Field(description="The prompt's name, e.g. greeting.")


@route(
    "GET",
    "/prompts/{name}.wav",
    operation_id="getPromptAudio",
    summary="Prompt audio (8 kHz mono WAV) for Asterisk's sound:http:// media.",
    replies={200: Reply("WAV audio", media_type="audio/wav")},
    errors=[ErrorId.PROMPT_NOT_FOUND],
)
async def prompt_audio(request: web.Request, path: PromptPath) -> web.StreamResponse:
    name = path.name
    prompts = request.app[PROMPTS]
    if not PROMPT_NAME.match(name) or name not in prompts.texts or not prompts.path(name).exists():
        return error(404, ErrorId.PROMPT_NOT_FOUND, f"no prompt audio named {name!r}", name=name)
    return web.FileResponse(prompts.path(name), headers={"Content-Type": "audio/wav"})


@route(
    "GET",
    "/api/openapi.json",
    operation_id="getOpenApi",
    summary="This OpenAPI 3.1 document.",
    replies={200: Reply("The document (JSON).", dict[str, Any])},
)
async def openapi(request: web.Request) -> web.StreamResponse:
    app = request.app
    return web.json_response(await app[OPENAPI].get(lambda: document(app)))


def document(app: web.Application) -> dict[str, Any]:
    """The OpenAPI document of the routes ``app`` registered."""
    config = app[CONFIG]
    info = {
        "title": f"{config.company.name} resident hotline API",
        "version": "0.1.0",
        "description": (
            "Call records, agents, queues, call-backs and messages of the 24-hour "
            "resident hotline (物业客服热线), and a websocket of live queue and agent "
            "changes for supervisor and agent consoles."
        ),
    }
    declared: list[Route] = app.get(ROUTES, [])
    return openapi_document(declared, info=info, security_schemes=SECURITY_SCHEMES)


SERVICE_ROUTES = (healthz, openapi, prompt_audio)


def add_service_routes(app: web.Application) -> None:
    app[OPENAPI] = DocumentCache()
    add_routes(app, SERVICE_ROUTES)
    add_call_routes(app)
