"""Our HTTP server: health, the OpenAPI document, prompt audio, and the CRM's API.

Asterisk may fetch prompts from ``/prompts/{name}.wav`` (media ``sound:http://…``) when
it runs on another host than the service; in the sandbox it plays installed copies.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from web.accounts import account_openapi_paths
from web.acd_openapi import acd_openapi_paths, acd_openapi_schemas
from web.appkeys import CONFIG, PROMPTS, STASIS, STREAM_STATUS
from web.calls import add_call_routes, calls_openapi_paths, calls_openapi_schemas
from web.cases_openapi import STAFF_SCHEME, case_openapi_paths, case_openapi_schemas
from web.recordings_openapi import (
    SECURITY_SCHEMES,
    recording_openapi_paths,
    recording_openapi_schemas,
)
from web.residents_openapi import resident_openapi_paths, resident_openapi_schemas

PROMPT_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


def add_service_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/api/openapi.json", openapi)
    app.router.add_get("/prompts/{name}.wav", prompt_audio)
    add_call_routes(app)


async def healthz(request: web.Request) -> web.Response:
    """Ready means: the ARI event stream is up, so new calls will be answered."""
    status = request.app[STREAM_STATUS]
    stasis = request.app[STASIS]
    ready = status.connected and not stasis.replaced
    body: dict[str, Any] = {
        "status": "ready" if ready else "not-ready",
        "ari": {
            "connected": status.connected,
            "connects": status.connects,
            "last_connected_at": status.last_connected_at.isoformat()
            if status.last_connected_at
            else None,
            "last_error": status.last_error,
            "retry_in_s": status.retry_in_s,
            "application_replaced": stasis.replaced,
        },
        "asterisk_started_at": stasis.asterisk_started_at.isoformat()
        if stasis.asterisk_started_at
        else None,
        "live_calls": len(stasis.sessions),
    }
    return web.json_response(body, status=200 if ready else 503)


async def prompt_audio(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    prompts = request.app[PROMPTS]
    if not PROMPT_NAME.match(name) or name not in prompts.texts or not prompts.path(name).exists():
        return web.json_response(
            {
                "error_id": "prompt-not-found",
                "message": f"no prompt audio named {name!r}",
                "details": {"name": name},
            },
            status=404,
        )
    return web.FileResponse(prompts.path(name), headers={"Content-Type": "audio/wav"})


async def openapi(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": f"{config.company.name} resident hotline API",
            "version": "0.1.0",
            "description": (
                "Call records, agents, queues, call-backs and messages of the 24-hour "
                "resident hotline (物业客服热线), and a websocket of live queue and agent "
                "changes for supervisor and agent consoles."
            ),
        },
        "paths": {
            "/healthz": {
                "get": {
                    "summary": "Service health: whether the ARI event stream is connected.",
                    "responses": {
                        "200": {"description": "Ready: calls are being answered."},
                        "503": {"description": "Not ready: ARI is not connected; retrying."},
                    },
                }
            },
            "/prompts/{name}.wav": {
                "get": {
                    "summary": "Prompt audio (8 kHz mono WAV) for Asterisk's sound:http:// media.",
                    "parameters": [
                        {
                            "name": "name",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {
                        "200": {"description": "WAV audio"},
                        "404": {"description": "No such prompt"},
                    },
                }
            },
            "/api/openapi.json": {
                "get": {
                    "operationId": "getOpenApi",
                    "summary": "This OpenAPI 3.1 document.",
                    "responses": {"200": {"description": "The document (JSON)."}},
                }
            },
            **calls_openapi_paths(),
            **acd_openapi_paths(),
            **recording_openapi_paths(),
            **case_openapi_paths(),
            **resident_openapi_paths(),
            **account_openapi_paths(),
        },
        "security": [{"token": []}, {"session": []}],
        "components": {
            "schemas": {
                **calls_openapi_schemas(),
                **acd_openapi_schemas(),
                **recording_openapi_schemas(),
                **case_openapi_schemas(),
                **resident_openapi_schemas(),
            },
            "securitySchemes": {
                **SECURITY_SCHEMES,
                "staff": STAFF_SCHEME,
                "token": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API token (hotline token create NAME --role R).",
                },
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "hotline_session",
                    "description": "The login page's session; a request that changes "
                    "anything also sends X-CSRF-Token (from GET /api/me) and our Origin.",
                },
            },
        },
    }
    return web.json_response(doc)
