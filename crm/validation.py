"""Checks for values people type into the CRM, each failing with the field and the reason.

Every write validates all its fields before it opens a transaction, so a refused request
leaves nothing half-written. Two sets of text rules, one for each kind of field:

- free text (a case's summary and details, notes, remarks): stripped, bounded, line
  breaks and tabs kept (CR LF stored as LF); refused are NUL and the other C0 controls,
  DEL, the C1 controls and the bidi embeddings, overrides and isolates (U+202A-U+202E,
  U+2066-U+2069), which show text in another order than it is stored.
- ``name_text``, for every name-like field (residents', agents' and technicians' names,
  who made a change, departments, queue labels): one line, and none of the characters
  Unicode calls control, format or unassigned (category C: also zero-width spaces and
  joiners, U+FEFF, bidi marks), no line or paragraph separators, no ``<`` or ``>``, and
  no ``= + - @`` (nor their full-width forms) at the start, which a spreadsheet would
  run as a formula (``@SUM(1+1)``; a hyphen starts no one's name and ``-2+3`` is a
  formula, so it is refused too; see ``crm.spreadsheet`` for the CSV we write). Names,
  buildings and rooms must look like what they are, so markup cannot hide in them.

SQL goes through bound parameters and pages escape on output, so these rules are about
what people will read later (and what a spreadsheet does with it), not about injection.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from crm.exceptions import InvalidInput
from crm.phones import normalise_phone
from crm.spreadsheet import FORMULA_START

# Refused in free text (see the module's docstring); \t and \n are kept.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# 3, 12, A, B2, 3栋 / 12号楼 / A座: letters, digits and a few building words; no markup.
_BUILDING = re.compile(r"[0-9A-Za-z\u4e00-\u9fff-]{1,12}")
_ROOM = re.compile(r"[0-9A-Za-z-]{1,12}")
_NAME = re.compile(r"[^<>{}\[\]\\/;\"=`$|\n\r\t]{1,40}")
# A case, an order or a call-back is written by someone: "agent:3", "张三", "system".
_ACTOR = re.compile(r"[^<>{}\[\]\\;\"=`$|]{1,80}")

MAX_YUAN = Decimal(100_000)
# Times people type (filters, appointments, deadlines met) must fall, in UTC, within
# these years. Python's datetime stops at years 1 and 9999, so a time at either end
# cannot even be converted to UTC (9999-12-31T23:59:59-14:00 is in year 10000) or have
# a deadline added to it, and the database would be the one to fail. Nothing a hotline
# records happened before 1900; the upper end leaves a year for deadline arithmetic.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)  # exclusive: the last allowed year is 9998


def text(field: str, value: object, *, max_len: int, required: bool = False) -> str | None:
    """Free text: stripped, at most ``max_len`` characters, no control characters."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise InvalidInput(field, "is required")
        return None
    if not isinstance(value, str):
        raise InvalidInput(field, "must be a string")
    value = value.strip().replace("\r\n", "\n")  # a browser's textarea sends CR LF
    if len(value) > max_len:
        raise InvalidInput(field, f"must be at most {max_len} characters, got {len(value)}")
    found = _CONTROL.search(value)
    if found:
        code = f"U+{ord(found.group()):04X}"
        raise InvalidInput(field, f"must not contain control characters ({code})")
    return value


def required_text(field: str, value: object, *, max_len: int) -> str:
    result = text(field, value, max_len=max_len, required=True)
    assert result is not None
    return result


def name_text(
    field: str,
    value: object,
    *,
    max_len: int,
    required: bool = True,
    allowed: re.Pattern[str] | None = None,
    looks_like: str = "",
) -> str | None:
    """A name-like field: one line, nothing invisible, no markup, no formula at the start.

    ``allowed``, when given, is the whole value's stricter shape, refused with
    ``looks_like`` as the reason (it replaces the check for ``<`` and ``>``).
    """
    result = text(field, value, max_len=max_len, required=required)
    if result is None:
        return None
    if any(c in result for c in "\n\r\t"):
        raise InvalidInput(field, "must be on one line (no line breaks or tabs)")
    for char in result:
        category = unicodedata.category(char)
        if category[0] == "C" or category in ("Zl", "Zp"):
            raise InvalidInput(
                field, f"must not contain control or invisible characters (U+{ord(char):04X})"
            )
    if result.startswith(FORMULA_START):
        raise InvalidInput(
            field,
            f"must not start with {result[0]} (a spreadsheet would run it as a formula: "
            "= + - @ may not begin a name)",
        )
    if allowed is not None and not allowed.fullmatch(result):
        raise InvalidInput(field, looks_like)
    if allowed is None and ("<" in result or ">" in result):
        raise InvalidInput(field, "must not contain markup (< or >)")
    return result


