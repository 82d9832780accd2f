"""Search inside transcripts and case text for Chinese words, on SQLite and PostgreSQL.

A query is cut into overlapping character pairs like the text (crm/search_terms.py says
why: neither database finds a two-character word on its own) and asked of the index
(crm/search_index.py) as one phrase. The index has a row per call, so it answers "which
calls"; the turns that matched and where in them are found again in Python for the
calls of the one page asked for, which keeps the index small and the page exact.

Newest first means by call id (case id) descending: ids are given as calls arrive, so
this is the order of ``started_at``, and the index can answer it without sorting every
hit. A date window becomes an id range first (the calls' started_at index gives its
ends), which both indexes intersect cheaply, then the exact times are checked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnClause,
    ColumnElement,
    Integer,
    Select,
    TextClause,
    and_,
    column,
    exists,
    func,
    select,
    table,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.expression import UnaryExpression
from sqlalchemy.sql.operators import custom_op

from crm import models as m
from crm.exceptions import InvalidQuery
from crm.queue_facts import took_call
from crm.repository import DOCUMENTED_FIELDS, Repository, require_aware
from crm.search_index import (
    CALLS,
    CASES,
    call_lines_query,
    case_lines,
    fts_match,
    key_column,
    tsquery,
)
from crm.search_terms import Phrase, marks, phrase
from crm.transcripts import SPEAKER_LABELS
from crm.uncancellable import uncancellable

MAX_QUERY = 100
# Hits counted at most, per kind (calls, cases): more shows as "1 000+" (``total_more``).
COUNTED = 1000

Marks = tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class LineHit:
    """One turn of a call that holds the words searched for."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    speaker: str
    """resident, agent or message."""
    speaker_label: str
    """居民, 坐席 or 留言."""
    start_ms: int
    """Start, ms from the start of the conversation (where a player jumps to)."""
    end_ms: int
    """End, ms from the start of the conversation."""
    text: str
    """The turn's text."""
    marks: Marks
    """Where the words are in text: [start, end) character offsets, in order."""


@dataclass(frozen=True, slots=True)
class CallHit:
    """A call whose transcript holds the words searched for."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    call_id: int
    """The call (GET /api/calls/{id}, its transcript and recordings)."""
    started_at: datetime
    """When the call came in."""
    queue: str | None
    """The queue it was routed to."""
    caller_number: str | None
    """Who called."""
    agent_id: int | None
    """The agent who answered it, if one did."""
    lines: tuple[LineHit, ...]
    """The turns that hold the words, in the order spoken."""


@dataclass(frozen=True, slots=True)
class CaseText:
    """One text of a case that holds the words searched for."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    where: str
    """summary, detail or note."""
    text: str
    """The text."""
    marks: Marks
    """Where the words are in text: [start, end) character offsets, in order."""


@dataclass(frozen=True, slots=True)
class CaseHit:
    """A case whose summary, detail or notes hold the words searched for."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    case_id: int
    """The case (GET /api/cases/{id})."""
    kind: str
    """inquiry, repair, complaint, emergency or message."""
    status: str
    """Where the case is (open, in-progress, …)."""
    opened_at: datetime
    """When it was opened."""
    summary: str
    """Its summary, to show beside the hit."""
    matches: tuple[CaseText, ...]
    """The texts that hold the words: summary, then detail, then notes oldest first."""


@dataclass(frozen=True, slots=True)
class SearchPage:
    """One page of calls (by their transcripts) and cases that hold the words, newest first."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    items: tuple[CallHit, ...]
    """Calls on this page, newest first."""
    total: int
    """Calls that match, in all pages, counted up to 1 000 (see total_more)."""
    total_more: bool
    """True: more calls than total match (counting stops at 1 000: show "1 000+")."""
    cases: tuple[CaseHit, ...]
    """Cases on this page (same limit and offset), newest first."""
    cases_total: int
    """Cases that match, in all pages, counted up to 1 000 (see cases_total_more)."""
    cases_total_more: bool
    """True: more cases than cases_total match (show "1 000+")."""
    limit: int
    """Page size used."""
    offset: int
    """Hits skipped."""


