"""Staff accounts, tokens, sessions and the access audit (crm.staff), on SQLite and
PostgreSQL; and the ``hotline user`` / ``hotline token`` commands, on a SQLite file.

Every assertion reads back what was stored (through the directory or plain SQL) or what
the command printed. Passwords are hashed with real argon2, made cheap for speed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import subprocess
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from argon2 import PasswordHasher
from sqlalchemy import inspect, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from crm.agents import AgentDirectory
from crm.db import alembic_config, create_engine, make_sessionmaker, migrate
from crm.exceptions import Conflict, InvalidInput, InvalidQuery, NotFound
from crm.models import ApiToken, Base, StaffSession, StaffUser
from crm.search_index import in_models
from crm.staff import LoginOutcome, Role, StaffDirectory, TokenRecord, UserRecord
from tests.conftest import ROOT
from tests.databases import one_connection_engine

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"
STAFF_TABLES = {"staff_user", "api_token", "staff_session", "access_audit"}
IDLE = timedelta(minutes=30)
ABSOLUTE = timedelta(hours=12)


def at(**delta: float) -> datetime:
    return T0 + timedelta(**delta)


def cheap_hasher(time_cost: int = 1) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=1024, parallelism=1)


class ObservedHasher(PasswordHasher):
    """Real argon2 that also notes which hashes it verified, and on which thread."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.verified: list[str] = []
        self.threads: set[int] = set()

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        self.threads.add(threading.get_ident())
        return super().hash(password, salt=salt)

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self.verified.append(str(hash))
        self.threads.add(threading.get_ident())
        return super().verify(hash, password)


def secret(n: int = 1) -> str:
    return f"test-secret-{n:02d}-" + "x" * 32


@dataclasses.dataclass
class Staff:
    directory: StaffDirectory
    sessions: async_sessionmaker[AsyncSession]
    engine: AsyncEngine
    agents: AgentDirectory

    async def rows(self, table: str) -> list[dict[str, Any]]:
        async with self.sessions() as session:
            result = await session.execute(text(f"SELECT * FROM {table} ORDER BY id"))
            return [dict(row._mapping) for row in result]

    async def stored_text(self) -> str:
        """Every value of every staff table, as text: what a stolen copy would show."""
        return repr([await self.rows(table) for table in sorted(STAFF_TABLES)])

    async def agent(self, name: str = "李娜", endpoint: str = "PJSIP/1001") -> int:
        return (await self.agents.create(name=name, endpoint=endpoint, skills={}, at=T0)).id


@pytest.fixture
async def staff(migrated_db_url: str) -> AsyncIterator[Staff]:
    engine = one_connection_engine(migrated_db_url)
    sessions = make_sessionmaker(engine)
    yield Staff(
        StaffDirectory(sessions, cheap_hasher()), sessions, engine, AgentDirectory(sessions)
    )
    await engine.dispose()


async def add(
    staff: Staff, name: str = "王主管", role: Role = Role.SUPERVISOR, **kw: Any
) -> UserRecord:
    return await staff.directory.add_user(name, role, kw.pop("password", PASSWORD), at=T0, **kw)


# -- the schema ----------------------------------------------------------------------------


async def test_the_staff_migration_round_trips(db_url: str) -> None:
    """Down to 0005 drops the four staff tables and nothing else of the models (0007's search
    index goes too); up again gives the models' schema exactly."""

    def tables(connection: Connection) -> set[str]:
        return set(inspect(connection).get_table_names())

    def differences(connection: Connection) -> list[object]:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_name": in_models}
        )
        return list(compare_metadata(context, Base.metadata))

    await migrate(db_url)
    engine = create_engine(db_url)
    try:
        async with engine.connect() as connection:
            at_head = await connection.run_sync(tables)
        await asyncio.to_thread(command.downgrade, alembic_config(db_url), "0005")
        async with engine.connect() as connection:
            at_0005 = await connection.run_sync(tables)
        await migrate(db_url)
        async with engine.connect() as connection:
            assert await connection.run_sync(differences) == []
            assert await connection.run_sync(tables) == at_head
    finally:
        await engine.dispose()
    assert {t for t in at_head - at_0005 if in_models(t, "table", ())} == STAFF_TABLES


# -- users ---------------------------------------------------------------------------------


async def test_a_password_is_stored_only_as_an_argon2_hash(staff: Staff) -> None:
    user = await add(staff)
    assert (user.name, user.role, user.agent_id, user.disabled) == (
        "王主管",
        "supervisor",
        None,
        False,
    )
    assert (user.created_at, user.password_changed_at, user.failed_logins) == (T0, T0, 0)
    [row] = await staff.rows("staff_user")
    assert row["password_hash"].startswith("$argon2id$")
    assert PASSWORD not in await staff.stored_text()
    assert await staff.directory.user("王主管") == user
    assert await staff.directory.user_by_id(user.id) == user
    assert await staff.directory.users() == [user]


