"""Import the estate's roster (住户名册) from the CSV file a property office keeps in Excel.

Offices export from Excel in whatever it offers: UTF-8 with or without its byte-order mark,
or GB18030 from a Chinese Windows; English or Chinese headers; several numbers in one cell
written as people write them. A bad row must not stop a roster of thousands: it is
reported with its line in the file and the reason, and the good rows are imported. The
whole file is applied in one transaction, so a database failure leaves the directory as it
was, and importing the same file again changes nothing.
"""

from __future__ import annotations

import asyncio
import codecs
import csv
import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crm import validation
from crm.exceptions import InvalidInput
from crm.phones import normalise_phone
from crm.repository import DOCUMENTED_FIELDS, record_json
from crm.residents import ResidentDirectory, RosterEntry, check_name, check_phones, check_room

# Header cells (compared without case or surrounding spaces) that name each column.
COLUMNS: dict[str, tuple[str, ...]] = {
    "building": ("building", "栋号"),
    "room": ("room", "房号"),
    "name": ("name", "姓名"),
    "phones": ("phones", "phone", "电话", "手机"),
}
_CHINESE = {"building": "栋号", "room": "房号", "name": "姓名", "phones": "电话"}
# Between numbers in one cell: ; / 、 and commas, half- or full-width (spaces as a last resort).
_PHONE_SEPARATORS = re.compile(r"[;；/／、,，]")
# A long number Excel shows (and exports) in scientific notation, e.g. 1.38001E+10.
_EXCEL_NUMBER = re.compile(r"\d(\.\d+)?[eE]\+\d+")
_XLSX = b"PK\x03\x04"


@dataclass(frozen=True, slots=True)
class Rejected:
    """A roster row refused, with its line in the file."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    line: int
    """Line in the file, the header being line 1 (where a multi-line row starts)."""
    reason: str
    """'field: reason', e.g. 'phones[2]: '4444' is not a phone number'."""

    def to_json(self) -> dict[str, Any]:
        return record_json(self)


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What a roster import changed, and what it refused."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    added: int
    """Residents added (new building, room and name)."""
    updated: int
    """Residents whose phones were replaced by the file's."""
    unchanged: int
    """Rows that matched the directory already."""
    rejected: list[Rejected] = field(default_factory=list)
    """Rows refused, in file order; the other rows were applied."""

    def to_json(self) -> dict[str, Any]:
        return record_json(self)


@dataclass(frozen=True, slots=True)
class Roster:
    """A roster file read and checked: the rows to apply, and those refused."""

    entries: list[RosterEntry]
    rejected: list[Rejected]


async def import_roster(
    directory: ResidentDirectory, path: Path | str, *, by: str = "import", dry_run: bool = False
) -> ImportReport:
    """Read the CSV roster at ``path`` and apply its good rows to the directory.

    Raises ``InvalidInput`` with field ``file`` when the file as a whole cannot be used
    (unreadable, not text, no header naming the four columns); bad rows are reported.
    """
    actor = validation.actor("by", by)
    roster = await asyncio.to_thread(read_roster, Path(path))
    return await _apply_roster(directory, roster, by=actor, dry_run=dry_run)


async def import_roster_data(
    directory: ResidentDirectory, data: bytes, *, by: str, dry_run: bool = False
) -> ImportReport:
    """``import_roster`` for a file's bytes that came some other way (an HTTP upload)."""
    actor = validation.actor("by", by)
    roster = await asyncio.to_thread(parse_roster, data)
    return await _apply_roster(directory, roster, by=actor, dry_run=dry_run)


async def _apply_roster(
    directory: ResidentDirectory, roster: Roster, *, by: str, dry_run: bool = False
) -> ImportReport:
    """Apply a checked roster's good rows; the report also lists the rows it refused."""
    changes = await directory.apply_roster(roster.entries, by=by, dry_run=dry_run)
    return ImportReport(
        added=changes.added,
        updated=changes.updated,
        unchanged=changes.unchanged,
        rejected=roster.rejected,
    )


def read_roster(path: Path) -> Roster:
    try:
        data = path.read_bytes()
    except OSError as err:
        raise InvalidInput("file", f"cannot read {path}: {err.strerror or err}") from err
    return parse_roster(data)


