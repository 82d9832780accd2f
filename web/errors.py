"""How every HTTP handler of the service answers a refused request: one JSON shape.

``{"error_id", "message", "details"}`` with 400 for bad input (naming the field), 404,
409 for a clash with the stored state (with the reason) and 503 when the database is
down, so a console can show the reason instead of a stack trace.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from crm.case_store import StaleVersion
from crm.exceptions import Conflict, InvalidInput, InvalidQuery, NotFound, StorageError
from crm.rules import IllegalTransition as IllegalCaseTransition
from telephony.exceptions import IllegalTransition
from web.json_input import parse_object

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def answer_errors(handler: Handler) -> Handler:
    @functools.wraps(handler)
    async def answering(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except InvalidInput as err:
            return error(400, "invalid-input", str(err), field=err.field, reason=err.reason)
        except InvalidQuery as err:
            return error(400, "invalid-query", str(err), field=err.field, reason=err.reason)
        except IllegalTransition as err:
            return error(409, "illegal-transition", str(err), state=str(err.state))
        except IllegalCaseTransition as err:
            details = {"state": err.current, "wanted": err.wanted, "reason": err.reason}
            return error(409, "illegal-transition", str(err), **details)
        except StaleVersion as err:
            return error(409, "stale-version", str(err), current_version=err.current)
        except Conflict as err:
            return error(409, "conflict", str(err))
        except NotFound as err:
            return error(404, "not-found", str(err), id=err.key)
        except StorageError as err:
            log.warning("storage unavailable: %s", err, exc_info=err)
            return error(503, "storage-unavailable", "records are unavailable")

    return answering


def error(status: int, error_id: str, message: str, **details: Any) -> web.Response:
    return web.json_response(
        {"error_id": error_id, "message": message, "details": details}, status=status
    )


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object, checked by ``web.json_input``; else a 400."""
    return parse_object(await request.read())


def path_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) < 2**31:
        raise NotFound("record", raw)
    return int(raw)
