"""What handlers send: a reply model as JSON, with times as the crm records send them.

The crm records (``crm.repository.record_json``) write times with ``isoformat()``
(``2024-05-01T09:00:10+00:00``); pydantic would write ``…Z``. ``IsoTime`` keeps one
format across every response, whether it comes from a record or a reply model.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, ConfigDict, PlainSerializer, WithJsonSchema

IsoTime = Annotated[
    datetime,
    PlainSerializer(datetime.isoformat, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


class ReplyModel(BaseModel):
    """Base of every response model that is not a crm record."""

    model_config = ConfigDict(frozen=True)


def json_reply(reply: BaseModel, *, status: int = 200) -> web.Response:
    return web.json_response(reply.model_dump(mode="json"), status=status)