async def test_hashing_runs_off_the_event_loop(migrated_db_url: str) -> None:
    engine = one_connection_engine(migrated_db_url)
    hasher = ObservedHasher()
    try:
        directory = StaffDirectory(make_sessionmaker(engine), hasher)
        await directory.add_user("王主管", Role.ADMIN, PASSWORD, at=T0)
        await directory.check_login("王主管", PASSWORD, at=T0)
        await directory.check_login("nobody", PASSWORD, at=T0)
    finally:
        await engine.dispose()
    assert hasher.threads
    assert threading.get_ident() not in hasher.threads


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("王\u202e主管", "must not contain control characters (U+202E)"),
        ("王\u200b主管", "must not contain control or invisible characters (U+200B)"),
        ("a\tb", "must be on one line (no line breaks or tabs)"),
        ("=cmd", "must not start with ="),
        ("", "is required"),
        ("x" * 41, "must be at most 40 characters, got 41"),
    ],
)
async def test_a_user_name_is_one_plain_line(staff: Staff, name: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        await add(staff, name)
    assert refused.value.field == "name"
    assert refused.value.reason.startswith(reason)
    assert await staff.rows("staff_user") == []


async def test_a_user_name_is_taken_once(staff: Staff) -> None:
    await add(staff, "王主管")
    with pytest.raises(Conflict, match="already named 王主管"):
        await add(staff, " 王主管 ", Role.ADMIN)
    assert len(await staff.rows("staff_user")) == 1


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short", "must be at least 10 characters, got 5"),
        ("123456789", "must be at least 10 characters, got 9"),
        ("Zhang.Wei.01", "must not be the user's name"),
        ("x" * 1025, "must be at most 1024 characters"),
    ],
)
async def test_the_password_policy(staff: Staff, password: str, reason: str) -> None:
    """At least 10 characters, not the name (in any case), and not absurdly long."""
    with pytest.raises(InvalidInput) as refused:
        await add(staff, "zhang.wei.01", password=password)
    assert (refused.value.field, refused.value.reason) == ("password", reason)
    assert (await add(staff, "zhang.wei.01", password="1234567890")).name == "zhang.wei.01"


async def test_a_role_is_agent_supervisor_or_admin(staff: Staff) -> None:
    with pytest.raises(InvalidInput) as refused:
        await add(staff, role="root")  # type: ignore[arg-type]
    assert refused.value.field == "role"
    assert "agent, supervisor, admin" in refused.value.reason
    assert (await add(staff, role="admin")).role is Role.ADMIN  # type: ignore[arg-type]


async def test_an_agent_user_is_linked_to_one_active_agent(staff: Staff) -> None:
    agent_id = await staff.agent()
    user = await add(staff, "李娜", Role.AGENT, agent_id=agent_id)
    assert user.agent_id == agent_id
    [row] = await staff.rows("staff_user")
    assert row["agent_id"] == agent_id

    refusals: list[tuple[str, Role, int | None, str]] = [
        ("张伟", Role.AGENT, None, "an agent user needs the id of their agent record"),
        ("张伟", Role.AGENT, 999, "no agent #999"),
        ("张伟", Role.SUPERVISOR, agent_id, "only an agent user is linked to an agent"),
        ("张伟", Role.ADMIN, agent_id, "only an agent user is linked to an agent"),
    ]
    for name, role, agent, reason in refusals:
        with pytest.raises(InvalidInput) as refused:
            await add(staff, name, role, agent_id=agent)
        assert refused.value.field == "agent_id"
        assert refused.value.reason.startswith(reason), (role, agent)
    with pytest.raises(Conflict, match=f"agent #{agent_id} is already linked"):
        await add(staff, "张伟", Role.AGENT, agent_id=agent_id)

    gone = await staff.agent("王芳", "PJSIP/1002")
    await staff.agents.set_active(gone, False)
    with pytest.raises(InvalidInput) as inactive:
        await add(staff, "王芳", Role.AGENT, agent_id=gone)
    assert (inactive.value.field, inactive.value.reason) == (
        "agent_id",
        f"agent #{gone} is not active",
    )
    assert [u.name for u in await staff.directory.users()] == ["李娜"]


