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

import typing
from typing import Annotated, Any, ClassVar, TypeGuard, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError
from pydantic_core import ErrorDetails, PydanticCustomError

from crm.exceptions import InvalidInput
from web.json_input import parse_object


class Body(BaseModel):
    """Base of every request body: JSON types only, no coercion ("5" is no number).

    A body (or an object in it) whose model forbids extra fields names the first unknown
    one before anything else, with the model's ``unknown`` reason.
    """

    model_config = ConfigDict(frozen=True, extra="ignore", strict=True)
    unknown: ClassVar[str] = "is not a field of this request"


B = TypeVar("B", bound=Body)


def parse_body(model: type[B], data: bytes) -> B:
    raw = parse_object(data)
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        found = err.errors(include_url=False)
        unknown = [e for e in found if e["type"] == "extra_forbidden"]
        if unknown:
            loc = unknown[0]["loc"]
            reason = _model_at(model, loc[:-1]).unknown
            raise InvalidInput(field_path(loc), reason) from None
        raise InvalidInput(field_path(found[0]["loc"]), _reason(found[0])) from None


def _model_at(model: type[Body], loc: tuple[int | str, ...]) -> type[Body]:
    """The model of the object at ``loc`` (``("repair",)``: the body's repair model)."""
    for part in loc:
        if isinstance(part, int):
            continue
        annotation = model.model_fields[str(part)].annotation
        nested = [a for a in (annotation, *typing.get_args(annotation)) if _is_body(a)]
        if not nested:
            break
        model = nested[0]
    return model


def _is_body(candidate: object) -> TypeGuard[type[Body]]:
    return isinstance(candidate, type) and issubclass(candidate, Body)


def _phone_text(value: object) -> object:
    """A number sent as a JSON number would lose its leading 0 and + and be no phone."""
    if not isinstance(value, str):
        raise PydanticCustomError("phone_type", "must be a phone number as a string")
    return value


PhoneText = Annotated[str, BeforeValidator(_phone_text)]


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
    if kind == "missing" or (kind in _JSON_TYPES and error.get("input", ...) is None):
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
