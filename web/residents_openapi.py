"""OpenAPI description of the resident directory's endpoints (``web.residents``).

As for the cases (``web.cases_openapi``), record schemas are derived from the record
dataclasses' type hints and every field must be described here, so the document can
neither omit a field the API sends nor describe one it does not. The errors get their own
schema: these endpoints answer with codes (stale-version, too-large …) the ACD's do not.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import datetime
from typing import Any

from crm.residents import MAX_PAGE, MAX_PHONES, NOTE_MAX, SOURCES, ResidentRecord, RoomRecord
from crm.roster_import import ImportReport, Rejected
from web.cases_openapi import (
    _field,
    _id_param,
    _json_response,
    _object,
    _query_param,
    _ref,
    staff_operation,
)
from web.residents import MAX_ROSTER_BYTES, ROSTER_TYPES

# Schema name of each record; nested records are referred to by these names.
RECORDS: dict[type[Any], tuple[str, str]] = {
    ResidentRecord: ("ResidentRecord", "A resident, or a caller's contact still to complete."),
    RoomRecord: ("RoomRecord", "A unit of the estate (栋号 + 房号)."),
    ImportReport: ("RosterImportReport", "What a roster import changed, and what it refused."),
    Rejected: ("RosterRejection", "A roster row refused, with its line in the file."),
}

DESCRIPTIONS: dict[str, dict[str, str]] = {
    "ResidentRecord": {
        "id": "Resident id (cases name it as resident_id).",
        "name": "姓名; null for a caller not yet identified.",
        "building": "栋号; null until the contact is placed in a room.",
        "room": "房号; null until the contact is placed in a room.",
        "phones": "Numbers as digits, first given first; family members may share one.",
        "complete": "Identified: has a name and a room. Contacts made at hang-up are not.",
        "source": f"Where the resident came from: {', '.join(SOURCES)}.",
        "note": "Staff's note (e.g. hard of hearing, call after 18:00).",
        "created_at": "When added.",
        "updated_at": "Last change.",
        "version": "Send it back with a change; a stale one is 409 stale-version.",
    },
    "RoomRecord": {
        "id": "Room id.",
        "building": "栋号, e.g. 3 or 12A.",
        "room": "房号, e.g. 201 or 1-1201.",
    },
    "RosterImportReport": {
        "added": "Residents added (new building, room and name).",
        "updated": "Residents whose phones were replaced by the file's.",
        "unchanged": "Rows that matched the directory already.",
        "rejected": "Rows refused, in file order; the other rows were applied.",
    },
    "RosterRejection": {
        "line": "Line in the file, the header being line 1 (where a multi-line row starts).",
        "reason": "'field: reason', e.g. 'phones[2]: '4444' is not a phone number'.",
    },
}

ERROR_IDS = [
    "invalid-input",
    "invalid-query",
    "not-found",
    "stale-version",
    "conflict",
    "too-large",
    "unsupported-media-type",
    "unauthorised",
    "closed",
    "storage-unavailable",
]


def _schema_of(hint: Any) -> dict[str, Any]:
    if hint is datetime:
        return {"type": "string", "format": "date-time"}
    simple = {str: "string", int: "integer", bool: "boolean", float: "number"}
    if hint in simple:
        return {"type": simple[hint]}
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
        schema = _schema_of(inner)
        if "$ref" in schema:
            return {"anyOf": [schema, {"type": "null"}]}
        return {**schema, "type": [schema["type"], "null"]}
    if origin in (tuple, list):
        return {"type": "array", "items": _schema_of(typing.get_args(hint)[0])}
    if hint in RECORDS:
        return _ref(RECORDS[hint][0])
    raise TypeError(f"no schema for {hint!r}")


def record_schema(record: type[Any]) -> dict[str, Any]:
    name, description = RECORDS[record]
    hints = typing.get_type_hints(record)
    described = DESCRIPTIONS[name]
    properties = {}
    for f in dataclasses.fields(record):
        if f.name not in described:
            raise KeyError(f"{name}.{f.name} has no description")
        properties[f.name] = {**_schema_of(hints[f.name]), "description": described[f.name]}
    extra = set(described) - set(properties)
    if extra:
        raise KeyError(f"{name} describes fields it does not have: {extra}")
    return _object(description, **properties)


def resident_openapi_schemas() -> dict[str, Any]:
    schemas = {RECORDS[cls][0]: record_schema(cls) for cls in RECORDS}
    text = "string"
    schemas["ResidentPage"] = _object(
        "A page of residents in the order they were added.",
        items={"type": "array", "items": _ref("ResidentRecord")},
        total=_field("integer", "Matches in all pages."),
        limit=_field("integer", "Page size used."),
        offset=_field("integer", "Offset used."),
    )
    schemas["ResidentMatches"] = _object(
        "Everyone with the number: identified residents first, then in the order added.",
        items={"type": "array", "items": _ref("ResidentRecord")},
    )
    schemas["RoomList"] = _object(
        "Rooms by building and room.", items={"type": "array", "items": _ref("RoomRecord")}
    )
    phones = {
        "type": "array",
        "description": f"1 to {MAX_PHONES} mainland mobiles or landlines with area code, "
        "written any usual way (138-0013-8000, +86 …); stored as digits, repeats dropped. "
        "A refused one is named by its place, phones[1] being the first.",
        "items": {"type": "string"},
        "minItems": 1,
        "maxItems": MAX_PHONES,
    }
    name = _field(text, "姓名: 1-40 characters on one line, no markup (< > ; = …).")
    building = _field(text, "栋号 of a room in the directory (see /api/rooms).")
    room = _field(text, "房号; an unknown room is refused (field room).")
    note = _field([text, "null"], f"Up to {NOTE_MAX} characters.")
    by = _field(text, "Who does it (named in the audit trail).")
    schemas["ResidentCreate"] = {
        "type": "object",
        "description": "A resident of a known room. Unknown fields are refused.",
        "required": ["name", "building", "room", "phones", "by"],
        "additionalProperties": False,
        "properties": {
            "name": name,
            "building": building,
            "room": room,
            "phones": phones,
            "note": note,
            "by": by,
        },
    }
    schemas["ResidentUpdate"] = {
        "type": "object",
        "description": "The fields to change; those left out stay as they are. building "
        "and room go together. Naming and housing a contact completes it unless complete "
        "says otherwise. A change that changes nothing keeps the version. Unknown fields "
        "are refused.",
        "required": ["version", "by"],
        "additionalProperties": False,
        "properties": {
            "version": _field("integer", "The resident version you read.", minimum=1),
            "by": by,
            "name": name,
            "building": building,
            "room": room,
            "phones": phones,
            "note": _field([text, "null"], f"Up to {NOTE_MAX} characters; null clears it."),
            "complete": _field("boolean", "Identified; true needs a name and a room."),
        },
    }
    schemas["RoomCreate"] = {
        **_object(
            "A unit to add; one that exists is returned as it is.",
            building=_field(text, "栋号: letters, digits, 栋/号楼/座, up to 12."),
            room=_field(text, "房号: letters, digits and -, up to 12."),
        ),
        "additionalProperties": False,
    }
    schemas["ResidentApiError"] = _object(
        "Why a request was refused; nothing was written.",
        error_id=_field(text, "Stable code clients can branch on.", enum=ERROR_IDS),
        message=_field(text, "Human-readable explanation."),
        details=_field(
            "object",
            "invalid-input / invalid-query: field and reason; not-found: id; "
            "stale-version: current_version; too-large: max_bytes; "
            "unsupported-media-type: expected; otherwise empty.",
            properties={
                "field": _field(text, "The field refused, e.g. phones[2] or room."),
                "reason": _field(text, "What is wrong with it."),
                "id": _field(["integer", text], "The id that was not found."),
                "current_version": _field("integer", "The resident's version now: reload."),
                "max_bytes": _field("integer", "The largest roster file accepted."),
                "expected": {
                    "type": "array",
                    "description": "Content types accepted.",
                    "items": {"type": text},
                },
            },
        ),
    )
    return schemas


def _errors(descriptions: dict[str, str]) -> dict[str, Any]:
    """Error responses by status, each described for its operation."""
    return {
        status: _json_response(text, "ResidentApiError") for status, text in descriptions.items()
    }


def resident_openapi_paths() -> dict[str, Any]:
    guarded = _errors(
        {
            "401": "No or wrong staff token (error_id unauthorised).",
            "403": "No staff token is configured (error_id closed).",
            "503": "The database is unavailable (error_id storage-unavailable).",
        }
    )
    bad_query = _errors({"400": "A filter was refused (error_id invalid-query: field, reason)."})
    bad_input = _errors({"400": "A value was refused (error_id invalid-input: field, reason)."})
    not_found = _errors({"404": "No such resident (error_id not-found)."})

    def op(
        op_id: str,
        summary: str,
        ok: dict[str, Any],
        refused: dict[str, Any],
        *,
        body: str | None = None,
        params: list[dict[str, Any]] | None = None,
        status: str = "200",
    ) -> dict[str, Any]:
        responses = {status: ok, **refused, **guarded}
        return staff_operation(op_id, summary, responses, body=body, params=params)

    resident_id = [_id_param("Resident id.")]
    resident = _json_response("The resident.", "ResidentRecord")
    text = {"type": "string"}
    roster_body = {
        "required": True,
        "description": "The roster file as Excel saves it: a header naming building, room, "
        "name and phones (or 栋号, 房号, 姓名, 电话), one resident a row, several numbers "
        "in a cell separated by ; or 、. UTF-8 (with or without BOM) or GB18030, whatever "
        f"the charset parameter says. At most {MAX_ROSTER_BYTES} bytes.",
        "content": {kind: {"schema": {"type": "string"}} for kind in ROSTER_TYPES},
    }
    return {
        "/api/residents": {
            "get": op(
                "listResidents",
                "Residents, in the order added, with filters",
                _json_response("A page.", "ResidentPage"),
                bad_query,
                params=[
                    _query_param("building", "栋号.", text),
                    _query_param("room", "房号.", text),
                    _query_param("phone", "Has this number (any usual spelling).", text),
                    _query_param("name", "Part of the name (王 finds 王芳).", text),
                    _query_param(
                        "complete", "Identified or not (true/false).", {"type": "boolean"}
                    ),
                    _query_param(
                        "limit", f"Page size (1-{MAX_PAGE}).", {"type": "integer", "default": 50}
                    ),
                    _query_param("offset", "Offset.", {"type": "integer", "default": 0}),
                ],
            ),
            "post": op(
                "createResident",
                "Add a resident of a known room",
                _json_response("The new resident.", "ResidentRecord"),
                bad_input,
                body="ResidentCreate",
                status="201",
            ),
        },
        "/api/residents/lookup": {
            "get": op(
                "lookupCaller",
                "Who may be calling from a number (several residents may share it)",
                _json_response("The matches, perhaps none.", "ResidentMatches"),
                _errors({"400": "Not a phone number (error_id invalid-query, field phone)."}),
                params=[{**_query_param("phone", "The caller's number.", text), "required": True}],
            )
        },
        "/api/residents/import": {
            "post": {
                **op(
                    "importRoster",
                    "Import the roster file; bad rows are reported with their line",
                    _json_response(
                        "What changed (or would, on a dry run); the good rows are applied "
                        "in one transaction and importing the same file again changes nothing.",
                        "RosterImportReport",
                    ),
                    _errors(
                        {
                            "400": "by missing or refused, or the file as a whole is unusable: "
                            "no header, not text, an Excel workbook (error_id invalid-input, "
                            "field by or file).",
                            "413": f"Larger than {MAX_ROSTER_BYTES} bytes (error_id too-large).",
                            "415": "Not sent as text/csv (error_id unsupported-media-type).",
                        }
                    ),
                    params=[
                        {
                            **_query_param("by", "Who imports (named in the audit trail).", text),
                            "required": True,
                        },
                        _query_param(
                            "dry_run",
                            "Report what would change; write nothing.",
                            {"type": "boolean"},
                        ),
                    ],
                ),
                "requestBody": roster_body,
            }
        },
        "/api/residents/{id}": {
            "get": op("getResident", "One resident", resident, not_found, params=resident_id),
            "patch": op(
                "updateResident",
                "Correct or complete a resident",
                _json_response("The resident after the change.", "ResidentRecord"),
                {
                    **bad_input,
                    **not_found,
                    **_errors(
                        {
                            "409": "Changed by someone else since you read it (error_id "
                            "stale-version, details.current_version): reload and apply again."
                        }
                    ),
                },
                body="ResidentUpdate",
                params=resident_id,
            ),
        },
        "/api/rooms": {
            "get": op(
                "listRooms",
                "Rooms of the estate",
                _json_response("The rooms.", "RoomList"),
                bad_query,
                params=[_query_param("building", "Only this building's (栋号).", text)],
            ),
            "post": op(
                "addRoom",
                "Add a room (idempotent: an existing one is returned unchanged)",
                _json_response("The room.", "RoomRecord"),
                bad_input,
                body="RoomCreate",
                status="201",
            ),
        },
    }