async def test_unknown_users_are_not_found(staff: Staff) -> None:
    for lookup in (
        staff.directory.user("nobody"),
        staff.directory.user_by_id(42),
        staff.directory.set_password("nobody", PASSWORD, at=T0),
        staff.directory.set_disabled("nobody", True, at=T0),
    ):
        with pytest.raises(NotFound):
            await lookup


async def test_a_name_nobody_could_have_is_nobodys(staff: Staff) -> None:
    """Not a database error (PostgreSQL cannot bind NUL): unknown, or a wrong sign-in."""
    await add(staff)
    for name in ("王主管\x00", "\u202e", ""):
        with pytest.raises(NotFound):
            await staff.directory.user(name)
        with pytest.raises(NotFound):
            await staff.directory.revoke_token(name, at=T0)
        with pytest.raises(NotFound):
            await staff.directory.set_disabled(name, True, at=T0)
        assert (await staff.directory.check_login(name, PASSWORD, at=T0)).outcome == "wrong"
    assert (await staff.directory.check_login(" 王主管 ", PASSWORD, at=T0)).ok


# -- signing in ----------------------------------------------------------------------------


async def test_the_right_password_signs_in_and_a_wrong_one_does_not(staff: Staff) -> None:
    user = await add(staff)
    ok = await staff.directory.check_login("王主管", PASSWORD, at=at(minutes=1))
    assert (ok.outcome, ok.ok, ok.user, ok.locked_until) == (LoginOutcome.OK, True, user, None)
    wrong = await staff.directory.check_login("王主管", "not the password", at=at(minutes=2))
    assert (wrong.outcome, wrong.ok) == (LoginOutcome.WRONG, False)
    assert wrong.user is not None
    assert wrong.user.failed_logins == 1
    assert (await staff.directory.user("王主管")).failed_logins == 1


async def test_an_unknown_name_costs_one_verification_against_a_dummy_hash(
    migrated_db_url: str,
) -> None:
    """The same work as a known name, so the time taken does not tell which names exist."""
    engine = one_connection_engine(migrated_db_url)
    hasher = ObservedHasher()
    try:
        directory = StaffDirectory(make_sessionmaker(engine), hasher)
        await directory.add_user("王主管", Role.ADMIN, PASSWORD, at=T0)
        hasher.verified.clear()
        unknown = await directory.check_login("王主管x", PASSWORD, at=T0)
        known = await directory.check_login("王主管", "not the password", at=T0)
    finally:
        await engine.dispose()
    assert (unknown.outcome, unknown.user) == (LoginOutcome.WRONG, None)
    assert known.outcome is LoginOutcome.WRONG
    dummy, real = hasher.verified
    assert dummy != real
    assert dummy.split("$")[:4] == real.split("$")[:4]  # argon2id, version, the same costs


async def test_five_wrong_passwords_lock_the_account_for_fifteen_minutes(staff: Staff) -> None:
    await add(staff)
    check = staff.directory.check_login
    for n in range(4):
        assert (await check("王主管", f"wrong guess {n}", at=at(seconds=n))).outcome == "wrong"
    fifth = await check("王主管", "wrong guess 4", at=at(seconds=4))
    until = at(seconds=4, minutes=15)
    assert (fifth.outcome, fifth.locked_until) == (LoginOutcome.LOCKED, until)
    stored = await staff.directory.user("王主管")
    assert (stored.failed_logins, stored.locked_until, stored.locked(at(seconds=5))) == (
        5,
        until,
        True,
    )

    # While locked, the right password is refused too, and more guesses do not extend it.
    right = await check("王主管", PASSWORD, at=until - timedelta(microseconds=1))
    assert (right.outcome, right.locked_until) == (LoginOutcome.LOCKED, until)
    again = await check("王主管", "wrong guess 5", at=at(minutes=10))
    assert (again.outcome, again.locked_until) == (LoginOutcome.LOCKED, until)
    assert (await staff.directory.user("王主管")).locked_until == until

    # At its end the right password signs in and clears the count.
    assert (await check("王主管", PASSWORD, at=until)).outcome is LoginOutcome.OK
    cleared = await staff.directory.user("王主管")
    assert (cleared.failed_logins, cleared.locked_until) == (0, None)


async def test_after_a_lock_runs_out_the_count_starts_again(staff: Staff) -> None:
    """One slip after the lock ended is one failure, not a new lock."""
    directory = StaffDirectory(
        staff.sessions, cheap_hasher(), max_failures=2, lockout=timedelta(minutes=1)
    )
    await add(staff)
    for n in range(2):
        await directory.check_login("王主管", "wrong guess", at=at(seconds=n))
    assert (await directory.user("王主管")).locked_until == at(seconds=61)
    slip = await directory.check_login("王主管", "wrong guess", at=at(seconds=61))
    assert slip.outcome is LoginOutcome.WRONG
    stored = await directory.user("王主管")
    assert (stored.failed_logins, stored.locked_until) == (1, None)
    locked = await directory.check_login("王主管", "wrong guess", at=at(seconds=62))
    assert (locked.outcome, locked.locked_until) == (LoginOutcome.LOCKED, at(seconds=122))


