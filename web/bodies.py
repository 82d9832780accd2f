"""The JSON body of a request: read once, checked twice, refused as one 400.

``web.json_input.parse_object`` goes first: it refuses what would break Python or the
database before any model sees it (deep nesting, huge integers, NaN, lone surrogates,
NUL). Then the route's ``Body`` model checks the shape: which fields, of which JSON
type. The rules of what a value may say (names, phones, money, times and their bounds)
stay with the CRM (``crm.validation``), which names the field the same way. A refused
body is a 400 ``invalid-input`` naming the field by its path (``repair.appointment_at``,
``phones[2]``) with a reason a person can read.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import ErrorDetails

from crm.exceptions import InvalidInput
from web.json_input import parse_object


class Body(BaseModel):
    """Base of every request body: JSON types only, no coercion ("5" is no number)."""

    model_config = ConfigDict(frozen=True, extra="ignore", strict=True)


B = TypeVar("B", bound=Body)


def parse_body(model: type[B], data: bytes) -> B:
    raw = parse_object(data)
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        first = err.errors(include_url=False)[0]
        raise InvalidInput(field_path(first["loc"]), _reason(first)) from None


def field_path(loc: tuple[int | str, ...]) -> str:
    """``("phones", 1)`` → ``phones[2]``: counted from 1, as ``web.json_input`` names them."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path = f"{path or 'body'}[{part + 1}]"
        else:
            path = f"{path}.{part}" if path else part
    return path or "body"


_JSON_TYPES = {
    "string_type": "a string",
    "int_type": "an integer",
    "bool_type": "true or false",
    "dict_type": "an object",
    "list_type": "a list",
    "float_type": "a number",
    "model_type": "an object",
    "dataclass_type": "an object",
}


def _reason(error: ErrorDetails) -> str:
    ctx: dict[str, Any] = error.get("ctx") or {}
    kind = error["type"]
    if kind == "missing":
        return "is required"
    if kind in _JSON_TYPES:
        return f"must be {_JSON_TYPES[kind]}"
    if kind == "literal_error":
        return f"must be one of {ctx['expected']}".replace("'", "")
    if kind == "greater_than_equal":
        return f"must be at least {ctx['ge']}"
    if kind == "less_than_equal":
        return f"must be at most {ctx['le']}"
    return str(error["msg"])
