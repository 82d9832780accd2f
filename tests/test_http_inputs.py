"""Specification of the one parameter parser (web/params.py) and body reader (web/bodies.py).

Pure functions over the models the routes declare: no app, no database.
"""

from __future__ import annotations

from typing import ClassVar

import pytest
from pydantic import ConfigDict

from crm.exceptions import InvalidInput, InvalidQuery, NotFound
from web.bodies import Body, PhoneText, parse_body
from web.calls import CallPath, CallQuery
from web.params import parse_params
from web.recordings import CallPath as RecordPath


def refused_query(model: type, values: dict[str, str]) -> InvalidQuery:
    with pytest.raises(InvalidQuery) as caught:
        parse_params(model, values)
    return caught.value


def test_an_empty_parameter_is_not_given() -> None:
    """HTML forms send every field; an empty one means the default."""
    query = parse_params(CallQuery, {"caller": "", "since": "", "limit": "", "offset": ""})
    assert (query.caller, query.since, query.limit, query.offset) == (None, None, 50, 0)


@pytest.mark.parametrize("raw", ["+5", " 5", "5_0", "5.0", "1e3", "٥", "0x10", "-"])
def test_an_integer_parameter_is_ascii_digits(raw: str) -> None:
    """pydantic alone would read +5, ' 5', 5_0 and 5.0 as numbers."""
    refused = refused_query(CallQuery, {"limit": raw})
    assert (refused.field, refused.reason) == ("limit", "must be an integer")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("0", "must be at least 1"),
        ("501", "must be at most 500"),
        ("9" * 5000, "must be an integer of at most 19 digits"),
    ],
)
def test_a_limit_out_of_bounds_names_the_bound(raw: str, reason: str) -> None:
    assert refused_query(CallQuery, {"limit": raw}).reason == reason


def test_an_impossible_date_says_which_part_is_wrong() -> None:
    refused = refused_query(CallQuery, {"since": "2026-13-45"})
    assert refused.field == "since"
    assert "ISO 8601" in refused.reason
    assert "month must be in 1..12" in refused.reason


@pytest.mark.parametrize("raw", ["0", "2147483648", "9" * 5000, "abc", "5_0"])
def test_an_id_no_record_can_have_is_not_found(raw: str) -> None:
    """Any path id but a positive 32-bit integer names nothing: 404, never a 400 or 500."""
    with pytest.raises(NotFound):
        parse_params(RecordPath, {"id": raw})


def test_leading_zeros_still_name_the_record() -> None:
    assert parse_params(RecordPath, {"id": "0000000000005"}).id == 5


def test_a_call_id_that_is_no_number_is_a_bad_query() -> None:
    """The call routes' own rule (kept): not a number is 400, a number of no call 404."""
    assert refused_query(CallPath, {"id": "abc"}).field == "id"
    with pytest.raises(NotFound):
        parse_params(CallPath, {"id": "99999999999"})


class FaultRepair(Body):
    model_config = ConfigDict(extra="forbid")
    unknown: ClassVar[str] = "is not a repair field"

    fault: str


class FaultBody(Body):
    """A body made up for these tests: one nested object, a list of phones."""

    model_config = ConfigDict(extra="forbid")
    unknown: ClassVar[str] = "is not a test field"

    name: str
    phones: list[PhoneText] | None = None
    repair: FaultRepair | None = None


def refused_body(data: bytes) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        parse_body(FaultBody, data)
    return caught.value


@pytest.mark.parametrize(
    ("data", "field", "reason"),
    [
        (b"{}", "name", "is required"),
        (b'{"name": null}', "name", "is required"),
        (b'{"name": 5}', "name", "must be a string"),
        (b'{"name": "x", "phones": ["1", 2]}', "phones[2]", "must be a phone number as a string"),
        (b'{"name": "x", "repair": {"fault": 1}}', "repair.fault", "must be a string"),
        (b'{"name": "x", "repair": []}', "repair", "must be an object"),
        (b'{"name": 5, "colour": "red"}', "colour", "is not a test field"),
        (
            b'{"name": "x", "repair": {"fault": "f", "when": 1}}',
            "repair.when",
            "is not a repair field",
        ),
        (b'{"name": "\\u0000"}', "name", "must not contain NUL (\\u0000)"),
    ],
)
def test_a_refused_body_names_the_field_by_its_path(data: bytes, field: str, reason: str) -> None:
    """Unknown fields first (the old handlers checked them first), then in field order."""
    refused = refused_body(data)
    assert (refused.field, refused.reason) == (field, reason)


def test_json_types_are_not_coerced() -> None:
    """A number in quotes is a string, true is no integer: the client's JSON is taken as is."""

    class Counted(Body):
        count: int

    for data in (b'{"count": "5"}', b'{"count": true}', b'{"count": 5.0}'):
        with pytest.raises(InvalidInput, match="count: must be an integer"):
            parse_body(Counted, data)
    assert parse_body(Counted, b'{"count": 5}').count == 5