def parse_roster(data: bytes) -> Roster:
    """Check every row of a roster file's bytes; the file as a whole must have a header."""
    text = decode_roster(data)
    reader = csv.reader(io.StringIO(text, newline=""), _dialect(text.split("\n", 1)[0]))
    rows = _numbered_rows(reader)
    try:
        _, header = next(rows)
    except StopIteration:
        raise InvalidInput(
            "file", "is empty: expected a header row (building, room, name, phones)"
        ) from None
    columns = _columns(header)
    entries: list[RosterEntry] = []
    rejected: list[Rejected] = []
    first_line: dict[tuple[str, str, str], int] = {}
    for line, cells in rows:
        if not any(cell.strip() for cell in cells):
            continue  # blank lines, and Excel's rows of empty cells
        try:
            entry = _entry(cells, columns, len(header))
        except InvalidInput as err:
            rejected.append(Rejected(line, f"{err.field}: {err.reason}"))
            continue
        if entry.key in first_line:
            rejected.append(Rejected(line, f"duplicate of line {first_line[entry.key]}"))
            continue
        first_line[entry.key] = line
        entries.append(entry)
    return Roster(entries, rejected)


def decode_roster(data: bytes) -> str:
    """The file's text: UTF-8 (Excel adds a BOM), else GB18030 (Chinese Windows exports)."""
    if data.startswith(_XLSX):
        raise InvalidInput("file", "is an Excel workbook, not CSV: save it as 'CSV UTF-8' first")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = _decode(data, "utf-16")
    elif data.startswith(codecs.BOM_UTF8):
        text = _decode(data, "utf-8-sig")
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = _decode(data, "gb18030")
    if "\x00" in text:
        raise InvalidInput("file", "is not a text file: save the roster as CSV")
    return text


def split_phones(cell: str) -> list[str]:
    """The numbers written in one cell, as typed.

    Spaces inside a number (139 1234 5678) are kept together when the whole is a number;
    otherwise spaces separate numbers too.
    """
    numbers: list[str] = []
    for part in _PHONE_SEPARATORS.split(cell):
        part = part.strip()
        if not part:
            continue
        if normalise_phone(part) is None and len(part.split()) > 1:
            numbers += part.split()
        else:
            numbers.append(part)
    return numbers


def _decode(data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as err:
        raise InvalidInput(
            "file",
            f"is not readable text (byte {err.start} is not {encoding.upper()}): "
            "save the roster from Excel as 'CSV UTF-8'",
        ) from err


def _dialect(first_line: str) -> type[csv.Dialect]:
    """Excel's CSV, or its tab-separated "Unicode text" when the header has tabs, no commas."""
    if "\t" in first_line and "," not in first_line:
        return csv.excel_tab
    return csv.excel


def _numbered_rows(reader: Any) -> Iterator[tuple[int, list[str]]]:
    """Rows with the line each starts on (a quoted cell may span lines)."""
    while True:
        line = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise InvalidInput("file", f"line {line}: not valid CSV ({err})") from err
        yield line, cells


@dataclass(frozen=True, slots=True)
class _Columns:
    building: int
    room: int
    name: int
    phones: tuple[int, ...]  # 电话 and 手机 may both be there


def _columns(header: Sequence[str]) -> _Columns:
    found: dict[str, list[int]] = {key: [] for key in COLUMNS}
    for index, cell in enumerate(header):
        label = cell.strip().strip("*").strip().lower()
        for key, names in COLUMNS.items():
            if label in names:
                found[key].append(index)
    missing = [key for key, indexes in found.items() if not indexes]
    if missing:
        wanted = ", ".join(f"{key} ({_CHINESE[key]})" for key in missing)
        seen = ", ".join(repr(cell.strip()) for cell in header) or "nothing"
        raise InvalidInput(
            "file",
            f"line 1: no column for {wanted}; the header must name building, room, name "
            f"and phones (or 栋号, 房号, 姓名, 电话), found {seen}",
        )
    for key in ("building", "room", "name"):
        if len(found[key]) > 1:
            twice = " and ".join(repr(header[i].strip()) for i in found[key])
            raise InvalidInput("file", f"line 1: two columns for {key}: {twice}")
    return _Columns(
        building=found["building"][0],
        room=found["room"][0],
        name=found["name"][0],
        phones=tuple(found["phones"]),
    )


def _entry(cells: Sequence[str], columns: _Columns, width: int) -> RosterEntry:
    extra = [cell for cell in cells[width:] if cell.strip()]
    if extra:
        raise InvalidInput(
            "row",
            f"{len(cells)} cells but the header has {width}; "
            "separate phone numbers with ; or 、 (a comma starts a new cell)",
        )

    def cell(index: int) -> str:
        return cells[index] if index < len(cells) else ""

    building, room = check_room(cell(columns.building), cell(columns.room))
    name = check_name("name", cell(columns.name))
    numbers = [n for index in columns.phones for n in split_phones(cell(index))]
    for position, number in enumerate(numbers, 1):
        if _EXCEL_NUMBER.fullmatch(number):
            raise InvalidInput(
                f"phones[{position}]",
                f"{number!r} is a number Excel shortened: format the phone column as text "
                "and export again",
            )
    return RosterEntry(building, room, name, check_phones(numbers))
