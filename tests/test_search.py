"""Chinese search over transcripts and case text (crm/search*.py), on SQLite and PostgreSQL.

The terms are checked as a pure function first; then calls are made and transcribed
through the real books (CallLog, QueueFacts, TranscriptBook, CaseBook), so what is
found is what the service's own writes put in the index, in the same transaction.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from alembic import command
from sqlalchemy import insert

from crm import models as m
from crm.calls import CallLog
from crm.cases import CaseBook
from crm.db import alembic_config, create_engine, make_sessionmaker, migrate
from crm.exceptions import InvalidQuery
from crm.queue_facts import QueueFacts
from crm.rules import Kind, ServiceRules
from crm.search import COUNTED, CallSearch, SearchPage
from crm.search_index import rebuild
from crm.search_terms import BOUNDARY, document, marks, phrase, terms
from crm.staff import Role, StaffDirectory
from crm.transcripts import Segment, TranscriptBook
from telephony.config import Config
from tests.clocks import T0, ManualClock
from tests.databases import BACKENDS, PG_URL, one_connection_engine
from tests.staff import cheap_hasher, signed_in_as
from web.appkeys import CLOCK, CONFIG, QUEUE_FACTS, STAFF
from web.auth import Principal
from web.masking import mask_numbers
from web.search import SEARCH, add_search_routes

ROOT = Path(__file__).resolve().parents[1]
AGENT = "agent:7 王敏"


# -- the terms -----------------------------------------------------------------------------


def cut(text: str) -> list[str]:
    return [t.text for t in terms(text)]


def test_han_becomes_overlapping_pairs_and_its_last_character() -> None:
    assert cut("楼上漏水了") == ["楼上", "上漏", "漏水", "水了", "了"]
    assert cut("电梯停电") == ["电梯", "梯停", "停电", "电"]
    assert cut("水") == ["水"]


def test_numbers_and_latin_stay_whole_and_apart_from_han() -> None:
    assert cut("3栋201") == ["3", "栋", "201"]
    assert cut("3 栋 201") == ["3", "栋", "201"]
    assert cut("WiFi坏了, Router OK") == ["wifi", "坏了", "了", "router", "ok"]
    assert cut("B2车位") == ["b", "2", "车位", "位"]  # letters and digits never in one term


def test_full_width_forms_are_normalised_and_keep_their_places() -> None:
    """NFKC: ３栋２０１ is 3栋201, Ａ座 is a座; each term still points at the original."""
    found = terms("在３栋２０１室")
    assert [t.text for t in found] == ["在", "3", "栋", "201", "室"]
    assert [(t.start, t.end) for t in found] == [(0, 1), (1, 2), (2, 3), (3, 6), (6, 7)]
    assert cut("Ａ座①号") == ["a", "座", "1", "号"]


def test_punctuation_breaks_a_run_and_spaces_inside_han_do_not() -> None:
    assert cut("漏水，电梯") == ["漏水", "水", "电梯", "梯"]
    assert cut("漏 水") == ["漏水", "水"]
    assert cut("！？。…") == []


def test_a_document_keeps_lines_apart() -> None:
    """A phrase cannot run from one turn into the next: a boundary no query makes sits
    between them."""
    assert document(["我在3栋", "201室"]) == ["我在", "在", "3", "栋", BOUNDARY, "201", "室"]
    assert BOUNDARY not in phrase(f"我在3栋 {BOUNDARY} 201").terms


def test_a_query_is_a_phrase_with_a_single_character_as_prefix() -> None:
    assert phrase("漏水") == phrase("漏水")
    assert phrase("漏水").terms == ("漏水",)
    assert not phrase("漏水").prefix
    assert phrase("楼上漏水了").terms == ("楼上", "上漏", "漏水", "水了")
    assert phrase("3栋201").terms == ("3", "栋", "201")
    assert (phrase("水").terms, phrase("水").prefix) == (("水",), True)
    assert phrase("漏水，电梯").terms == ("漏水", "水", "电梯")
    assert phrase("，。").terms == ()


def test_marks_point_at_the_characters_found() -> None:
    line = "您好，我家楼上漏水了，3栋201"
    assert marks(line, phrase("漏水")) == [(7, 9)]
    assert line[7:9] == "漏水"
    assert marks(line, phrase("3栋201")) == [(11, 16)]
    assert marks(line, phrase("水")) == [(8, 9)]
    assert marks(line, phrase("水漏")) == []
    assert marks("哈哈哈", phrase("哈哈")) == [(0, 3)]  # overlapping finds merge
    assert marks("３栋２０１", phrase("3栋201")) == [(0, 5)]


# -- calls and cases through the books -------------------------------------------------------


@dataclass
class Books:
    clock: ManualClock
    calls: CallLog
    facts: QueueFacts
    transcripts: TranscriptBook
    cases: CaseBook
    search: CallSearch

    async def call(
        self,
        turns: list[tuple[str, str]],
        *,
        at: datetime = T0,
        queue: str = "repair",
        agent_id: int | None = None,
        transcribe: bool = True,
    ) -> int:
        """A call answered (by ``agent_id`` if given) whose transcript is ``turns``."""
        call_id = await self.calls.open_call(
            channel_id=f"chan-{at.timestamp()}-{id(turns)}",
            caller_number="13800138000",
            caller_name="张三",
            dialled_number="4008001234",
            started_at=at,
        )
        await self.calls.set_queue(call_id, queue=queue, at=at)
        entry = await self.facts.enter(call_id=call_id, queue=queue, tag=None, priority=0, at=at)
        if agent_id is not None:
            await self.facts.answered(entry, agent_id=agent_id, at=at + timedelta(seconds=5))
        if transcribe:
            await self.transcribe(call_id, turns, at=at)
        return call_id

    async def transcribe(self, call_id: int, turns: list[tuple[str, str]], *, at: datetime) -> None:
        await self.transcripts.enqueue(call_id, at=at)
        job = await self.transcripts.claim(now=at + timedelta(minutes=5))
        assert job is not None
        assert job.call_id == call_id
        segments = [
            Segment(speaker, i * 4000, i * 4000 + 3000, text, ())
            for i, (speaker, text) in enumerate(turns)
        ]
        await self.transcripts.done(
            job.id, segments, model="test", audio_s=1.0, decode_s=0.1, at=at
        )

    async def find(self, q: str, **kw: object) -> SearchPage:
        options: dict[str, object] = {
            "since": None,
            "until": None,
            "queue": None,
            "only_agent_id": None,
            "limit": 50,
            "offset": 0,
        }
        options.update(kw)
        return await self.search.search(q, **options)  # type: ignore[arg-type]

    async def found(self, q: str, **kw: object) -> list[int]:
        return [hit.call_id for hit in (await self.find(q, **kw)).items]


async def _agents(sessions: object, *ids: int) -> None:
    async with sessions() as session, session.begin():  # type: ignore[operator]
        await session.execute(
            insert(m.Agent),
            [
                {
                    "id": i,
                    "name": f"坐席{i}",
                    "endpoint": f"PJSIP/10{i:02d}",
                    "state": "logged-out",
                    "state_since": T0,
                    "created_at": T0,
                }
                for i in ids
            ],
        )


@pytest.fixture
async def books(migrated_db_url: str) -> AsyncIterator[Books]:
    engine = one_connection_engine(migrated_db_url)
    sessions = make_sessionmaker(engine)
    await _agents(sessions, 1, 2)
    clock = ManualClock()
    yield Books(
        clock,
        CallLog(sessions),
        QueueFacts(sessions),
        TranscriptBook(sessions),
        CaseBook(sessions, clock, ServiceRules()),
        CallSearch(sessions),
    )
    await engine.dispose()


LEAK = [("agent", "您好，这里是物业服务中心"), ("resident", "楼上漏水了，滴到我家天花板")]


async def test_a_two_character_word_is_found_and_its_reverse_is_not(books: Books) -> None:
    leak = await books.call(LEAK)
    await books.call([("resident", "水漏到哪里了")], at=T0 + timedelta(minutes=1))
    lift = await books.call([("resident", "电梯停了，好像停电了")], at=T0 + timedelta(minutes=2))
    assert await books.found("漏水") == [leak]
    assert await books.found("电梯") == [lift]
    assert await books.found("停电") == [lift]
    assert await books.found("梯电") == []


async def test_a_hit_names_the_call_and_marks_the_words_in_its_turns(books: Books) -> None:
    call_id = await books.call(LEAK, agent_id=1)
    page = await books.find("漏水")
    assert page.total == 1
    [hit] = page.items
    assert (hit.call_id, hit.started_at, hit.queue, hit.caller_number, hit.agent_id) == (
        call_id,
        T0,
        "repair",
        "13800138000",
        1,
    )
    [line] = hit.lines  # only the turn that holds the word
    assert (line.speaker, line.speaker_label, line.start_ms, line.end_ms) == (
        "resident",
        "居民",
        4000,
        7000,
    )
    assert line.marks == ((2, 4),)
    assert line.text[2:4] == "漏水"


async def test_a_room_number_is_found_whole(books: Books) -> None:
    room = await books.call([("resident", "我住3栋201，门禁坏了")])
    await books.call([("resident", "3栋2010也有问题")], at=T0 + timedelta(minutes=1))
    await books.call([("resident", "我在3栋"), ("agent", "201吗")], at=T0 + timedelta(minutes=2))
    assert await books.found("3栋201") == [room]
    assert await books.found("３栋２０１") == [room]
    [line] = (await books.find("3栋201")).items[0].lines
    assert line.text[line.marks[0][0] : line.marks[0][1]] == "3栋201"


async def test_one_character_finds_every_call_saying_it(books: Books) -> None:
    first = await books.call([("resident", "漏水")])
    second = await books.call([("resident", "水费多少")], at=T0 + timedelta(minutes=1))
    await books.call([("resident", "电梯困人")], at=T0 + timedelta(minutes=2))
    assert await books.found("水") == [second, first]  # newest first
    [line] = (await books.find("水")).items[1].lines
    assert line.marks == ((1, 2),)


async def test_the_words_must_come_in_the_order_asked(books: Books) -> None:
    said = await books.call([("resident", "下水道堵塞了，厨房也漏水")])
    assert await books.found("下水道堵塞") == [said]
    assert await books.found("堵塞下水道") == []
    assert await books.found("厨房也漏水") == [said]
    assert await books.found("厨房漏水") == []


async def test_date_and_queue_filters(books: Books) -> None:
    day = timedelta(days=1)
    old = await books.call(LEAK, at=T0)
    mid = await books.call(LEAK, at=T0 + day, queue="complaint")
    new = await books.call(LEAK, at=T0 + 2 * day)
    assert await books.found("漏水") == [new, mid, old]
    assert await books.found("漏水", since=T0 + day) == [new, mid]
    assert await books.found("漏水", until=T0 + day) == [old]
    assert await books.found("漏水", since=T0 + day, until=T0 + 2 * day) == [mid]
    assert await books.found("漏水", since=T0 + 5 * day) == []
    assert await books.found("漏水", queue="repair") == [new, old]
    assert await books.found("漏水", queue="repair", since=T0 + day) == [new]
    page = await books.find("漏水", queue="complaint")
    assert (page.total, [h.call_id for h in page.items]) == (1, [mid])


async def test_paging_counts_every_hit(books: Books) -> None:
    made = [await books.call(LEAK, at=T0 + timedelta(minutes=i)) for i in range(5)]
    page = await books.find("漏水", limit=2, offset=2)
    assert page.total == 5
    assert [h.call_id for h in page.items] == [made[2], made[1]]


async def test_an_agent_finds_only_the_calls_they_took(books: Books) -> None:
    theirs = await books.call(LEAK, agent_id=1)
    await books.call(LEAK, at=T0 + timedelta(minutes=1), agent_id=2)
    await books.call(LEAK, at=T0 + timedelta(minutes=2))  # nobody answered
    page = await books.find("漏水", only_agent_id=1)
    assert ([h.call_id for h in page.items], page.total) == ([theirs], 1)
    assert len(await books.found("漏水")) == 3


async def test_an_agent_who_answered_a_call_twice_finds_it_once(books: Books) -> None:
    """The agent's calls are a set of call ids: two answered entries make one hit."""
    call_id = await books.call(LEAK, agent_id=1)
    again = await books.facts.enter(call_id=call_id, queue="repair", tag=None, priority=0, at=T0)
    await books.facts.answered(again, agent_id=1, at=T0 + timedelta(minutes=1))
    page = await books.find("漏水", only_agent_id=1)
    assert ([h.call_id for h in page.items], page.total) == ([call_id], 1)


