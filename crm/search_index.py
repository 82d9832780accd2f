"""The search index: one row of terms per call and per case, kept in step with the text.

One row per call (all its turns, ``BOUNDARY`` between them) rather than per turn keeps a
million calls at a million rows; the few calls of a result page have their matching
turns found again in Python (crm/search.py). The row's key is the call's (or case's) id,
so the date and queue filters join on the primary key, and id order is arrival order.

    SQLite       FTS5 virtual table (unicode61 over the terms joined by spaces), rowid = id
    PostgreSQL   a table of (id, tsvector written as a literal) with a GIN index

Neither is a model in crm.models (an FTS5 table cannot be one), so schema comparisons
leave them out through ``in_models``. Rows are written in the transaction that changes
the text (a transcript stored, a case opened or edited, a note added), so a search never
sees text without its terms or terms of text that is gone.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, TextClause, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from crm import models as m
from crm.search_terms import Phrase, document

CALLS = "search_call"
CASES = "search_case"
# PostgreSQL keeps at most this position in a tsvector (later ones all read as this) and
# 256 positions per term; a transcript longer than that (hours of talk) may miss a phrase
# said near its end.
_MAX_POSITION = 16383
_BATCH = 2000


class Where:
    """The parts of a case the index holds."""

    SUMMARY = "summary"
    DETAIL = "detail"
    NOTE = "note"


def in_models(name: str | None, type_: str, _parents: Any) -> bool:
    """Alembic's ``include_name``: False for the index's tables (and FTS5's own tables)."""
    return not (
        type_ == "table"
        and name is not None
        and any(name == t or name.startswith(f"{t}_") for t in (CALLS, CASES))
    )


# -- how the terms are stored and asked for ------------------------------------------------


def tsvector(terms: Sequence[str]) -> str:
    """``terms`` as a tsvector literal: each term with its positions, in order."""
    places: dict[str, list[int]] = {}
    for position, term in enumerate(terms, start=1):
        places.setdefault(term, []).append(min(position, _MAX_POSITION))
    return " ".join(
        f"'{_quoted(term)}':{','.join(map(str, at[:256]))}" for term, at in places.items()
    )


def tsquery(query: Phrase) -> str:
    """The phrase as a tsquery literal: a <-> b <-> c, the last ``:*`` if a prefix."""
    parts = [f"'{_quoted(term)}'" for term in query.terms]
    if query.prefix:
        parts[-1] += ":*"
    return " <-> ".join(parts)


def fts_match(query: Phrase) -> str:
    """The phrase as an FTS5 query: "a b c", followed by * if a prefix."""
    return '"' + " ".join(query.terms) + '"' + ("*" if query.prefix else "")


def _quoted(term: str) -> str:
    return term.replace("\\", "\\\\").replace("'", "''")


def key_column(dialect: str, table: str) -> str:
    if dialect == "sqlite":
        return "rowid"
    return "call_id" if table == CALLS else "case_id"


def _writes(dialect: str, table: str) -> tuple[TextClause, TextClause]:
    """(delete one row, insert or replace one row) for ``table``."""
    key = key_column(dialect, table)
    delete = text(f"DELETE FROM {table} WHERE {key} = :key")
    if dialect == "sqlite":
        return delete, text(f"INSERT INTO {table} (rowid, terms) VALUES (:key, :terms)")
    upsert = text(
        f"INSERT INTO {table} ({key}, terms) VALUES (:key, CAST(:terms AS tsvector)) "
        f"ON CONFLICT ({key}) DO UPDATE SET terms = EXCLUDED.terms"
    )
    return delete, upsert


def _stored(dialect: str, terms: Sequence[str]) -> str:
    return " ".join(terms) if dialect == "sqlite" else tsvector(terms)


# -- the text of a call or case, as lines --------------------------------------------------


def call_lines_query(call_ids: Sequence[int]) -> Any:
    """Each turn of the calls: call id, speaker, start and end, text; in call order."""
    segment = m.TranscriptSegment
    return (
        select(segment.call_id, segment.speaker, segment.start_ms, segment.end_ms, segment.text)
        .where(segment.call_id.in_(call_ids))
        .order_by(segment.call_id, segment.seq)
    )


async def case_lines(
    session: AsyncSession, case_ids: Sequence[int]
) -> dict[int, list[tuple[str, str]]]:
    """Each case's searchable text as (where, text): its summary, detail, then notes."""
    found: dict[int, list[tuple[str, str]]] = {case_id: [] for case_id in case_ids}
    if not case_ids:
        return found
    cases = await session.execute(
        select(m.Case.id, m.Case.summary, m.Case.detail).where(m.Case.id.in_(case_ids))
    )
    for case_id, summary, detail in cases:
        found[case_id].append((Where.SUMMARY, summary))
        if detail:
            found[case_id].append((Where.DETAIL, detail))
    notes = await session.execute(_notes_query().where(m.AuditEntry.case_id.in_(case_ids)))
    for case_id, note in notes:
        found[case_id].append((Where.NOTE, note))
    return found


def _notes_query() -> Any:
    entry = m.AuditEntry
    return (
        select(entry.case_id, entry.new)
        .where(entry.entity == "case", entry.action == "note", entry.new.is_not(None))
        .order_by(entry.case_id, entry.id)
    )


# -- upkeep, inside the unit of work that changed the text ----------------------------------


async def index_call(session: AsyncSession, call_id: int) -> None:
    """Write the call's row from its turns as they are in this transaction."""
    rows = await session.execute(call_lines_query([call_id]))
    await _write(session, CALLS, call_id, document(row.text for row in rows))


async def index_case(session: AsyncSession, case_id: int) -> None:
    """Write the case's row from its summary, detail and notes in this transaction."""
    await session.flush()  # the change being made is part of what is indexed
    lines = (await case_lines(session, [case_id]))[case_id]
    await _write(session, CASES, case_id, document(line for _, line in lines))


async def _write(session: AsyncSession, table: str, key: int, terms: list[str]) -> None:
    dialect = session.get_bind().dialect.name
    delete, insert = _writes(dialect, table)
    if dialect == "sqlite" or not terms:
        await session.execute(delete, {"key": key})
    if terms:
        await session.execute(insert, {"key": key, "terms": _stored(dialect, terms)})


# -- the whole index at once (the migration, a rebuild, the benchmark) ----------------------


def rebuild(connection: Connection) -> None:
    """Empty the index and write it again from every transcript and case (synchronous,
    for Alembic and ``run_sync``); batches keep memory flat on a million calls."""
    postgresql = connection.dialect.name == "postgresql"
    for table in (CALLS, CASES):
        connection.execute(text(f"DELETE FROM {table}"))
        if postgresql:  # one GIN build at the end, not a GIN update per row
            connection.execute(text(f"DROP INDEX IF EXISTS ix_{table}_terms"))
    segment = m.TranscriptSegment
    last = connection.execute(select(func.max(segment.call_id))).scalar() or 0
    for low in range(0, last + 1, _BATCH):  # a range of calls at a time: memory stays flat
        turns = connection.execute(
            select(segment.call_id, segment.text)
            .where(segment.call_id >= low, segment.call_id < low + _BATCH)
            .order_by(segment.call_id, segment.seq)
        ).all()
        _insert_all(connection, CALLS, _grouped(turns))
    cases = connection.execute(
        select(m.Case.id, m.Case.summary, m.Case.detail).order_by(m.Case.id)
    ).all()
    notes: dict[int, list[str]] = {}
    for case_id, note in connection.execute(_notes_query()):
        notes.setdefault(case_id, []).append(note)
    texts = (
        (case_id, [summary, *([detail] if detail else []), *notes.get(case_id, [])])
        for case_id, summary, detail in cases
    )
    _insert_all(connection, CASES, texts)
    if postgresql:
        for table in (CALLS, CASES):
            connection.execute(text(f"CREATE INDEX ix_{table}_terms ON {table} USING gin (terms)"))


def _grouped(rows: Iterable[Any]) -> Iterator[tuple[int, list[str]]]:
    for key, group in itertools.groupby(rows, key=lambda row: row[0]):
        yield key, [row[1] for row in group]


def _insert_all(connection: Connection, table: str, texts: Iterable[tuple[int, list[str]]]) -> None:
    dialect = connection.dialect.name
    _, insert = _writes(dialect, table)
    params = (
        {"key": key, "terms": _stored(dialect, terms)}
        for key, lines in texts
        if (terms := document(lines))
    )
    while batch := list(itertools.islice(params, _BATCH)):
        connection.execute(insert, batch)
