"""Which numbers the hotline accepts for a call-back (and, later, a resident's phones)."""

from __future__ import annotations

import pytest

from crm.phones import normalise_phone


@pytest.mark.parametrize(
    ("raw", "digits"),
    [
        ("13912345678", "13912345678"),
        ("139 1234 5678", "13912345678"),
        ("+8613912345678", "13912345678"),
        ("021-62345678", "02162345678"),
        ("07552345678", "07552345678"),
        ("62345678", "62345678"),
        ("6234567", "6234567"),
    ],
)
def test_callable_numbers_come_back_as_digits(raw: str, digits: str) -> None:
    assert normalise_phone(raw) == digits


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "12345",
        "110",
        "12345678901",
        "1391234567",
        "139123456789",
        "0123",
        "1391234567a",
        "13912345678\n1",
        "01234567",
    ],
)
def test_what_is_not_a_callable_number_is_refused(raw: str) -> None:
    assert normalise_phone(raw) is None
