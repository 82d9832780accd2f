"""Staff accounts: who may sign in, with which role, and what they were allowed to do.

Three kinds of credential, each kept so that a copy of the database signs nobody in:

- passwords, as argon2 hashes (``argon2.PasswordHasher``, passed in so tests can make it
  cheap). Hashing and verifying take tens of milliseconds of CPU by design, so they run
  in a worker thread, never on the event loop that carries live calls, and never inside
  a unit of work (the one SQLite connection would be held while the hash is computed);
- API tokens and browser sessions, as the sha256 of their secrets. The caller generates
  those secrets at random with enough entropy that a fast hash cannot be searched, and
  a fast hash can be looked up by index on every request, which a salted one cannot.

A sign-in (``check_login``) costs the same for a name nobody has (a dummy hash is
verified), so timing does not tell which names exist. Consecutive wrong passwords lock
the account for a while; a correct one while locked is still refused, so guessing on
through a lock gains nothing. The counting is one conditional UPDATE, so concurrent
attempts cannot lose a failure between them.

A session ends when idle too long, at its absolute expiry, when its user is disabled or
their password is set again; a token when it expires or is revoked. ``access_audit`` has
one row per access decision, written by the HTTP layer where the answer is given.
"""

from __future__ import annotations

import asyncio
import builtins
import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import ColumnElement, and_, case, delete, literal, null, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm import validation
from crm.exceptions import Conflict, InvalidInput, InvalidQuery, NotFound, StorageError
from crm.models import AccessAudit, Agent, ApiToken, StaffSession, StaffUser, UTCDateTime
from crm.repository import DOCUMENTED_FIELDS, Repository, record_json, require_aware
from crm.uncancellable import uncancellable

log = logging.getLogger(__name__)

NAME_MAX = 40
PASSWORD_MIN = 10
# argon2 hashes any length, but a megabyte-long "password" is work nobody should get for
# free; a longer one cannot be set, and signing in with one is simply wrong.
PASSWORD_MAX = 1024
SECRET_MIN = 32  # token_urlsafe(32) gives 43 characters
SECRET_MAX = 512
CSRF_MIN = 16
# Writes spared: a token used in a burst, or a page polling every second, is touched once.
TOKEN_TOUCH = timedelta(minutes=1)
SESSION_TOUCH = timedelta(seconds=30)
AUDIT_PAGE_MAX = 500


class Role(StrEnum):
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


class LoginOutcome(StrEnum):
    OK = "ok"
    WRONG = "wrong"  # unknown name or wrong password: the caller must not say which
    LOCKED = "locked"  # too many wrong passwords; a right one is refused until locked_until
    DISABLED = "disabled"  # the right password, for an account an admin disabled


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: int
    name: str
    role: Role
    agent_id: int | None
    disabled: bool
    created_at: datetime
    password_changed_at: datetime
    failed_logins: int
    locked_until: datetime | None
    disabled_at: datetime | None = None

    def locked(self, at: datetime) -> bool:
        return self.locked_until is not None and self.locked_until > at

    def to_json(self) -> dict[str, Any]:
        return record_json(self)


@dataclass(frozen=True, slots=True)
class TokenRecord:
    id: int
    name: str
    role: Role
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    def state(self, at: datetime) -> str:
        """active, revoked or expired: what ``token_for`` would make of it at ``at``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= at:
            return "expired"
        return "active"

    def to_json(self) -> dict[str, Any]:
        return record_json(self)


@dataclass(frozen=True, slots=True)
class SessionRecord:
    id: int
    user: UserRecord
    csrf: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime  # absolute: however active, the session ends then


@dataclass(frozen=True, slots=True)
class LoginResult:
    """The answer to a sign-in. ``user`` is whom the name named, for the audit row, and is
    there for ``wrong`` too when the name exists: only ``ok`` signs anybody in."""

    outcome: LoginOutcome
    user: UserRecord | None = None
    locked_until: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is LoginOutcome.OK


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One access decision: who asked for what, from where, and whether they got it."""

    __pydantic_config__ = DOCUMENTED_FIELDS

    id: int
    """Audit row id."""
    at: datetime
    """When it was asked."""
    user_id: int | None
    """The staff user; null for an API token or a name that is nobody's."""
    actor: str
    """The user's name, token:NAME for an API token, ? for nobody."""
    address: str
    """The client's address (behind a trusted proxy: the address it saw)."""
    action: str
    """sign-in, playback, transcript, set-endpoint, or the permission refused."""
    target: str
    """What was asked for, e.g. call 12 or recording 7 (agent) of call 12."""
    granted: bool
    """Whether it was allowed."""
    reason: str
    """Why it was refused; empty when granted."""

    def to_json(self) -> dict[str, Any]:
        return record_json(self)