async def test_a_success_resets_the_count_of_failures(staff: Staff) -> None:
    await add(staff)
    check = staff.directory.check_login
    for round_ in range(2):
        for n in range(4):
            await check("王主管", "wrong guess", at=at(minutes=round_, seconds=n))
        assert (await check("王主管", PASSWORD, at=at(minutes=round_, seconds=5))).ok
    assert (await staff.directory.user("王主管")).failed_logins == 0


async def test_concurrent_wrong_passwords_are_all_counted(staff: Staff) -> None:
    await add(staff)
    results = await asyncio.gather(
        *(staff.directory.check_login("王主管", f"guess {n}", at=T0) for n in range(7))
    )
    assert sorted(r.outcome for r in results) == ["locked"] * 3 + ["wrong"] * 4
    assert (await staff.directory.user("王主管")).failed_logins == 5


async def test_a_disabled_user_cannot_sign_in_until_enabled(staff: Staff) -> None:
    await add(staff)
    disabled = await staff.directory.set_disabled("王主管", True, at=at(minutes=1))
    assert (disabled.disabled, disabled.disabled_at) == (True, at(minutes=1))
    refused = await staff.directory.check_login("王主管", PASSWORD, at=at(minutes=2))
    assert refused.outcome is LoginOutcome.DISABLED
    # A wrong password says only that it is wrong.
    wrong = await staff.directory.check_login("王主管", "not the password", at=at(minutes=3))
    assert wrong.outcome is LoginOutcome.WRONG
    enabled = await staff.directory.set_disabled("王主管", False, at=at(minutes=4))
    assert (enabled.disabled, enabled.disabled_at) == (False, None)
    assert (await staff.directory.check_login("王主管", PASSWORD, at=at(minutes=5))).ok


async def test_a_hash_with_old_parameters_is_redone_at_sign_in(staff: Staff) -> None:
    await add(staff)
    [before] = await staff.rows("staff_user")
    stronger = StaffDirectory(staff.sessions, cheap_hasher(time_cost=2))
    assert (await stronger.check_login("王主管", PASSWORD, at=T0)).ok
    [after] = await staff.rows("staff_user")
    assert ",t=1," in before["password_hash"]
    assert ",t=2," in after["password_hash"]
    assert after["password_changed_at"] == before["password_changed_at"]
    assert (await stronger.check_login("王主管", PASSWORD, at=T0)).ok
    assert not (await stronger.check_login("王主管", "not the password", at=T0)).ok


async def test_a_new_password_replaces_the_old_ends_sessions_and_lifts_a_lock(staff: Staff) -> None:
    user = await add(staff)
    await staff.directory.open_session(
        user.id, secret(1), "csrf-value-0123456", at=T0, absolute=ABSOLUTE
    )
    for n in range(5):
        await staff.directory.check_login("王主管", "wrong guess", at=at(seconds=n))
    changed = await staff.directory.set_password("王主管", "a new long password", at=at(minutes=1))
    assert (changed.password_changed_at, changed.failed_logins, changed.locked_until) == (
        at(minutes=1),
        0,
        None,
    )
    assert await staff.rows("staff_session") == []
    check = staff.directory.check_login
    assert (await check("王主管", PASSWORD, at=at(minutes=2))).outcome is LoginOutcome.WRONG
    assert (await check("王主管", "a new long password", at=at(minutes=3))).ok
    with pytest.raises(InvalidInput) as refused:
        await staff.directory.set_password("王主管", "王主管", at=T0)
    assert refused.value.field == "password"


# -- API tokens ----------------------------------------------------------------------------


async def test_a_token_keeps_only_the_sha256_of_its_secret(staff: Staff) -> None:
    token = await staff.directory.issue_token(
        "crm-sync", Role.SUPERVISOR, secret(1), expires_at=at(days=90), at=T0
    )
    assert (token.name, token.role, token.created_at, token.expires_at) == (
        "crm-sync",
        Role.SUPERVISOR,
        T0,
        at(days=90),
    )
    assert (token.revoked_at, token.last_used_at) == (None, None)
    [row] = await staff.rows("api_token")
    assert row["secret_hash"] == hashlib.sha256(secret(1).encode()).hexdigest()
    assert secret(1) not in await staff.stored_text()
    assert await staff.directory.token_for(secret(1), at=T0) == dataclasses.replace(
        token, last_used_at=T0
    )
    assert await staff.directory.token_for(secret(2), at=T0) is None
    assert await staff.directory.token_for("", at=T0) is None


