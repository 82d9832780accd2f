"""Specification of the call log and its database: crm.calls, crm.db, crm.migrations.

Runs on a fresh SQLite file per test, and also on a fresh PostgreSQL database per test
when HOTLINE_TEST_PG_URL names a server (the role needs CREATEDB).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from crm.calls import CallLog, CallRecord
from crm.db import create_engine, make_sessionmaker, migrate
from crm.exceptions import NotFound, StorageError
from crm.models import Base
from crm.search_index import in_models

T0 = datetime(2024, 5, 1, 9, 0, 0, tzinfo=UTC)
BEIJING = timezone(timedelta(hours=8))


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def open_call(log: CallLog, channel: str, started_at: datetime = T0, **kw: str) -> int:
    return await log.open_call(
        channel_id=channel,
        caller_number=kw.get("caller_number", "13800000000"),
        caller_name=kw.get("caller_name", "张三"),
        dialled_number=kw.get("dialled_number", "4008001234"),
        started_at=started_at,
    )


def ids(records: list[CallRecord]) -> list[int]:
    return [record.id for record in records]


# --- database and migrations ---


async def test_migrated_schema_matches_models(db_url: str) -> None:
    """Upgrading to head yields exactly the tables, columns, types and constraints of the models."""
    await migrate(db_url)

    def differences(connection: Connection) -> list[object]:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_name": in_models}
        )
        return list(compare_metadata(context, Base.metadata))

    engine = create_engine(db_url)
    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(differences) == []
    finally:
        await engine.dispose()


async def test_migrate_on_current_schema_keeps_data(db_url: str) -> None:
    """Running migrate again at start-up is harmless: records survive."""
    await migrate(db_url)
    engine = create_engine(db_url)
    try:
        log = CallLog(make_sessionmaker(engine))
        call_id = await open_call(log, "chan-1")
        await migrate(db_url)
        assert (await log.get(call_id)).channel_id == "chan-1"
    finally:
        await engine.dispose()


async def test_sqlite_engine_creates_folder_and_sets_pragmas(tmp_path: Path) -> None:
    """A SQLite file gets its folder created, WAL journaling, foreign keys, and a busy timeout
    of the configured wait (another process's write lock is waited for as long as a
    connection is)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'a' / 'b' / 'hotline.db'}"
    engine = create_engine(url, wait_s=2.5)
    try:
        async with engine.connect() as connection:
            pragmas = {
                name: (await connection.exec_driver_sql(f"PRAGMA {name}")).scalar()
                for name in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")
            }
    finally:
        await engine.dispose()
    assert (tmp_path / "a" / "b" / "hotline.db").exists()
    assert pragmas == {
        "journal_mode": "wal",
        "synchronous": 1,
        "busy_timeout": 2500,
        "foreign_keys": 1,
    }


async def test_unmigrated_database_raises_storage_error(db_url: str) -> None:
    """Database failures reach callers as StorageError, not as SQLAlchemy errors."""
    engine = create_engine(db_url)
    try:
        with pytest.raises(StorageError):
            await CallLog(make_sessionmaker(engine)).get(1)
    finally:
        await engine.dispose()


# --- opening and updating a call ---


async def test_open_call_stores_caller_details(call_log: CallLog) -> None:
    """A new call is stored with its caller id, start time and the initial state."""
    call_id = await open_call(call_log, "chan-1")
    record = await call_log.get(call_id)
    assert (record.channel_id, record.caller_number, record.caller_name) == (
        "chan-1",
        "13800000000",
        "张三",
    )
    assert (record.dialled_number, record.started_at, record.state) == ("4008001234", T0, "ringing")
    assert (record.answered_at, record.ended_at, record.greeting_played) == (None, None, False)


async def test_open_call_is_idempotent_by_channel(call_log: CallLog) -> None:
    """Opening the same channel again returns the first id and leaves the record unchanged."""
    first = await open_call(call_log, "chan-1", caller_number="13800000000")
    again = await open_call(call_log, "chan-1", at(60), caller_number="13900000000")
    other = await open_call(call_log, "chan-2")
    assert again == first
    assert other != first
    record = await call_log.get(first)
    assert (record.caller_number, record.started_at) == ("13800000000", T0)