def required_name_text(field: str, value: object, *, max_len: int) -> str:
    result = name_text(field, value, max_len=max_len)
    assert result is not None
    return result


def name(field: str, value: object, *, required: bool = True) -> str | None:
    """A person's name: Chinese or Latin, 1 to 40 characters, no markup or code symbols."""
    return name_text(
        field,
        value,
        max_len=40,
        required=required,
        allowed=_NAME,
        looks_like="must be a person's name (no markup or symbols like < > ; =)",
    )


def actor(field: str, value: object) -> str:
    """Who does it: required on every change, because the audit trail names them."""
    result = name_text(
        field,
        value,
        max_len=80,
        allowed=_ACTOR,
        looks_like="must name a person or agent (no markup or symbols)",
    )
    assert result is not None
    return result


def building(field: str, value: object) -> str:
    result = required_text(field, value, max_len=12)
    if not _BUILDING.fullmatch(result):
        raise InvalidInput(field, f"must be a building number like 3 or 12A, got {result!r}")
    return result


def room(field: str, value: object) -> str:
    result = required_text(field, value, max_len=12)
    if not _ROOM.fullmatch(result):
        raise InvalidInput(field, f"must be a room number like 201 or 1-1201, got {result!r}")
    return result


def phone(field: str, value: object) -> str:
    """A callable mainland number, as digits (see crm.phones)."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(field, "is required")
    digits = normalise_phone(value)
    if digits is None:
        raise InvalidInput(
            field, f"{value!r} is not a phone number (mobile, or landline with area code)"
        )
    return digits


def choice(
    field: str, value: object, allowed: tuple[str, ...], *, required: bool = True
) -> str | None:
    if value is None and not required:
        return None
    if value not in allowed:
        raise InvalidInput(field, f"must be one of {', '.join(allowed)}, got {value!r}")
    assert isinstance(value, str)
    return value


def flag(field: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(field, "must be true or false")
    return value


def money_fen(field: str, value: object) -> int:
    """Yuan as given (number or string, at most 2 decimals) to whole fen; 0 to 100 000."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidInput(field, "must be an amount in yuan, like 35 or 12.50")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation as err:
        raise InvalidInput(field, f"must be an amount in yuan, got {value!r}") from err
    if not amount.is_finite():
        raise InvalidInput(field, "must be a finite amount")
    if amount < 0:
        raise InvalidInput(field, "must not be negative")
    if amount > MAX_YUAN:
        raise InvalidInput(field, f"must be at most {MAX_YUAN} yuan; check the amount")
    if amount != amount.quantize(Decimal("0.01")):
        raise InvalidInput(field, "must have at most 2 decimals (fen)")
    return int(amount * 100)


def when(
    field: str, value: object, *, required: bool = False, naive_is_utc: bool = False
) -> datetime | None:
    """An ISO 8601 time with its zone; a time without one would be a guess.

    ``naive_is_utc`` reads a time without a zone as UTC instead (the call list's filters,
    documented so). Every time is bounded (``EARLIEST``..``LATEST``, see there).
    """
    if value is None:
        if required:
            raise InvalidInput(field, "is required")
        return None
    if not isinstance(value, str):
        raise InvalidInput(field, "must be an ISO 8601 time like 2026-11-24T09:30:00+08:00")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as err:
        raise InvalidInput(field, f"must be an ISO 8601 time, got {value!r}") from err
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        if not naive_is_utc:
            raise InvalidInput(field, "must include a time zone, like +08:00 or Z")
        parsed = parsed.replace(tzinfo=UTC)
    check_time_range(field, parsed)
    return parsed


def check_time_range(field: str, value: datetime) -> None:
    """Refuse an aware time whose UTC value lies outside ``EARLIEST``..``LATEST``."""
    try:
        utc = value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+14:00 is in year 0 in UTC
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        years = f"{EARLIEST.year} to {LATEST.year - 1}"
        raise InvalidInput(field, f"must be a time from {years} (UTC), got {value.isoformat()}")