async def test_a_token_works_until_it_expires(staff: Staff) -> None:
    await staff.directory.issue_token(
        "crm-sync", Role.AGENT, secret(1), expires_at=at(days=1), at=T0
    )
    await staff.directory.issue_token("forever", Role.ADMIN, secret(2), expires_at=None, at=T0)
    token_for = staff.directory.token_for
    assert await token_for(secret(1), at=at(days=1) - timedelta(microseconds=1)) is not None
    assert await token_for(secret(1), at=at(days=1)) is None
    assert await token_for(secret(2), at=at(days=3650)) is not None
    states = {t.name: t.state(at(days=2)) for t in await staff.directory.tokens()}
    assert states == {"crm-sync": "expired", "forever": "active"}


async def test_a_revoked_token_stops_at_once_and_frees_its_name(staff: Staff) -> None:
    first = await staff.directory.issue_token(
        "crm-sync", Role.AGENT, secret(1), expires_at=None, at=T0
    )
    with pytest.raises(Conflict, match="crm-sync is in use"):
        await staff.directory.issue_token("crm-sync", Role.AGENT, secret(2), expires_at=None, at=T0)
    revoked = await staff.directory.revoke_token("crm-sync", at=at(hours=1))
    assert (revoked.id, revoked.revoked_at) == (first.id, at(hours=1))
    assert await staff.directory.token_for(secret(1), at=at(hours=1)) is None
    with pytest.raises(NotFound):
        await staff.directory.revoke_token("crm-sync", at=at(hours=2))
    second = await staff.directory.issue_token(
        "crm-sync", Role.AGENT, secret(2), expires_at=None, at=at(hours=2)
    )
    assert await staff.directory.token_for(secret(2), at=at(hours=2)) is not None
    listed = await staff.directory.tokens()
    assert [(t.id, t.state(at(hours=3))) for t in listed] == [
        (first.id, "revoked"),
        (second.id, "active"),
    ]


async def test_a_tokens_use_is_written_at_most_once_a_minute(staff: Staff) -> None:
    await staff.directory.issue_token("crm-sync", Role.AGENT, secret(1), expires_at=None, at=T0)

    async def last_used(seen_at: datetime) -> datetime | None:
        token = await staff.directory.token_for(secret(1), at=seen_at)
        assert token is not None
        async with staff.sessions() as session:
            stored = await session.scalar(select(ApiToken.last_used_at))
        assert token.last_used_at == stored
        return stored

    assert await last_used(at(seconds=10)) == at(seconds=10)
    assert await last_used(at(seconds=69)) == at(seconds=10)
    assert await last_used(at(seconds=70)) == at(seconds=70)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"secret": "too-short"}, "secret"),
        ({"expires_at": T0}, "expires_at"),
        ({"expires_at": at(days=-1)}, "expires_at"),
        ({"role": "root"}, "role"),
        ({"name": "a\u2066b"}, "name"),
    ],
)
async def test_a_token_is_refused_with_the_field_named(
    staff: Staff, change: dict[str, Any], field: str
) -> None:
    values: dict[str, Any] = {
        "name": "crm-sync",
        "role": Role.AGENT,
        "secret": secret(1),
        "expires_at": None,
    }
    values.update(change)
    with pytest.raises(InvalidInput) as refused:
        await staff.directory.issue_token(
            values["name"], values["role"], values["secret"], expires_at=values["expires_at"], at=T0
        )
    assert refused.value.field == field
    assert await staff.rows("api_token") == []


# -- browser sessions ----------------------------------------------------------------------


async def open_session(staff: Staff, user: UserRecord, n: int = 1, when: datetime = T0) -> int:
    opened = await staff.directory.open_session(
        user.id, secret(n), f"csrf-{n:02d}-0123456789", at=when, absolute=ABSOLUTE
    )
    return opened.id


async def test_a_session_keeps_only_the_sha256_of_its_secret(staff: Staff) -> None:
    user = await add(staff)
    opened = await staff.directory.open_session(
        user.id, secret(1), "csrf-01-0123456789", at=T0, absolute=ABSOLUTE
    )
    assert (
        opened.user,
        opened.csrf,
        opened.created_at,
        opened.last_seen_at,
        opened.expires_at,
    ) == (
        user,
        "csrf-01-0123456789",
        T0,
        T0,
        T0 + ABSOLUTE,
    )
    [row] = await staff.rows("staff_session")
    assert row["secret_hash"] == hashlib.sha256(secret(1).encode()).hexdigest()
    assert secret(1) not in await staff.stored_text()
    assert await staff.directory.session_for(secret(1), at=T0, idle=IDLE) == opened
    assert await staff.directory.session_for(secret(2), at=T0, idle=IDLE) is None