def standard_hasher() -> PasswordHasher:
    """The hasher for real passwords: RFC 9106's low-memory profile (argon2id, 64 MiB,
    3 passes), argon2-cffi's default. Hashes made with other parameters are redone at
    the user's next sign-in (``check_login``)."""
    return PasswordHasher.from_parameters(profiles.RFC_9106_LOW_MEMORY)


def secret_digest(secret: str) -> str:
    """What is stored of a token's or session's secret: its sha256, in hex."""
    return hashlib.sha256(secret.encode()).hexdigest()


def check_name(value: object) -> str:
    return validation.required_name_text("name", value, max_len=NAME_MAX)


def _lookup(name: object) -> str | None:
    """A name as stored, or None for one that could not have been (nobody has it).

    Lookups go through this so that what nobody could be named never reaches the
    database: PostgreSQL cannot even bind a NUL, and would fail the request with 503.
    """
    try:
        return check_name(name)
    except InvalidInput:
        return None


def _existing(name: str, what: str) -> str:
    checked = _lookup(name)
    if checked is None:
        raise NotFound(what, name)
    return checked


def check_role(value: object) -> Role:
    if isinstance(value, str) and value in tuple(Role):
        return Role(value)
    raise InvalidInput("role", f"must be one of {', '.join(Role)}, got {value!r}")


def check_password(password: object, *, name: str) -> str:
    """The password policy: at least ``PASSWORD_MIN`` characters and not the user's name."""
    if not isinstance(password, str):
        raise InvalidInput("password", "must be a string")
    if len(password) < PASSWORD_MIN:
        raise InvalidInput(
            "password", f"must be at least {PASSWORD_MIN} characters, got {len(password)}"
        )
    if len(password) > PASSWORD_MAX:
        raise InvalidInput("password", f"must be at most {PASSWORD_MAX} characters")
    if password.strip().casefold() == name.strip().casefold():
        raise InvalidInput("password", "must not be the user's name")
    return password


def _check_secret(field: str, value: object, minimum: int) -> str:
    if not isinstance(value, str) or not minimum <= len(value) <= SECRET_MAX:
        raise InvalidInput(
            field, f"must be a random string of {minimum} to {SECRET_MAX} characters"
        )
    return value


def _check_agent_link(role: Role, agent_id: object) -> int | None:
    if role is Role.AGENT:
        if agent_id is None:
            raise InvalidInput("agent_id", "an agent user needs the id of their agent record")
        if not isinstance(agent_id, int) or not _is_int(agent_id) or agent_id < 1:
            raise InvalidInput("agent_id", f"must be an agent's id, got {agent_id!r}")
        return agent_id
    if agent_id is not None:
        raise InvalidInput("agent_id", f"only an agent user is linked to an agent, not a {role}")
    return None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _user(row: StaffUser) -> UserRecord:
    return UserRecord(
        id=row.id,
        name=row.name,
        role=Role(row.role),
        agent_id=row.agent_id,
        disabled=row.disabled,
        created_at=row.created_at,
        password_changed_at=row.password_changed_at,
        failed_logins=row.failed_logins,
        locked_until=row.locked_until,
        disabled_at=row.disabled_at,
    )


def _token(row: ApiToken) -> TokenRecord:
    return TokenRecord(
        id=row.id,
        name=row.name,
        role=Role(row.role),
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
    )


def _session(row: StaffSession, user: StaffUser) -> SessionRecord:
    return SessionRecord(
        id=row.id,
        user=_user(user),
        csrf=row.csrf,
        created_at=row.created_at,
        last_seen_at=row.last_seen_at,
        expires_at=row.expires_at,
    )


def _verify(passwords: PasswordHasher, hashed: str, password: str) -> bool:
    try:
        return passwords.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