async def test_empty_caller_id_is_stored_as_none(call_log: CallLog) -> None:
    """Asterisk's empty caller number and name are stored as absent, not as ''."""
    call_id = await open_call(call_log, "chan-1", caller_number="", caller_name="")
    record = await call_log.get(call_id)
    assert (record.caller_number, record.caller_name) == (None, None)


async def test_answer_stores_ring_time(call_log: CallLog) -> None:
    """mark_answered keeps the answer time and ring_ms as given."""
    call_id = await open_call(call_log, "chan-1")
    await call_log.mark_answered(call_id, answered_at=at(2.3), ring_ms=2300)
    record = await call_log.get(call_id)
    assert (record.answered_at, record.ring_ms) == (at(2.3), 2300)


async def test_greeting_and_queue_are_recorded(call_log: CallLog) -> None:
    """mark_greeting_played and set_queue show up on the record."""
    call_id = await open_call(call_log, "chan-1")
    await call_log.mark_greeting_played(call_id)
    await call_log.set_queue(call_id, queue="repair", at=at(20))
    record = await call_log.get(call_id)
    assert (record.greeting_played, record.queue, record.queued_at) == (True, "repair", at(20))


async def test_datetimes_come_back_utc_aware(call_log: CallLog) -> None:
    """A time given in +08:00 comes back as the same instant, timezone-aware, in UTC."""
    started = datetime(2024, 5, 1, 17, 0, 0, 123456, tzinfo=BEIJING)
    call_id = await open_call(call_log, "chan-1", started)
    record = await call_log.get(call_id)
    assert record.started_at == started
    assert record.started_at.tzinfo is UTC
    assert record.started_at.hour == 9
    assert record.to_json()["started_at"] == "2024-05-01T09:00:00.123456+00:00"


async def test_naive_datetime_is_refused(call_log: CallLog) -> None:
    """A naive datetime is rejected instead of being stored with a guessed timezone."""
    with pytest.raises(ValueError, match="started_at"):
        await open_call(call_log, "chan-1", datetime(2024, 5, 1, 9, 0))


async def test_set_state_records_the_latest_state(call_log: CallLog) -> None:
    """set_state replaces the stored state."""
    call_id = await open_call(call_log, "chan-1")
    await call_log.set_state(call_id, "ivr")
    await call_log.set_state(call_id, "queued")
    assert (await call_log.get(call_id)).state == "queued"


async def test_set_state_after_close_is_ignored(call_log: CallLog) -> None:
    """A late state change cannot make a closed call look live again."""
    call_id = await open_call(call_log, "chan-1")
    await call_log.close_call(call_id, ended_at=at(30), reason="caller-hangup")
    await call_log.set_state(call_id, "queued")
    assert (await call_log.get(call_id)).state == "ended"


@pytest.mark.parametrize(
    "update",
    [
        lambda log: log.mark_answered(999, answered_at=T0, ring_ms=0),
        lambda log: log.mark_greeting_played(999),
        lambda log: log.set_queue(999, queue="repair", at=T0),
        lambda log: log.set_state(999, "ivr"),
        lambda log: log.add_ivr_step(999, node="main", input="1", action="reprompt", at=T0),
        lambda log: log.close_call(999, ended_at=T0, reason="caller-hangup"),
        lambda log: log.get(999),
    ],
    ids=["answer", "greeting", "queue", "state", "ivr-step", "close", "get"],
)
async def test_unknown_call_id_raises_not_found(
    call_log: CallLog, update: Callable[[CallLog], Awaitable[object]]
) -> None:
    """Every method given an id that does not exist raises NotFound."""
    with pytest.raises(NotFound):
        await update(call_log)


# --- IVR path ---


async def test_ivr_steps_are_kept_in_order(call_log: CallLog) -> None:
    """Steps come back in the order they were added, numbered from 0, per call."""
    call_id = await open_call(call_log, "chan-1")
    other_id = await open_call(call_log, "chan-2")
    await call_log.add_ivr_step(call_id, node="main", input="timeout", action="reprompt", at=at(5))
    await call_log.add_ivr_step(other_id, node="main", input="0", action="operator", at=at(6))
    await call_log.add_ivr_step(call_id, node="main", input="2", action="submenu:repair", at=at(9))
    await call_log.add_ivr_step(call_id, node="repair", input="1", action="queue:repair", at=at(12))
    path = (await call_log.get(call_id)).ivr_path
    assert [(s.seq, s.node, s.input, s.action, s.at) for s in path] == [
        (0, "main", "timeout", "reprompt", at(5)),
        (1, "main", "2", "submenu:repair", at(9)),
        (2, "repair", "1", "queue:repair", at(12)),
    ]
    assert [s.seq for s in (await call_log.get(other_id)).ivr_path] == [0]