async def test_a_session_idle_for_longer_than_allowed_ends(staff: Staff) -> None:
    user = await add(staff)
    await open_session(staff, user, 1)
    await open_session(staff, user, 2)
    session_for = staff.directory.session_for
    assert await session_for(secret(1), at=T0 + IDLE, idle=IDLE) is not None
    assert await session_for(secret(2), at=T0 + IDLE + timedelta(microseconds=1), idle=IDLE) is None
    assert [r["secret_hash"] for r in await staff.rows("staff_session")] == [
        hashlib.sha256(secret(1).encode()).hexdigest()
    ]


async def test_a_session_ends_at_its_absolute_expiry_however_active(staff: Staff) -> None:
    user = await add(staff)
    await open_session(staff, user)
    moment = T0
    while moment < T0 + ABSOLUTE:
        assert await staff.directory.session_for(secret(1), at=moment, idle=IDLE) is not None
        moment += timedelta(minutes=20)
    assert await staff.directory.session_for(secret(1), at=T0 + ABSOLUTE, idle=IDLE) is None
    assert await staff.rows("staff_session") == []


async def test_a_sessions_last_seen_is_written_at_most_every_30_seconds(staff: Staff) -> None:
    user = await add(staff)
    await open_session(staff, user)

    async def seen(moment: datetime) -> datetime:
        found = await staff.directory.session_for(secret(1), at=moment, idle=IDLE)
        assert found is not None
        async with staff.sessions() as session:
            stored = await session.scalar(select(StaffSession.last_seen_at))
        assert found.last_seen_at == stored
        return found.last_seen_at

    assert await seen(at(seconds=29)) == T0
    assert await seen(at(seconds=30)) == at(seconds=30)
    assert await seen(at(seconds=59)) == at(seconds=30)
    assert await seen(at(seconds=61)) == at(seconds=61)


async def test_disabling_a_user_ends_their_sessions(staff: Staff) -> None:
    user = await add(staff)
    other = await add(staff, "张伟", Role.ADMIN)
    await open_session(staff, user, 1)
    await open_session(staff, other, 2)
    await staff.directory.set_disabled("王主管", True, at=at(minutes=1))
    async with staff.sessions() as session:
        assert (await session.scalars(select(StaffSession.user_id))).all() == [other.id]
    assert await staff.directory.session_for(secret(1), at=at(minutes=1), idle=IDLE) is None
    assert await staff.directory.session_for(secret(2), at=at(minutes=1), idle=IDLE) is not None
    with pytest.raises(Conflict, match="disabled"):
        await open_session(staff, user, 3)
    with pytest.raises(NotFound):
        await staff.directory.open_session(
            999, secret(4), "csrf-04-0123456789", at=T0, absolute=ABSOLUTE
        )
    assert len(await staff.rows("staff_session")) == 1


async def test_a_disabled_users_session_found_later_is_deleted(staff: Staff) -> None:
    """Even one written before the user was disabled (by another process, say)."""
    user = await add(staff)
    await open_session(staff, user)
    async with staff.sessions() as session, session.begin():
        row = await session.get(StaffUser, user.id)
        assert row is not None
        row.disabled = True
    assert await staff.directory.session_for(secret(1), at=T0, idle=IDLE) is None
    assert await staff.rows("staff_session") == []


async def test_signing_out_closes_one_session_or_all_of_a_users(staff: Staff) -> None:
    user = await add(staff)
    for n in (1, 2, 3):
        await open_session(staff, user, n)
    assert await staff.directory.close_session(secret(1)) is True
    assert await staff.directory.close_session(secret(1)) is False
    assert await staff.directory.session_for(secret(1), at=T0, idle=IDLE) is None
    assert await staff.directory.close_sessions_of(user.id) == 2
    assert await staff.rows("staff_session") == []


async def test_sessions_that_ended_unseen_are_purged(staff: Staff) -> None:
    user = await add(staff)
    await open_session(staff, user, 1, when=T0)
    await open_session(staff, user, 2, when=T0 + IDLE)
    assert await staff.directory.purge_sessions(at=T0 + IDLE + timedelta(seconds=1), idle=IDLE) == 1
    async with staff.sessions() as session:
        left = (await session.scalars(select(StaffSession.secret_hash))).all()
    assert left == [hashlib.sha256(secret(2).encode()).hexdigest()]