def search_phrase(text: object) -> Phrase:
    """The query as a phrase, or ``InvalidQuery`` naming ``q`` with what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidQuery("q", "is required: the words to look for")
    if len(text.strip()) > MAX_QUERY:
        raise InvalidQuery("q", f"must be at most {MAX_QUERY} characters, got {len(text.strip())}")
    found = phrase(text)
    if not found.terms:
        raise InvalidQuery("q", "has no Chinese characters, letters or digits to look for")
    return found


class CallSearch(Repository):
    @uncancellable
    async def search(
        self,
        text: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        queue: str | None = None,
        only_agent_id: int | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> SearchPage:
        """Calls and cases holding ``text``; ``only_agent_id``: calls that agent took only.

        ``since`` (inclusive) and ``until`` (exclusive) bound the call's started_at and
        the case's opened_at; ``queue`` keeps calls of that queue and cases with a call
        in it. An agent reads every case, so ``only_agent_id`` does not narrow cases.
        """
        wanted = search_phrase(text)
        for name, value in (("since", since), ("until", until)):
            if value is not None:
                require_aware(name, value)
        async with self._transaction("search") as session:
            await _custom_plans(session)
            window = await _id_window(session, since, until)
            calls = _CallQuery(session, wanted, window, since, until, queue, only_agent_id)
            cases = _CaseQuery(session, wanted, since, until, queue)
            call_ids, total, more = await calls.page(limit, offset)
            case_ids, cases_total, cases_more = await cases.page(limit, offset)
            items = await _call_hits(session, wanted, call_ids)
            case_hits = await _case_hits(session, wanted, case_ids)
        return SearchPage(items, total, more, case_hits, cases_total, cases_more, limit, offset)


async def _custom_plans(session: AsyncSession) -> None:
    """On PostgreSQL, plan each search for its own words and dates.

    asyncpg prepares the statements; after five runs PostgreSQL may keep a generic plan
    that cannot see the tsquery, planning a room number as if it were a common word
    (3栋201 in a 30-day window went from 24 to 456 ms at a million calls).
    """
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


async def _id_window(
    session: AsyncSession, since: datetime | None, until: datetime | None
) -> tuple[int, int] | None:
    """The lowest and highest id of the calls started in the window (None: no window).

    Every call of the window has its id between the two, so the index can be narrowed
    to that range before the exact times are checked; an empty window is (1, 0). The
    ``+ 0`` keeps PostgreSQL from reading min and max off the primary key, walking every
    id below the window to find its first (270 ms at a million calls, 19 ms by dates).
    """
    if since is None and until is None:
        return None
    times: list[ColumnElement[bool]] = []
    if since is not None:
        times.append(m.Call.started_at >= since)
    if until is not None:
        times.append(m.Call.started_at < until)
    ends = select(func.min(m.Call.id + 0), func.max(m.Call.id + 0)).where(*times)
    low, high = (await session.execute(ends)).one()
    return (1, 0) if low is None else (low, high)


class _IndexQuery:
    """What the call and case queries share: the index table, its key and the match."""

    def __init__(self, session: AsyncSession, name: str, wanted: Phrase) -> None:
        self.session = session
        dialect = session.get_bind().dialect.name
        self.sqlite = dialect == "sqlite"
        self.key: ColumnClause[int] = column(key_column(dialect, name), Integer)
        self.index = table(name, self.key)
        if dialect == "sqlite":
            self.match: TextClause = text(f"{name} MATCH :match").bindparams(
                match=fts_match(wanted)
            )
            self.walked = self.match
        else:
            self.match = text(f"{name}.terms @@ CAST(:match AS tsquery)").bindparams(
                match=tsquery(wanted)
            )
            # The same test as a function call, which no index serves (see ``page``).
            self.walked = text(f"ts_match_vq({name}.terms, CAST(:match AS tsquery))").bindparams(
                match=tsquery(wanted)
            )

    def unindexed(self, column: Any) -> Any:
        """``column`` as SQLite cannot use its index for (``+column``), elsewhere itself.

        Without statistics SQLite's planner prefers walking the queue's (or the dates')
        index and asking FTS5 about each call it finds: 25 times slower than walking the
        matches (bench/search.py measured it). PostgreSQL plans from its statistics.
        """
        if not self.sqlite:
            return column
        return UnaryExpression(column, operator=custom_op("+"), type_=column.type)

    def conditions(self) -> list[ColumnElement[bool]]:
        raise NotImplementedError

    def joined(self, query: Select[Any]) -> Select[Any]:
        raise NotImplementedError

    async def page(self, limit: int, offset: int) -> tuple[list[int], int, bool]:
        """The page's ids, how many match (at most ``COUNTED``) and whether more do.

        The count stops at ``COUNTED``: an exact count of a common word reads every hit
        (on PostgreSQL 124 615 rows, 730 ms at a million calls), a bounded one a thousand.
        Once a word is that common, PostgreSQL walks the ids newest first testing each
        row (``walked``: no index) and stops at the page, where the GIN index would
        find and sort every hit first; it plans a phrase (a <-> b) as rare, estimating
        its terms as independent, so it cannot tell on its own (533 ms for 下水道堵塞).
        SQLite's FTS5 gives its matches newest first either way.
        """
        conditions = self.conditions()
        source = select(self.key).select_from(self.index)
        if conditions:  # without filters the index alone knows how many
            source = self.joined(source)
        hits = source.where(self.match, *conditions).limit(COUNTED + 1).subquery()
        total = await self.session.scalar(select(func.count()).select_from(hits)) or 0
        more = total > COUNTED
        match = self.walked if more else self.match
        ids = self.joined(select(self.key).select_from(self.index)).where(match, *conditions)
        found = await self.session.scalars(
            ids.order_by(self.key.desc()).limit(limit).offset(offset)
        )
        return list(found), min(total, COUNTED), more


class _CallQuery(_IndexQuery):
    def __init__(
        self,
        session: AsyncSession,
        wanted: Phrase,
        window: tuple[int, int] | None,
        since: datetime | None,
        until: datetime | None,
        queue: str | None,
        only_agent_id: int | None,
    ) -> None:
        super().__init__(session, CALLS, wanted)
        self.window = window
        self.since, self.until, self.queue, self.agent = since, until, queue, only_agent_id

    def joined(self, query: Select[Any]) -> Select[Any]:
        """The call's row joined only when a filter reads it: an agent's search alone
        stays on the index and the agent's queue entries."""
        if self.since is None and self.until is None and self.queue is None:
            return query
        return query.join(m.Call, m.Call.id == self.key)

    def conditions(self) -> list[ColumnElement[bool]]:
        c: list[ColumnElement[bool]] = []
        if self.window is not None:
            c.append(self.key.between(*self.window))
            # The same range on the call's side too: PostgreSQL does not carry a range
            # across the join, and walked the calls' ids from the newest down to the
            # window (212 ms at a million calls; 1 ms with it).
            c.append(self.unindexed(m.Call.id).between(*self.window))
        started_at = self.unindexed(m.Call.started_at)
        if self.since is not None:
            c.append(started_at >= self.since)
        if self.until is not None:
            c.append(started_at < self.until)
        if self.queue is not None:
            c.append(self.unindexed(m.Call.queue) == self.queue)
        if self.agent is not None:
            c.append(self.unindexed(self.key).in_(self.agent_calls(self.agent)))
        return c

    @staticmethod
    def agent_calls(agent_id: int) -> Select[Any]:
        """The calls the agent took, as one set the hits are looked up in.

        Not an EXISTS per hit: a common word has a hundred thousand hits at a million
        calls, each a probe of queue_entry (304 ms p95 on SQLite). The set is read once
        from the agent's queue entries (index ix_queue_entry_agent_id, migration 0008,
        holds the call id too, so the table is not read) and each hit is looked up in it
        in memory; ``+rowid`` on SQLite keeps FTS5 from being asked once per call of the
        set. bench/search.py measured both.
        """
        return select(m.QueueEntry.call_id).where(took_call(agent_id))


class _CaseQuery(_IndexQuery):
    def __init__(
        self,
        session: AsyncSession,
        wanted: Phrase,
        since: datetime | None,
        until: datetime | None,
        queue: str | None,
    ) -> None:
        super().__init__(session, CASES, wanted)
        self.since, self.until, self.queue = since, until, queue

    def joined(self, query: Select[Any]) -> Select[Any]:
        return query.join(m.Case, m.Case.id == self.key)

    def conditions(self) -> list[ColumnElement[bool]]:
        c: list[ColumnElement[bool]] = []
        opened_at = self.unindexed(m.Case.opened_at)
        if self.since is not None:
            c.append(opened_at >= self.since)
        if self.until is not None:
            c.append(opened_at < self.until)
        if self.queue is not None:
            in_queue = and_(
                m.CaseCall.case_id == m.Case.id,
                m.Call.id == m.CaseCall.call_id,
                m.Call.queue == self.queue,
            )
            c.append(exists().where(in_queue))
        return c


async def _call_hits(
    session: AsyncSession, wanted: Phrase, call_ids: Sequence[int]
) -> tuple[CallHit, ...]:
    if not call_ids:
        return ()
    calls = {
        row.id: row
        for row in await session.execute(
            select(m.Call.id, m.Call.started_at, m.Call.queue, m.Call.caller_number).where(
                m.Call.id.in_(call_ids)
            )
        )
    }
    answered = await session.execute(
        select(m.QueueEntry.call_id, m.QueueEntry.agent_id)
        .where(m.QueueEntry.call_id.in_(call_ids), m.QueueEntry.answered_at.is_not(None))
        .order_by(m.QueueEntry.answered_at)
    )
    agents = {
        row[0]: row[1] for row in answered
    }  # the last answer wins: who had the call at the end
    lines: dict[int, list[LineHit]] = {call_id: [] for call_id in call_ids}
    for row in await session.execute(call_lines_query(call_ids)):
        found = marks(row.text, wanted)
        if found:
            label = SPEAKER_LABELS.get(row.speaker, row.speaker)
            lines[row.call_id].append(
                LineHit(row.speaker, label, row.start_ms, row.end_ms, row.text, tuple(found))
            )
    return tuple(
        CallHit(
            call_id,
            calls[call_id].started_at,
            calls[call_id].queue,
            calls[call_id].caller_number,
            agents.get(call_id),
            tuple(lines[call_id]),
        )
        for call_id in call_ids
        if call_id in calls
    )


async def _case_hits(
    session: AsyncSession, wanted: Phrase, case_ids: Sequence[int]
) -> tuple[CaseHit, ...]:
    if not case_ids:
        return ()
    rows = await session.execute(
        select(m.Case.id, m.Case.kind, m.Case.status, m.Case.opened_at, m.Case.summary).where(
            m.Case.id.in_(case_ids)
        )
    )
    cases = {row.id: row for row in rows}
    texts = await case_lines(session, case_ids)
    hits: list[CaseHit] = []
    for case_id in case_ids:
        if case_id not in cases:
            continue
        row = cases[case_id]
        matches = tuple(
            CaseText(where, line, tuple(found))
            for where, line in texts[case_id]
            if (found := marks(line, wanted))
        )
        hits.append(CaseHit(case_id, row.kind, row.status, row.opened_at, row.summary, matches))
    return tuple(hits)