async def test_record_json_has_field_names_and_iso_times(call_log: CallLog) -> None:
    """to_json uses the field names as keys and ISO-8601 times with offset."""
    call_id = await open_call(call_log, "chan-1")
    await call_log.add_ivr_step(call_id, node="main", input="1", action="queue:inquiry", at=at(3))
    data = (await call_log.get(call_id)).to_json()
    assert data["id"] == call_id
    assert data["started_at"] == "2024-05-01T09:00:00+00:00"
    assert data["ended_at"] is None
    assert data["ivr_path"] == [
        {
            "seq": 0,
            "node": "main",
            "input": "1",
            "action": "queue:inquiry",
            "at": "2024-05-01T09:00:03+00:00",
        }
    ]


# --- closing ---


async def test_close_call_records_end_and_cause(call_log: CallLog) -> None:
    """Closing stores the end time, reason, Q.850 cause and the state 'ended'."""
    call_id = await open_call(call_log, "chan-1")
    closed = await call_log.close_call(
        call_id, ended_at=at(40), reason="caller-hangup", cause=16, cause_text="Normal Clearing"
    )
    record = await call_log.get(call_id)
    assert closed is True
    assert (record.ended_at, record.end_reason, record.state) == (at(40), "caller-hangup", "ended")
    assert (record.hangup_cause, record.hangup_cause_text) == (16, "Normal Clearing")


async def test_second_close_loses(call_log: CallLog) -> None:
    """A later close returns False and does not overwrite the first close's details."""
    call_id = await open_call(call_log, "chan-1")
    await call_log.close_call(call_id, ended_at=at(40), reason="caller-hangup", cause=16)
    assert await call_log.close_call(call_id, ended_at=at(50), reason="channel-lost") is False
    record = await call_log.get(call_id)
    assert (record.ended_at, record.end_reason, record.hangup_cause) == (
        at(40),
        "caller-hangup",
        16,
    )


async def test_concurrent_closes_have_exactly_one_winner(call_log: CallLog) -> None:
    """Of two closes racing on one call, exactly one wins and its reason is the one stored."""
    call_id = await open_call(call_log, "chan-1")
    reasons = ["caller-hangup", "holding-timeout"]
    results = await asyncio.gather(
        *(call_log.close_call(call_id, ended_at=at(40), reason=r) for r in reasons)
    )
    assert sorted(results) == [False, True]
    winner = reasons[results.index(True)]
    assert (await call_log.get(call_id)).end_reason == winner


async def test_open_call_lookups_skip_ended_calls(call_log: CallLog) -> None:
    """find_open_by_channel and open_calls only return calls that have not ended."""
    live_1 = await open_call(call_log, "chan-1", at(0))
    ended = await open_call(call_log, "chan-2", at(1))
    live_2 = await open_call(call_log, "chan-3", at(2))
    await call_log.close_call(ended, ended_at=at(30), reason="caller-hangup")

    found = await call_log.find_open_by_channel("chan-1")
    assert found is not None
    assert found.id == live_1
    assert await call_log.find_open_by_channel("chan-2") is None
    assert await call_log.find_open_by_channel("chan-unknown") is None
    assert ids(await call_log.open_calls()) == [live_1, live_2]


# --- listing ---


async def test_list_is_newest_first_with_total(call_log: CallLog) -> None:
    """list orders by start time descending, ties by id descending, and counts all matches."""
    oldest = await open_call(call_log, "chan-1", at(0))
    newest = await open_call(call_log, "chan-2", at(100))
    tie_first = await open_call(call_log, "chan-3", at(50))
    tie_second = await open_call(call_log, "chan-4", at(50))
    records, total = await call_log.list(limit=50, offset=0)
    assert ids(records) == [newest, tie_second, tie_first, oldest]
    assert total == 4


