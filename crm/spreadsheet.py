"""Spreadsheet files (CSV) the product writes: a cell is never run as a formula.

A property office opens every CSV in Excel or WPS. A cell that starts with ``=``, ``+``,
``-`` or ``@`` (or their full-width forms, which Chinese input methods type) is read as a
formula there, so a resident's name or a case summary like ``=HYPERLINK("http://…")`` or
``@SUM(1+1)`` would run on a colleague's machine (CSV injection). A tab or carriage
return at the start is how such a cell hides its first character. Every text cell that
starts with one of these is written with a leading ``'``, the neutraliser Excel itself
uses for "this is text"; numbers are written as numbers (``-5`` is an amount, not a
formula). Names with such a start are refused when they are typed in or imported
(``crm.validation.name_text``); free text may hold them and is neutralised here.

Nothing may write CSV except through ``csv_text`` (or ``safe_cell``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from decimal import Decimal

# What a spreadsheet reads as the start of a formula, in ASCII and full width.
FORMULA_START = ("=", "+", "-", "@", "\uff1d", "\uff0b", "\uff0d", "\uff20")
_HIDDEN_START = ("\t", "\r", "\n")


def safe_cell(value: object) -> str | int | float | Decimal:
    """The cell as it may be written: text starting like a formula gets a leading ``'``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return value
    text = str(value)
    if text.startswith(FORMULA_START + _HIDDEN_START):
        return "'" + text
    return text


def csv_text(rows: Iterable[Sequence[object]]) -> str:
    """Rows as Excel's CSV (CR LF line ends, quoted where needed), every cell made safe."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, dialect=csv.excel)
    for row in rows:
        writer.writerow([safe_cell(cell) for cell in row])
    return out.getvalue()