async def test_a_session_secret_and_csrf_must_be_long_random_strings(staff: Staff) -> None:
    user = await add(staff)
    for values, field in (
        ((secret(1), "short"), "csrf"),
        (("short", "csrf-0123456789abcdef"), "secret"),
    ):
        with pytest.raises(InvalidInput) as refused:
            await staff.directory.open_session(user.id, *values, at=T0, absolute=ABSOLUTE)
        assert refused.value.field == field
    assert await staff.rows("staff_session") == []


# -- the access audit ----------------------------------------------------------------------


async def test_the_access_audit_lists_newest_first_with_filters(staff: Staff) -> None:
    user = await add(staff)
    entries = [
        (at(minutes=1), user.id, True, "view-case", "case:1"),
        (at(minutes=2), user.id, False, "export-calls", "calls"),
        (at(minutes=3), None, False, "sign-in", "王主管"),
        (at(minutes=4), user.id, True, "view-recording", "recording:7"),
    ]
    for when, user_id, granted, action, target in entries:
        await staff.directory.audit(
            at=when,
            user_id=user_id,
            actor=f"user:{user_id}" if user_id else "anonymous",
            address="203.0.113.*",
            action=action,
            target=target,
            granted=granted,
            reason="" if granted else "role",
        )
    log = staff.directory.audit_log

    async def actions(**filters: Any) -> list[str]:
        return [
            r.action
            for r in await log(
                limit=filters.pop("limit", 50), offset=filters.pop("offset", 0), **filters
            )
        ]

    assert await actions() == ["view-recording", "sign-in", "export-calls", "view-case"]
    assert await actions(user_id=user.id) == ["view-recording", "export-calls", "view-case"]
    assert await actions(granted=False) == ["sign-in", "export-calls"]
    assert await actions(user_id=user.id, granted=False) == ["export-calls"]
    assert await actions(since=at(minutes=2), until=at(minutes=4)) == ["sign-in", "export-calls"]
    assert await actions(limit=2, offset=1) == ["sign-in", "export-calls"]
    newest = (await log(limit=1, offset=0))[0]
    assert (
        newest.at,
        newest.user_id,
        newest.actor,
        newest.address,
        newest.target,
        newest.granted,
        newest.reason,
    ) == (
        at(minutes=4),
        user.id,
        f"user:{user.id}",
        "203.0.113.*",
        "recording:7",
        True,
        "",
    )
    refused = (await log(limit=1, offset=0, granted=False))[0]
    assert (refused.user_id, refused.actor, refused.reason) == (None, "anonymous", "role")


async def test_the_access_audit_keeps_a_target_with_nul_in_it(staff: Staff) -> None:
    await staff.directory.audit(
        at=T0,
        user_id=None,
        actor="anonymous",
        address="198.51.100.*",
        action="view-case",
        target="/api/cases/1\x00.json",
        granted=False,
        reason="signed-out",
    )
    [entry] = await staff.directory.audit_log(limit=10, offset=0)
    assert entry.target == "/api/cases/1\ufffd.json"


@pytest.mark.parametrize(
    ("limit", "offset", "field"), [(0, 0, "limit"), (501, 0, "limit"), (10, -1, "offset")]
)
async def test_the_access_audit_pages_are_bounded(
    staff: Staff, limit: int, offset: int, field: str
) -> None:
    with pytest.raises(InvalidQuery) as refused:
        await staff.directory.audit_log(limit=limit, offset=offset)
    assert refused.value.field == field


# -- the commands --------------------------------------------------------------------------


def hotline(url: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOTLINE_DB_URL": url}
    return subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "hotline"),
            "--config",
            str(ROOT / "config" / "hotline.toml"),
            *args,
        ],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def output(result: subprocess.CompletedProcess[str]) -> tuple[int, str, str]:
    """Status, stdout, and stderr without the migration's log lines."""
    errors = [line for line in result.stderr.splitlines() if " INFO alembic" not in line]
    return result.returncode, result.stdout, "\n".join(errors)


