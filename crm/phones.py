"""Which strings are phone numbers we can call back (mainland China numbering).

Accepted: mobiles (11 digits, 1[3-9]…), landlines with the area code (0 + 2–3 digit
area + 7–8 digits, 10–12 digits in all), and local landlines without it (7–8 digits,
not starting with 0 or 1). Spaces and dashes as people type them are ignored; anything
else, such as too short, a letter or a short service number, is refused.
"""

from __future__ import annotations

import re

_MOBILE = re.compile(r"1[3-9]\d{9}")
_LANDLINE = re.compile(r"0[1-9]\d{8,10}")
_LOCAL = re.compile(r"[2-9]\d{6,7}")


def normalise_phone(raw: str) -> str | None:
    """The digits of a callable number, or None if it is not one."""
    digits = re.sub(r"[\s-]", "", raw)
    if digits.startswith("+86"):
        digits = digits[3:]
    for pattern in (_MOBILE, _LANDLINE, _LOCAL):
        if pattern.fullmatch(digits):
            return digits
    return None


def masked(number: str | None) -> str:
    """A number as a log line or a screen without the right to see it shows it.

    The last four digits stay (enough to tell two callers apart when talking about
    them), and the first three of a longer number (the carrier or area): 138****0001.
    """
    if not number:
        return "-"
    if len(number) <= 4:
        return "*" * len(number)
    head = number[:3] if len(number) >= 10 else ""
    return head + "*" * (len(number) - len(head) - 4) + number[-4:]
