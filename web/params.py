"""Query and path parameters, parsed into a pydantic model: the one parameter parser.

A route declares its parameters as a ``Params`` model; the same model checks a request
and gives the OpenAPI document its ``parameters``. An empty value counts as not given,
because HTML filter forms send every field, filled or not. A refused value is a 400
``invalid-query`` naming the field with a reason a person can read; an id that no record
can have is a 404 like any other unknown id.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Self, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic_core import ErrorDetails

from crm import validation
from crm.exceptions import InvalidInput, InvalidQuery, NotFound

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
# Ids and offsets beyond a 32-bit integer cannot match anything; refusing them early keeps
# PostgreSQL from answering "integer out of range" with a storage error.
MAX_INT = 2**31 - 1
_INTEGER = re.compile(r"-?[0-9]+")


class Params(BaseModel):
    """Base of every route's path or query parameters; unknown parameters are ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore")


P = TypeVar("P", bound=Params)


def parse_params(model: type[P], values: Mapping[str, str]) -> P:
    """``values`` (a query or a route's match) as ``model``, or ``InvalidQuery``/``NotFound``."""
    given: dict[str, str] = {}
    for key in values:
        if key not in given and values[key] != "":  # the first of repeated keys, as aiohttp's get
            given[key] = values[key]
    try:
        return model.model_validate(given)
    except ValidationError as err:
        first = err.errors(include_url=False)[0]
        field = ".".join(str(part) for part in first["loc"]) or "query"
        raise InvalidQuery(field, _reason(first)) from None


def _reason(error: ErrorDetails) -> str:
    ctx: dict[str, Any] = error.get("ctx") or {}
    match error["type"]:
        case "int_parsing" | "int_type" | "int_from_float":
            return "must be an integer"
        case "greater_than_equal":
            return f"must be at least {ctx['ge']}"
        case "less_than_equal":
            return f"must be at most {ctx['le']}"
        case "literal_error":
            return f"must be one of {ctx['expected']}".replace("'", "")
        case "int_parsing_size":
            return "must be an integer of at most 19 digits"
        case "bool_parsing":
            return "must be true or false"
    return str(error["msg"])


def _instant(value: object, info: ValidationInfo) -> datetime | None:
    """ISO 8601; no offset means UTC (documented so for the call list's filters)."""
    field = info.field_name or "time"
    try:
        return validation.when(field, value, naive_is_utc=True)
    except InvalidInput as err:
        reason = err.reason
        if isinstance(value, str):
            try:
                datetime.fromisoformat(value)
            except ValueError as bad:  # 2026-13-45: say which part ("month must be in 1..12")
                reason = f"must be an ISO 8601 time like 2026-11-24T09:30:00+08:00 ({bad})"
            if " " in value:
                # An unencoded "+08:00" arrives as " 08:00".
                reason += "; encode '+' in the offset as %2B"
        raise InvalidQuery(field, reason) from None


def _aware_instant(value: object, info: ValidationInfo) -> datetime | None:
    """ISO 8601 with its zone: a time without one would be a guess."""
    field = info.field_name or "time"
    try:
        return validation.when(field, value)
    except InvalidInput as err:
        raise InvalidQuery(field, err.reason + " (encode '+' as %2B)") from None


def _filter_text(value: str, info: ValidationInfo) -> str | None:
    """A text filter; NUL and other controls are refused (PostgreSQL cannot even bind NUL)."""
    field = info.field_name or "text"
    try:
        return validation.text(field, value, max_len=80)
    except InvalidInput as err:
        raise InvalidQuery(field, err.reason) from None


def _record_id(value: object) -> object:
    """Anything but a positive 32-bit integer names no record: 404, not 400."""
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise NotFound("record", value)
    return _id_in_range(value, "record")


def _call_id(value: object) -> object:
    """A call id that is a number no call can have is unknown (404); no number is a 400."""
    return _id_in_range(value, "call")


def _id_in_range(value: object, what: str) -> object:
    if not (isinstance(value, str) and value.isascii() and value.isdigit()):
        return value  # no number: the int check that follows names it
    if len(value.lstrip("0")) > len(str(MAX_INT)) or not 1 <= int(value) <= MAX_INT:
        # Python refuses to read more than 4300 digits; no id has more than 10 anyway.
        key = int(value) if what == "call" and len(value.lstrip("0")) <= 20 else value
        raise NotFound(what, key)
    return value


def _whole_number(value: object, info: ValidationInfo) -> object:
    """ASCII digits (and a sign): pydantic alone would also take 5.0, 5_0 and ' 5'."""
    if isinstance(value, str) and not _INTEGER.fullmatch(value):
        raise InvalidQuery(info.field_name or "number", "must be an integer")
    return value


def _true_or_false(value: object, info: ValidationInfo) -> object:
    """Only the words a form or a link sends; pydantic alone would take yes, on and 1."""
    if value not in ("true", "false", True, False):
        raise InvalidQuery(info.field_name or "flag", "must be true or false")
    return value


# Validators given after the bounds run before them (and the bounds stay documented);
# of two, the last runs first.
WholeNumber = BeforeValidator(_whole_number)
Instant = Annotated[datetime, BeforeValidator(_instant)]
AwareInstant = Annotated[datetime, BeforeValidator(_aware_instant)]
FilterText = Annotated[
    str, AfterValidator(_filter_text), Field(json_schema_extra={"maxLength": 80})
]
TrueOrFalse = Annotated[bool, BeforeValidator(_true_or_false)]
Limit = Annotated[int, Field(ge=1, le=MAX_LIMIT, description="Page size."), WholeNumber]
Offset = Annotated[int, Field(ge=0, le=MAX_INT, description="Records to skip."), WholeNumber]
PositiveId = Annotated[int, Field(ge=1, le=MAX_INT), WholeNumber]
RecordId = Annotated[int, Field(ge=1, le=MAX_INT), WholeNumber, BeforeValidator(_record_id)]
CallId = Annotated[int, Field(ge=1, le=MAX_INT), WholeNumber, BeforeValidator(_call_id)]


class WindowQuery(Params):
    """A time window and a page, as every list of calls takes them."""

    since: Instant | None = Field(
        None,
        description="From this time on (calls: started; ISO 8601; no offset means UTC; "
        "encode '+' as %2B).",
    )
    until: Instant | None = Field(
        None, description="Before this time (exclusive; same format as since)."
    )
    limit: Limit = DEFAULT_LIMIT
    offset: Offset = 0

    @model_validator(mode="after")
    def _window(self) -> Self:
        if self.since is not None and self.until is not None and self.until <= self.since:
            raise InvalidQuery("until", "must be later than since")
        return self


class IdPath(Params):
    """A route addressing one record by its id."""

    id: RecordId = Field(description="The record's id.")
