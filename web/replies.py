"""What handlers send: a reply record as JSON, the way every crm record is sent.

Replies are frozen dataclasses, crm records or records of ours built from them
(``record_json``: field names kept, times in ``isoformat()``, nested records too). The
document describes the same classes (pydantic reads dataclasses and their attribute
docstrings), so what is sent and what is documented cannot drift apart.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, TypeVar

from aiohttp import web

from crm.repository import record_json


def json_reply(reply: Any, *, status: int = 200) -> web.Response:
    """``reply`` (a dataclass instance) as the JSON body of a response."""
    return web.json_response(record_json(reply), status=status)


R = TypeVar("R")


def extended(cls: type[R], record: Any, **extra: Any) -> R:
    """``record`` as ``cls``, a reply that adds fields to it (a subclass of its class)."""
    return cls(**{f.name: getattr(record, f.name) for f in fields(record)}, **extra)