async def test_the_user_command_adds_lists_and_changes_users(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    await migrate(url)
    engine = one_connection_engine(url)
    try:
        agent_id = (
            await AgentDirectory(make_sessionmaker(engine)).create(
                name="李娜", endpoint="PJSIP/1001", skills={}, at=T0
            )
        ).id
    finally:
        await engine.dispose()

    def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
        return output(hotline(url, "user", *args, stdin=stdin))

    assert run("add", "王主管", "--role", "supervisor", "--password-stdin", stdin=PASSWORD + "\n")[
        :2
    ] == (
        0,
        "added supervisor 王主管\n",
    )
    assert run(
        "add",
        "李娜",
        "--role",
        "agent",
        "--agent",
        str(agent_id),
        "--password-stdin",
        stdin=PASSWORD,
    )[:2] == (
        0,
        f"added agent 李娜 (agent #{agent_id})\n",
    )
    status, out, err = run("add", "张伟", "--role", "admin", "--password-stdin", stdin="short\n")
    assert (status, out) == (1, "")
    assert "password: must be at least 10 characters" in err
    status, _, err = run("add", "张伟", "--role", "admin")  # no terminal to ask on
    assert status == 1
    assert "--password-stdin" in err
    status, _, err = run("add", "王主管", "--role", "admin", "--password-stdin", stdin=PASSWORD)
    assert status == 1
    assert "already named 王主管" in err
    status, _, err = run("add", "张伟", "--role", "agent", "--password-stdin", stdin=PASSWORD)
    assert status == 1
    assert "agent_id" in err

    assert run("disable", "王主管")[:2] == (0, "王主管 disabled (sessions ended)\n")
    assert run("passwd", "李娜", "--password-stdin", stdin="another long one\n")[0] == 0
    assert run("passwd", "nobody", "--password-stdin", stdin="another long one\n")[0] == 1
    status, out, _ = run("list")
    assert status == 0
    assert [line.split() for line in out.splitlines()] == [
        ["name", "role", "agent", "disabled", "locked"],
        ["李娜", "agent", f"#{agent_id}", "no", "no"],
        ["王主管", "supervisor", "-", "yes", "no"],
    ]
    assert run("enable", "王主管")[:2] == (0, "王主管 enabled\n")

    # What the command wrote signs in through the directory the service uses.
    engine = one_connection_engine(url)
    try:
        directory = StaffDirectory(make_sessionmaker(engine), PasswordHasher())
        assert (await directory.check_login("王主管", PASSWORD, at=T0)).ok
        assert (await directory.check_login("李娜", "another long one", at=T0)).ok
        assert not (await directory.check_login("李娜", PASSWORD, at=T0)).ok
        async with make_sessionmaker(engine)() as session:
            hashes = (await session.scalars(select(StaffUser.password_hash))).all()
        assert all(h.startswith("$argon2id$") for h in hashes)
    finally:
        await engine.dispose()


async def test_the_token_command_shows_the_secret_once(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"

    def run(*args: str) -> tuple[int, str, str]:
        return output(hotline(url, "token", *args))

    status, out, err = run("create", "crm-sync", "--role", "supervisor")
    assert status == 0
    [token_secret] = out.splitlines()
    assert token_secret.startswith("hlt_")
    assert len(token_secret) == 4 + 43
    assert "will not be shown again" in err
    assert token_secret not in err
    assert run("create", "crm-sync", "--role", "agent")[0] == 1
    status, out, _ = run("create", "nightly", "--role", "admin", "--expires-days", "0")
    assert status == 0
    assert run("create", "x", "--role", "admin", "--expires-days", "-1")[0] == 1

    status, listed, err = run("list")
    assert status == 0
    assert token_secret not in listed + err
    rows = [line.split("  ") for line in listed.splitlines()]
    assert [r[0].strip() for r in rows] == ["name", "crm-sync", "nightly"]
    assert "never" in listed.splitlines()[2]

    engine = one_connection_engine(url)
    try:
        directory = StaffDirectory(make_sessionmaker(engine), cheap_hasher())
        found = await directory.token_for(token_secret, at=datetime.now(UTC))
        assert isinstance(found, TokenRecord)
        assert (found.name, found.role) == ("crm-sync", Role.SUPERVISOR)
        assert found.expires_at is not None
        assert timedelta(days=89) < found.expires_at - found.created_at <= timedelta(days=90)
        async with make_sessionmaker(engine)() as session:
            stored = (await session.scalars(select(ApiToken.secret_hash))).all()
        assert token_secret not in stored
        assert hashlib.sha256(token_secret.encode()).hexdigest() in stored

        assert run("revoke", "crm-sync")[:2] == (0, "token crm-sync revoked\n")
        assert await directory.token_for(token_secret, at=datetime.now(UTC)) is None
    finally:
        await engine.dispose()
    assert run("revoke", "crm-sync")[0] == 1
    status, listed, _ = run("list")
    assert "revoked" in listed.splitlines()[1]


def test_the_commands_say_when_the_database_is_down() -> None:
    status, out, err = output(
        hotline("postgresql+asyncpg://nobody@127.0.0.1:1/none", "user", "list")
    )
    assert (status, out) == (2, "")
    assert "cannot open the database" in err