class StaffDirectory(Repository):
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        passwords: PasswordHasher,
        *,
        max_failures: int = 5,
        lockout: timedelta = timedelta(minutes=15),
    ) -> None:
        super().__init__(sessions)
        if max_failures < 1:
            raise ValueError(f"max_failures must be at least 1, got {max_failures}")
        if lockout <= timedelta(0):
            raise ValueError(f"lockout must be positive, got {lockout}")
        self._passwords = passwords
        self._max_failures = max_failures
        self._lockout = lockout
        self._dummy_hash: str | None = None

    # -- users ---------------------------------------------------------------------------

    @uncancellable
    async def add_user(
        self,
        name: str,
        role: Role | str,
        password: str,
        *,
        agent_id: int | None = None,
        at: datetime,
    ) -> UserRecord:
        """A new user; an agent user is linked to an active agent record nobody else has."""
        name = check_name(name)
        checked_role = check_role(role)
        agent_id = _check_agent_link(checked_role, agent_id)
        check_password(password, name=name)
        require_aware("at", at)
        hashed = await self._hash(password)
        try:
            async with self._transaction("add staff user") as session:
                if await session.scalar(select(StaffUser.id).where(StaffUser.name == name)):
                    raise Conflict(f"a user is already named {name}")
                if agent_id is not None:
                    agent = await session.get(Agent, agent_id)
                    if agent is None:
                        raise InvalidInput("agent_id", f"no agent #{agent_id}")
                    if not agent.active:
                        raise InvalidInput("agent_id", f"agent #{agent_id} is not active")
                    linked = select(StaffUser.id).where(StaffUser.agent_id == agent_id)
                    if await session.scalar(linked):
                        raise Conflict(f"agent #{agent_id} is already linked to a user")
                row = StaffUser(
                    name=name,
                    role=checked_role.value,
                    agent_id=agent_id,
                    password_hash=hashed,
                    disabled=False,
                    created_at=at,
                    password_changed_at=at,
                    failed_logins=0,
                )
                session.add(row)
                await session.flush()
                return _user(row)
        except StorageError as err:
            if isinstance(err.__cause__, IntegrityError):  # the same name or agent, just now
                raise Conflict(f"user {name} or agent #{agent_id} is already taken") from err
            raise

    @uncancellable
    async def set_password(self, name: str, password: str, *, at: datetime) -> UserRecord:
        """A new password: it ends the user's sessions and lifts a lock-out (an admin who
        sets it has checked who asked)."""
        check_password(password, name=name)
        require_aware("at", at)
        hashed = await self._hash(password)
        checked = _existing(name, "user")
        async with self._transaction("set staff password") as session:
            row = await session.scalar(select(StaffUser).where(StaffUser.name == checked))
            if row is None:
                raise NotFound("user", name)
            row.password_hash = hashed
            row.password_changed_at = at
            row.failed_logins = 0
            row.locked_until = None
            await session.execute(delete(StaffSession).where(StaffSession.user_id == row.id))
            await session.flush()
            return _user(row)

    @uncancellable
    async def set_disabled(self, name: str, disabled: bool, *, at: datetime) -> UserRecord:
        """Disable (ending the user's sessions at once) or enable again."""
        if not isinstance(disabled, bool):
            raise InvalidInput("disabled", "must be true or false")
        require_aware("at", at)
        checked = _existing(name, "user")
        async with self._transaction("set staff disabled") as session:
            row = await session.scalar(select(StaffUser).where(StaffUser.name == checked))
            if row is None:
                raise NotFound("user", name)
            if row.disabled != disabled:
                row.disabled = disabled
                row.disabled_at = at if disabled else None
            if disabled:
                await session.execute(delete(StaffSession).where(StaffSession.user_id == row.id))
            await session.flush()
            return _user(row)

    @uncancellable
    async def users(self) -> builtins.list[UserRecord]:
        async with self._transaction("list staff users") as session:
            rows = (await session.scalars(select(StaffUser).order_by(StaffUser.name))).all()
            return [_user(row) for row in rows]

    @uncancellable
    async def user(self, name: str) -> UserRecord:
        checked = _existing(name, "user")
        async with self._transaction("get staff user") as session:
            row = await session.scalar(select(StaffUser).where(StaffUser.name == checked))
            if row is None:
                raise NotFound("user", name)
            return _user(row)

    @uncancellable
    async def user_by_id(self, user_id: int) -> UserRecord:
        async with self._transaction("get staff user by id") as session:
            row = await session.get(StaffUser, user_id)
            if row is None:
                raise NotFound("user", user_id)
            return _user(row)

    # -- signing in ----------------------------------------------------------------------

    @uncancellable
    async def check_login(self, name: str, password: str, *, at: datetime) -> LoginResult:
        """Whether ``password`` is ``name``'s, counting failures towards a lock-out.

        Two short units of work with the hash verified between them, off the event loop:
        verifying inside one would hold the database connection for the whole hash.
        """
        require_aware("at", at)
        if not isinstance(password, str) or len(password) > PASSWORD_MAX:
            password = ""  # verified like any other, so the answer takes as long
        known = None
        if (checked := _lookup(name)) is not None:
            async with self._transaction("read staff login") as session:
                found = await session.execute(
                    select(StaffUser.id, StaffUser.password_hash).where(StaffUser.name == checked)
                )
                known = found.first()
        if known is None:
            await self._verify(await self._dummy(), password)
            return LoginResult(LoginOutcome.WRONG)
        user_id, hashed = known
        matched = await self._verify(hashed, password)
        rehashed = None
        if matched and self._passwords.check_needs_rehash(hashed):
            rehashed = await self._hash(password)
        if matched:
            return await self._login_matched(user_id, hashed, rehashed, at)
        return await self._login_failed(user_id, at)

    async def _login_matched(
        self, user_id: int, hashed: str, rehashed: str | None, at: datetime
    ) -> LoginResult:
        async with self._transaction("record staff login") as session:
            row = await session.get(StaffUser, user_id)
            if row is None or row.password_hash != hashed:  # deleted, or set again meanwhile
                return LoginResult(LoginOutcome.WRONG, None if row is None else _user(row))
            if row.locked_until is not None and row.locked_until > at:
                return LoginResult(LoginOutcome.LOCKED, _user(row), row.locked_until)
            if row.disabled:
                return LoginResult(LoginOutcome.DISABLED, _user(row))
            row.failed_logins = 0
            row.locked_until = None
            if rehashed is not None:
                row.password_hash = rehashed
            await session.flush()
            return LoginResult(LoginOutcome.OK, _user(row))

    async def _login_failed(self, user_id: int, at: datetime) -> LoginResult:
        until = at + self._lockout
        lock_over = and_(StaffUser.locked_until.is_not(None), StaffUser.locked_until <= at)
        # A lock that has run out starts the count again: one slip after it is one failure.
        count: ColumnElement[int] = case((lock_over, 1), else_=StaffUser.failed_logins + 1)
        lock = case(
            (count >= self._max_failures, literal(until, UTCDateTime())),
            (lock_over, null()),
            else_=StaffUser.locked_until,
        )
        statement = (
            update(StaffUser)
            .where(
                StaffUser.id == user_id,
                or_(StaffUser.locked_until.is_(None), StaffUser.locked_until <= at),
            )
            .values(failed_logins=count, locked_until=lock)
            .returning(StaffUser.failed_logins, StaffUser.locked_until)
        )
        async with self._transaction("count staff login failure") as session:
            counted = (await session.execute(statement)).first()
            row = await session.get(StaffUser, user_id, populate_existing=True)
            if row is None:
                return LoginResult(LoginOutcome.WRONG)
            user = _user(row)
        if counted is None:  # locked already: wrong guesses while locked count for nothing
            return LoginResult(LoginOutcome.LOCKED, user, user.locked_until)
        failures, locked_until = counted
        if locked_until is not None and locked_until > at:
            log.warning(
                "staff user #%d locked until %s after %d wrong passwords",
                user_id,
                locked_until.isoformat(),
                failures,
            )
            return LoginResult(LoginOutcome.LOCKED, user, locked_until)
        return LoginResult(LoginOutcome.WRONG, user)

    # -- API tokens ----------------------------------------------------------------------

    @uncancellable
    async def issue_token(
        self,
        name: str,
        role: Role | str,
        secret: str,
        *,
        expires_at: datetime | None,
        at: datetime,
    ) -> TokenRecord:
        """A token for an integration; ``secret`` is the caller's, and only its sha256 is kept."""
        name = check_name(name)
        checked_role = check_role(role)
        _check_secret("secret", secret, SECRET_MIN)
        require_aware("at", at)
        if expires_at is not None:
            require_aware("expires_at", expires_at)
            validation.check_time_range("expires_at", expires_at)
            if expires_at <= at:
                raise InvalidInput("expires_at", "must be later than now")
        try:
            async with self._transaction("issue api token") as session:
                taken = select(ApiToken.id).where(
                    ApiToken.name == name, ApiToken.revoked_at.is_(None)
                )
                if await session.scalar(taken):
                    raise Conflict(f"a token named {name} is in use: revoke it first")
                row = ApiToken(
                    name=name,
                    role=checked_role.value,
                    secret_hash=secret_digest(secret),
                    created_at=at,
                    expires_at=expires_at,
                )
                session.add(row)
                await session.flush()
                return _token(row)
        except StorageError as err:
            if isinstance(err.__cause__, IntegrityError):
                raise Conflict(f"a token named {name} (or with this secret) exists") from err
            raise

    @uncancellable
    async def token_for(self, secret: str, *, at: datetime) -> TokenRecord | None:
        """The token with this secret, if it may be used at ``at``."""
        require_aware("at", at)
        if not isinstance(secret, str) or not secret or len(secret) > SECRET_MAX:
            return None
        async with self._transaction("find api token") as session:
            row = await session.scalar(
                select(ApiToken).where(ApiToken.secret_hash == secret_digest(secret))
            )
            if row is None or _token(row).state(at) != "active":
                return None
            if row.last_used_at is None or at - row.last_used_at >= TOKEN_TOUCH:
                row.last_used_at = at
                await session.flush()
            return _token(row)

    @uncancellable
    async def revoke_token(self, name: str, *, at: datetime) -> TokenRecord:
        require_aware("at", at)
        checked = _existing(name, "token")
        async with self._transaction("revoke api token") as session:
            row = await session.scalar(
                select(ApiToken).where(ApiToken.name == checked, ApiToken.revoked_at.is_(None))
            )
            if row is None:
                raise NotFound("token", name)
            row.revoked_at = at
            await session.flush()
            return _token(row)

    @uncancellable
    async def tokens(self) -> builtins.list[TokenRecord]:
        """Every token ever issued, revoked ones too (their names and times, no secrets)."""
        async with self._transaction("list api tokens") as session:
            rows = (await session.scalars(select(ApiToken).order_by(ApiToken.id))).all()
            return [_token(row) for row in rows]

    # -- browser sessions ----------------------------------------------------------------

    @uncancellable
    async def open_session(
        self, user_id: int, secret: str, csrf: str, *, at: datetime, absolute: timedelta
    ) -> SessionRecord:
        """A session for a user who just signed in; ``secret`` goes in the cookie."""
        _check_secret("secret", secret, SECRET_MIN)
        _check_secret("csrf", csrf, CSRF_MIN)
        require_aware("at", at)
        if absolute <= timedelta(0):
            raise InvalidInput("absolute", "must be positive")
        async with self._transaction("open staff session") as session:
            user = await session.get(StaffUser, user_id)
            if user is None:
                raise NotFound("user", user_id)
            if user.disabled:
                raise Conflict(f"user #{user_id} is disabled")
            row = StaffSession(
                user_id=user_id,
                secret_hash=secret_digest(secret),
                csrf=csrf,
                created_at=at,
                last_seen_at=at,
                expires_at=at + absolute,
            )
            session.add(row)
            await session.flush()
            return _session(row, user)

    @uncancellable
    async def session_for(
        self, secret: str, *, at: datetime, idle: timedelta
    ) -> SessionRecord | None:
        """The live session with this secret, seen at ``at``; one that has ended is deleted."""
        require_aware("at", at)
        if not isinstance(secret, str) or not secret or len(secret) > SECRET_MAX:
            return None
        statement = (
            select(StaffSession, StaffUser)
            .join(StaffUser, StaffUser.id == StaffSession.user_id)
            .where(StaffSession.secret_hash == secret_digest(secret))
        )
        async with self._transaction("find staff session") as session:
            found = (await session.execute(statement)).first()
            if found is None:
                return None
            row, user = found
            if at >= row.expires_at or at - row.last_seen_at > idle or user.disabled:
                await session.execute(delete(StaffSession).where(StaffSession.id == row.id))
                return None
            if at - row.last_seen_at >= SESSION_TOUCH:
                row.last_seen_at = at
                await session.flush()
            return _session(row, user)

    @uncancellable
    async def close_session(self, secret: str) -> bool:
        """Sign out; False when there was no such session (signing out twice is fine)."""
        if not isinstance(secret, str) or not secret:
            return False
        async with self._transaction("close staff session") as session:
            closed = await session.execute(
                delete(StaffSession)
                .where(StaffSession.secret_hash == secret_digest(secret))
                .returning(StaffSession.id)
            )
            return closed.first() is not None

    @uncancellable
    async def close_sessions_of(self, user_id: int) -> int:
        async with self._transaction("close staff sessions") as session:
            closed = await session.execute(
                delete(StaffSession)
                .where(StaffSession.user_id == user_id)
                .returning(StaffSession.id)
            )
            return len(closed.all())

    @uncancellable
    async def purge_sessions(self, *, at: datetime, idle: timedelta) -> int:
        """Delete the sessions that have ended unseen (browsers closed without signing out)."""
        require_aware("at", at)
        async with self._transaction("purge staff sessions") as session:
            purged = await session.execute(
                delete(StaffSession)
                .where(or_(StaffSession.expires_at <= at, StaffSession.last_seen_at < at - idle))
                .returning(StaffSession.id)
            )
            return len(purged.all())

    # -- the access audit ----------------------------------------------------------------

    @uncancellable
    async def audit(
        self,
        *,
        at: datetime,
        user_id: int | None,
        actor: str,
        address: str,
        action: str,
        target: str,
        granted: bool,
        reason: str = "",
    ) -> None:
        """One access decision, stored as given (the HTTP layer masks what must be), but
        for NUL, which PostgreSQL cannot store: it becomes U+FFFD, so a request path with
        %00 in it is still audited."""
        require_aware("at", at)
        texts: dict[str, str] = {}
        for field, value in (
            ("actor", actor),
            ("address", address),
            ("action", action),
            ("target", target),
            ("reason", reason),
        ):
            if not isinstance(value, str):
                raise InvalidInput(field, "must be a string")
            texts[field] = value.replace("\x00", "\ufffd")
        if not isinstance(granted, bool):
            raise InvalidInput("granted", "must be true or false")
        async with self._transaction("write access audit") as session:
            session.add(AccessAudit(at=at, user_id=user_id, granted=granted, **texts))

    @uncancellable
    async def audit_log(
        self,
        *,
        limit: int,
        offset: int,
        user_id: int | None = None,
        granted: bool | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> builtins.list[AuditRecord]:
        """Access decisions newest first; ``since`` inclusive, ``until`` exclusive."""
        if not _is_int(limit) or not 1 <= limit <= AUDIT_PAGE_MAX:
            raise InvalidQuery("limit", f"must be 1 to {AUDIT_PAGE_MAX}")
        if not _is_int(offset) or offset < 0:
            raise InvalidQuery("offset", "must be 0 or more")
        conditions: builtins.list[ColumnElement[bool]] = []
        if user_id is not None:
            conditions.append(AccessAudit.user_id == user_id)
        if granted is not None:
            conditions.append(AccessAudit.granted.is_(granted))
        for field, bound in (("since", since), ("until", until)):
            if bound is not None:
                require_aware(field, bound)
        if since is not None:
            conditions.append(AccessAudit.at >= since)
        if until is not None:
            conditions.append(AccessAudit.at < until)
        statement = (
            select(AccessAudit)
            .where(*conditions)
            .order_by(AccessAudit.at.desc(), AccessAudit.id.desc())
            .limit(limit)
            .offset(offset)
        )
        async with self._transaction("read access audit") as session:
            rows = (await session.scalars(statement)).all()
            return [
                AuditRecord(
                    id=r.id,
                    at=r.at,
                    user_id=r.user_id,
                    actor=r.actor,
                    address=r.address,
                    action=r.action,
                    target=r.target,
                    granted=r.granted,
                    reason=r.reason,
                )
                for r in rows
            ]

    # -- hashing, off the event loop -----------------------------------------------------

    async def _hash(self, password: str) -> str:
        return await asyncio.to_thread(self._passwords.hash, password)

    async def _verify(self, hashed: str, password: str) -> bool:
        return await asyncio.to_thread(_verify, self._passwords, hashed, password)

    async def _dummy(self) -> str:
        """A hash of nothing anyone knows, with this hasher's parameters, for unknown names."""
        if self._dummy_hash is None:
            self._dummy_hash = await self._hash(secrets.token_urlsafe(24))
        return self._dummy_hash