async def _many_calls(sessions: Any, n: int, text: str) -> list[int]:
    """``n`` calls saying ``text``, one a minute from T0, indexed as migration 0007 does
    (in bulk: through the books a thousand calls would take most of a minute)."""
    async with sessions() as session, session.begin():
        ids = []
        for i in range(n):
            call = m.Call(
                channel_id=f"many-{i}",
                started_at=T0 + timedelta(minutes=i),
                state="ended",
                queue="repair" if i % 2 else "inquiry",
            )
            session.add(call)
            await session.flush()
            ids.append(call.id)
        await session.execute(
            insert(m.TranscriptSegment),
            [
                {
                    "call_id": c,
                    "seq": 0,
                    "speaker": "resident",
                    "start_ms": 0,
                    "end_ms": 1,
                    "text": text,
                }
                for c in ids
            ],
        )
        connection = await session.connection()
        await connection.run_sync(rebuild)
    return ids


async def test_the_count_stops_at_a_thousand_and_says_more(migrated_db_url: str) -> None:
    """More hits than COUNTED: total is COUNTED and total_more says so ("1 000+"); the
    page is still the newest hits, as it is for the common word walked newest first."""
    engine = one_connection_engine(migrated_db_url)
    try:
        sessions = make_sessionmaker(engine)
        ids = await _many_calls(sessions, COUNTED + 2, "楼上漏水了")
        search = CallSearch(sessions)
        page = await search.search("漏水", limit=5, offset=2)
        assert (page.total, page.total_more) == (COUNTED, True)
        assert [h.call_id for h in page.items] == ids[::-1][2:7]
        assert [len(h.lines) for h in page.items] == [1] * 5
        repair = await search.search("漏水", queue="repair", limit=3)  # COUNTED / 2 + 1
        assert (repair.total, repair.total_more) == (COUNTED // 2 + 1, False)
        assert [h.call_id for h in repair.items] == ids[::-1][:6:2]
        window = await search.search(
            "漏水", since=T0, until=T0 + timedelta(minutes=COUNTED + 1), limit=2
        )
        assert (window.total, window.total_more) == (COUNTED, True)
        assert [h.call_id for h in window.items] == [ids[COUNTED], ids[COUNTED - 1]]
        assert (page.cases_total, page.cases_total_more) == (0, False)
    finally:
        await engine.dispose()


async def test_a_transcript_written_later_is_found_then(books: Books) -> None:
    """A call without its transcript yet is not found; once it is stored it is, and a
    transcript written again replaces what was found."""
    call_id = await books.call(LEAK, transcribe=False)
    assert await books.found("漏水") == []
    await books.transcribe(call_id, LEAK, at=T0)
    assert await books.found("漏水") == [call_id]
    await books.transcripts.requeue(call_id, at=T0 + timedelta(hours=1))
    await books.transcribe(call_id, [("resident", "停车费怎么交")], at=T0 + timedelta(hours=1))
    assert await books.found("漏水") == []
    assert await books.found("停车费") == [call_id]


async def test_cases_are_found_by_summary_detail_and_notes(books: Books) -> None:
    case = await books.cases.open(
        kind=Kind.INQUIRY, channel="phone", summary="咨询物业费", by=AGENT, detail="三月份的账单"
    )
    page = await books.find("物业费")
    assert (page.cases_total, [c.case_id for c in page.cases]) == (1, [case.id])
    [hit] = page.cases
    assert (hit.kind, hit.summary, [(t.where, t.marks) for t in hit.matches]) == (
        "inquiry",
        "咨询物业费",
        [("summary", ((2, 5),))],
    )
    assert (await books.find("门禁")).cases == ()
    noted = await books.cases.note(case.id, version=case.version, by=AGENT, text="门禁卡也要补办")
    [hit] = (await books.find("门禁")).cases
    assert [(t.where, t.text, t.marks) for t in hit.matches] == [
        ("note", "门禁卡也要补办", ((0, 2),))
    ]
    await books.cases.update(
        case.id, version=noted.version, by=AGENT, changes={"detail": "四月份的账单"}
    )
    assert (await books.find("三月")).cases == ()
    assert [c.case_id for c in (await books.find("四月")).cases] == [case.id]


@pytest.mark.parametrize("q", ["", "   ", "，。！", "漏" * 101, None])
async def test_a_query_that_is_empty_or_too_long_is_refused_naming_q(
    books: Books, q: object
) -> None:
    with pytest.raises(InvalidQuery) as refused:
        await books.find(q)  # type: ignore[arg-type]
    assert refused.value.field == "q"


async def test_a_hundred_characters_is_still_a_query(books: Books) -> None:
    assert (await books.find("漏" * 100)).items == ()


# -- the migration -------------------------------------------------------------------------


async def test_the_migration_indexes_what_was_stored_before_it(db_url: str) -> None:
    """Text stored at 0006 is found once 0007 has run; down and up again keeps it."""
    await asyncio.to_thread(command.upgrade, alembic_config(db_url), "0006")
    engine = create_engine(db_url)
    sessions = make_sessionmaker(engine)
    try:
        async with sessions() as session, session.begin():
            call = m.Call(channel_id="c1", started_at=T0, state="ended", queue="repair")
            session.add(call)
            await session.flush()
            for seq, text in enumerate(["您好", "3栋201漏水了"]):
                session.add(
                    m.TranscriptSegment(
                        call_id=call.id,
                        seq=seq,
                        speaker="resident",
                        start_ms=0,
                        end_ms=1,
                        text=text,
                    )
                )
            session.add(
                m.Case(
                    kind="repair",
                    channel="phone",
                    status="open",
                    summary="电梯困人",
                    opened_at=T0,
                    updated_at=T0,
                )
            )
        await migrate(db_url)
        search = CallSearch(sessions)
        for _ in range(2):
            leak = await search.search("3栋201漏水", limit=10)
            assert [h.call_id for h in leak.items] == [call.id]
            stuck = await search.search("困人", limit=10)
            assert [c.summary for c in stuck.cases] == ["电梯困人"]
            await asyncio.to_thread(command.downgrade, alembic_config(db_url), "0006")
            await migrate(db_url)
    finally:
        await engine.dispose()


# -- the HTTP route ------------------------------------------------------------------------

Client = TestClient[web.Request, web.Application]
SUPERVISOR_1 = Principal(name="王主管", role=Role.SUPERVISOR, user_id=None, agent_id=None)
AGENT_1 = Principal(name="李娜", role=Role.AGENT, user_id=None, agent_id=1)


def search_app(books: Books, staff: StaffDirectory, principal: Principal) -> web.Application:
    """The route with the real masking after it; who may call it is test_access.py's."""
    app = web.Application(middlewares=[signed_in_as(principal), mask_numbers])
    app[CONFIG] = Config()
    app[CLOCK] = books.clock
    app[STAFF] = staff
    app[QUEUE_FACTS] = books.facts
    app[SEARCH] = books.search
    add_search_routes(app)
    return app


@pytest.fixture
def staff(books: Books) -> StaffDirectory:
    return StaffDirectory(books.calls._sessions, cheap_hasher())


async def get(client: Client, status: int, **params: str) -> Any:
    async with client.get("/api/search", params=params) as response:
        assert response.status == status, await response.text()
        return await response.json()


async def test_the_route_answers_hits_with_marks_and_audits_the_search(
    books: Books, staff: StaffDirectory, aiohttp_client: Any
) -> None:
    call_id = await books.call(LEAK, agent_id=1)
    client = await aiohttp_client(search_app(books, staff, SUPERVISOR_1))
    page = await get(client, 200, q="漏水", since="2026-11-24T00:00:00+08:00", queue="repair")
    assert (page["total"], page["limit"], page["offset"]) == (1, 50, 0)
    [hit] = page["items"]
    assert (hit["call_id"], hit["caller_number"], hit["agent_id"]) == (call_id, "13800138000", 1)
    assert hit["lines"][0]["marks"] == [[2, 4]]
    assert hit["lines"][0]["speaker_label"] == "居民"
    await get(client, 200, q="13800138000的漏水")
    rows = await staff.audit_log(limit=10, offset=0)
    assert [(r.action, r.granted) for r in rows] == [("search", True), ("search", True)]
    assert "13800138000" not in rows[0].target
    assert "漏水" in rows[0].target
    assert "queue=repair" in rows[1].target


async def test_an_agent_finds_their_own_calls_with_the_number_in_full(
    books: Books, staff: StaffDirectory, aiohttp_client: Any
) -> None:
    theirs = await books.call(LEAK, agent_id=1)
    await books.call(LEAK, at=T0 + timedelta(minutes=1), agent_id=2)
    client = await aiohttp_client(search_app(books, staff, AGENT_1))
    page = await get(client, 200, q="漏水")
    assert [(h["call_id"], h["caller_number"]) for h in page["items"]] == [(theirs, "13800138000")]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "q"),
        ({"q": "  "}, "q"),
        ({"q": "。。"}, "q"),
        ({"q": "漏" * 101}, "q"),
        ({"q": "漏水", "since": "2026-11-25T00:00:00Z", "until": "2026-11-24T00:00:00Z"}, "until"),
        ({"q": "漏水", "limit": "0"}, "limit"),
    ],
)
async def test_a_bad_query_is_400_naming_the_field(
    books: Books,
    staff: StaffDirectory,
    aiohttp_client: Any,
    params: dict[str, str],
    field: str,
) -> None:
    client = await aiohttp_client(search_app(books, staff, SUPERVISOR_1))
    refused = await get(client, 400, **params)
    assert (refused["error_id"], refused["details"]["field"]) == ("invalid-query", field)


# -- the benchmark ---------------------------------------------------------------------------


def test_the_benchmark_runs_in_quick_mode_and_prints_its_figures() -> None:
    """bench/search.py on a thousand calls (about 10 s): it completes and prints, per
    backend, the build, the baseline and every search's percentiles; no time is judged."""
    backends = ",".join(BACKENDS)
    env = {**os.environ, **({"HOTLINE_BENCH_PG_URL": PG_URL} if PG_URL else {})}
    bench = [sys.executable, str(ROOT / "bench" / "search.py"), "--quick", "--calls", "1000"]
    done = subprocess.run(
        [*bench, "--runs", "2", "--backends", backends],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for backend in BACKENDS:
        assert f"{backend}: 1000 calls loaded" in done.stdout
    assert done.stdout.count("baseline: LIKE") == len(BACKENDS)
    assert done.stdout.count("number 3栋201") == len(BACKENDS)
    assert done.stdout.count("worst p95") == len(BACKENDS)