async def test_list_pages_with_limit_and_offset(call_log: CallLog) -> None:
    """Pages slice the newest-first order; total counts every match, not just the page."""
    call_ids = [await open_call(call_log, f"chan-{i}", at(i)) for i in range(5)]
    newest_first = call_ids[::-1]
    page_1, total_1 = await call_log.list(limit=2, offset=0)
    page_3, total_3 = await call_log.list(limit=2, offset=4)
    beyond, total_beyond = await call_log.list(limit=2, offset=10)
    assert (ids(page_1), total_1) == (newest_first[0:2], 5)
    assert (ids(page_3), total_3) == (newest_first[4:5], 5)
    assert (ids(beyond), total_beyond) == ([], 5)


async def test_list_filters_by_exact_caller(call_log: CallLog) -> None:
    """The caller filter matches the whole caller number, not a part of it."""
    mine = await open_call(call_log, "chan-1", at(0), caller_number="13800000000")
    await open_call(call_log, "chan-2", at(1), caller_number="138000000001")
    await open_call(call_log, "chan-3", at(2), caller_number="")
    records, total = await call_log.list(caller="13800000000", limit=50, offset=0)
    assert (ids(records), total) == ([mine], 1)


async def test_list_filters_by_queue(call_log: CallLog) -> None:
    """The queue filter returns only calls sent to that queue."""
    repair = await open_call(call_log, "chan-1", at(0))
    complaint = await open_call(call_log, "chan-2", at(1))
    await open_call(call_log, "chan-3", at(2))
    await call_log.set_queue(repair, queue="repair", at=at(10))
    await call_log.set_queue(complaint, queue="complaint", at=at(11))
    records, total = await call_log.list(queue="repair", limit=50, offset=0)
    assert (ids(records), total) == ([repair], 1)


async def test_list_time_window_includes_since_excludes_until(call_log: CallLog) -> None:
    """since is inclusive and until exclusive, compared as instants whatever the offset."""
    before = await open_call(call_log, "chan-1", at(-1))
    on_since = await open_call(call_log, "chan-2", at(0))
    inside = await open_call(call_log, "chan-3", at(30))
    await open_call(call_log, "chan-4", at(60))
    records, total = await call_log.list(
        since=T0.astimezone(BEIJING), until=at(60), limit=50, offset=0
    )
    assert (ids(records), total) == ([inside, on_since], 2)
    records, _ = await call_log.list(until=at(0), limit=50, offset=0)
    assert ids(records) == [before]


async def test_list_records_include_ivr_path(call_log: CallLog) -> None:
    """Listed records carry their IVR path like records fetched one by one."""
    call_id = await open_call(call_log, "chan-1")
    await call_log.add_ivr_step(call_id, node="main", input="9", action="repeat", at=at(5))
    records, _ = await call_log.list(limit=50, offset=0)
    assert [s.action for s in records[0].ivr_path] == ["repeat"]


async def test_hang_ups_cancelling_writes_midway_leave_the_database_usable(
    call_log: CallLog,
) -> None:
    """Calls cancelled in the middle of their writes (a hang-up) still finish each write,
    and the database keeps accepting writes: no lock is left behind."""

    async def call(i: int) -> None:
        call_id = await call_log.open_call(
            channel_id=f"cancel-{i}",
            caller_number=None,
            caller_name=None,
            dialled_number="400",
            started_at=at(i),
        )
        await call_log.mark_answered(call_id, answered_at=at(i + 1), ring_ms=5)
        await call_log.set_state(call_id, "greeting")

    loop = asyncio.get_running_loop()
    tasks = [asyncio.create_task(call(i)) for i in range(100)]
    moments = random.Random(1)
    for task in tasks[::2]:  # half hang up, at moments spread over the writes
        loop.call_later(moments.uniform(0, 0.8), task.cancel)
    await asyncio.gather(*tasks, return_exceptions=True)

    after = await asyncio.wait_for(
        call_log.open_call(
            channel_id="after",
            caller_number=None,
            caller_name=None,
            dialled_number="400",
            started_at=at(100),
        ),
        timeout=10,
    )
    record = await call_log.get(after)
    assert record.channel_id == "after"
    records, total = await call_log.list(limit=500)
    assert total >= 2
    # every record that was written is whole: opened ones exist even for cancelled calls
    assert all(r.started_at is not None for r in records)
