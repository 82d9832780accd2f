"""The JSON a client may send us: what every request body is parsed and checked by.

A body that is valid JSON can still break a handler far from where it was read: nesting
deep enough to exhaust the interpreter's recursion, an integer of thousands of digits
(Python refuses to convert more than 4300), NaN, or a string with a lone UTF-16
surrogate (``"\\ud800"``) or NUL that no database column can store. Each is refused here,
as 400 naming the field where we can, before any handler sees the body, so no request
can reach a write with them and no check downstream has to remember them.

The text is read as UTF-8 whatever charset the header claims (RFC 8259 §8.1: JSON
exchanged between systems is UTF-8, and the charset parameter means nothing for it).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from crm.exceptions import InvalidInput

# Our deepest request is an object in an object in the body (a case's repair, a
# complaint step's details); eight levels leave room and stop a nesting attack early.
MAX_DEPTH = 8
# Every integer we take fits in 64 bits (ids and versions in 32); 19 digits is 2**63's.
MAX_DIGITS = 19
# Lone surrogates are no text (UTF-8 cannot encode them); NUL is refused by PostgreSQL.
_UNSTORABLE = re.compile(r"[\ud800-\udfff\x00]")


class _Refused:
    """A number the decoder met, kept until the walk knows which field it was in."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _integer(text: str) -> int | _Refused:
    if len(text.lstrip("-")) > MAX_DIGITS:
        return _Refused(f"must be a number of at most {MAX_DIGITS} digits")
    return int(text)


def _float(text: str) -> float | _Refused:
    value = float(text)
    return value if math.isfinite(value) else _Refused("must be a finite number")


def _constant(text: str) -> _Refused:
    return _Refused(f"must be a number ({text} is not JSON)")


def parse_object(data: bytes) -> dict[str, Any]:
    """A request body's JSON object, or ``InvalidInput`` naming the body or the field."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InvalidInput(
            "body", f"must be JSON in UTF-8 (byte {err.start} is not UTF-8)"
        ) from None
    try:
        body = json.loads(text, parse_int=_integer, parse_float=_float, parse_constant=_constant)
    except RecursionError:
        raise InvalidInput("body", f"must not nest deeper than {MAX_DEPTH} levels") from None
    except ValueError as err:  # JSONDecodeError is one
        raise InvalidInput("body", f"must be a JSON object ({err})") from None
    if not isinstance(body, dict):
        raise InvalidInput("body", "must be a JSON object")
    _check(body)
    return body


def _check(body: dict[str, Any]) -> None:
    """Walk the body without recursing (its depth is what is in question)."""
    pending: list[tuple[str, int, Any]] = [("", 1, body)]
    while pending:
        path, depth, value = pending.pop()
        if depth > MAX_DEPTH:
            raise InvalidInput("body", f"must not nest deeper than {MAX_DEPTH} levels")
        if isinstance(value, dict):
            for key, item in value.items():
                if _UNSTORABLE.search(key):
                    raise InvalidInput("body", "a field name is not valid text")
                pending.append((f"{path}.{key}" if path else key, depth + 1, item))
        elif isinstance(value, list):
            for position, item in enumerate(value, 1):
                pending.append((f"{path or 'body'}[{position}]", depth + 1, item))
        elif isinstance(value, str):
            if _UNSTORABLE.search(value):
                raise InvalidInput(path, _unstorable(value))
        elif isinstance(value, _Refused):
            raise InvalidInput(path, value.reason)


def _unstorable(value: str) -> str:
    if "\x00" in value:
        return "must not contain NUL (\\u0000)"
    return "is not valid text: it has half of a surrogate pair (like \\ud800) alone"
