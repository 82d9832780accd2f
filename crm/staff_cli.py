"""``hotline user`` and ``hotline token``: staff accounts and integration tokens.

Kept apart from ``telephony.cli`` so it is wired in with ``add_staff_parsers`` and
``run_staff``. A password is never an argument (it would sit in the shell's history and
in every process listing): it is asked twice on the terminal, or read as one line from
standard input with ``--password-stdin`` for scripts. A token's secret is made here and
printed once, alone on standard output so a script can take it; only its sha256 is kept.

The exit status tells a script what happened: 0 done, 1 refused (bad input, naming the
field; unknown or duplicate name), 2 nothing done (database down or unusable).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import secrets
import sys
import unicodedata
from collections.abc import Sequence
from datetime import datetime, timedelta

from alembic.util.exc import CommandError
from sqlalchemy.exc import SQLAlchemyError

from crm.clock import Clock, SystemClock
from crm.db import create_engine, make_sessionmaker, migrate
from crm.exceptions import CrmError, InvalidInput, StorageError
from crm.residents_cli import HasDatabase
from crm.staff import Role, StaffDirectory, TokenRecord, UserRecord, standard_hasher

COMMANDS = ("user", "token")
TOKEN_PREFIX = "hlt_"
DEFAULT_EXPIRES_DAYS = 90


def add_staff_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    roles = [role.value for role in Role]
    user = sub.add_parser("user", help="staff accounts: add, passwd, disable, enable, list")
    actions = user.add_subparsers(dest="user_action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="a new user (the password is asked, never an argument)")
    add.add_argument("name", metavar="NAME")
    add.add_argument("--role", required=True, choices=roles)
    add.add_argument("--agent", type=int, metavar="ID", help="the agent record (role agent)")
    _password_stdin(add)
    passwd = actions.add_parser("passwd", help="set a new password (ends the user's sessions)")
    passwd.add_argument("name", metavar="NAME")
    _password_stdin(passwd)
    for action, what in (("disable", "sign-in refused, sessions ended"), ("enable", "again")):
        actions.add_parser(action, help=f"{action} a user ({what})").add_argument(
            "name", metavar="NAME"
        )
    actions.add_parser("list", help="name, role, agent, disabled, locked")

    token = sub.add_parser("token", help="API tokens for integrations: create, revoke, list")
    actions = token.add_subparsers(dest="token_action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="a new token; its secret is printed once")
    create.add_argument("name", metavar="NAME")
    create.add_argument("--role", required=True, choices=roles)
    create.add_argument(
        "--expires-days",
        type=int,
        default=DEFAULT_EXPIRES_DAYS,
        metavar="N",
        help=f"days until it expires (default {DEFAULT_EXPIRES_DAYS}; 0 = never)",
    )
    actions.add_parser("revoke", help="revoke a token at once").add_argument("name", metavar="NAME")
    actions.add_parser("list", help="name, role, state, times (never the secret)")


def _password_stdin(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password as one line from standard input (for scripts)",
    )


def run_staff(args: argparse.Namespace, config: HasDatabase, clock: Clock | None = None) -> int:
    prog = f"hotline {args.command}"
    try:
        password = _password(args) if _needs_password(args) else None
        return asyncio.run(_run(args, config, password, clock or SystemClock()))
    except StorageError as err:
        print(f"{prog}: {err}", file=sys.stderr)
        return 2
    except CrmError as err:
        print(f"{prog}: {err}", file=sys.stderr)
        return 1


def _needs_password(args: argparse.Namespace) -> bool:
    return args.command == "user" and args.user_action in ("add", "passwd")


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    if not sys.stdin.isatty():
        raise InvalidInput("password", "no terminal to ask on: give it with --password-stdin")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != first:
        raise InvalidInput("password", "the two entries differ")
    return first


async def _run(
    args: argparse.Namespace, config: HasDatabase, password: str | None, clock: Clock
) -> int:
    url, wait_s = config.database.url, config.database.wait_s
    try:
        await migrate(url)
    except (SQLAlchemyError, OSError, CommandError) as err:
        raise StorageError(f"cannot open the database: {type(err).__name__}") from err
    engine = create_engine(url, wait_s=wait_s)
    try:
        staff = StaffDirectory(make_sessionmaker(engine), standard_hasher())
        if args.command == "user":
            return await _user(args, staff, password, clock)
        return await _token(args, staff, clock)
    finally:
        await engine.dispose()


async def _user(
    args: argparse.Namespace, staff: StaffDirectory, password: str | None, clock: Clock
) -> int:
    action = args.user_action
    if action == "add":
        assert password is not None
        user = await staff.add_user(
            args.name, args.role, password, agent_id=args.agent, at=clock.now()
        )
        linked = f" (agent #{user.agent_id})" if user.agent_id is not None else ""
        print(f"added {user.role} {user.name}{linked}")
    elif action == "passwd":
        assert password is not None
        user = await staff.set_password(args.name, password, at=clock.now())
        print(f"password of {user.name} set; their sessions are ended")
    elif action in ("disable", "enable"):
        user = await staff.set_disabled(args.name, action == "disable", at=clock.now())
        print(f"{user.name} {action}d" + (" (sessions ended)" if user.disabled else ""))
    else:
        print(
            _table(
                ["name", "role", "agent", "disabled", "locked"],
                _user_rows(await staff.users(), clock.now()),
            )
        )
    return 0


def _user_rows(users: Sequence[UserRecord], now: datetime) -> list[list[str]]:
    return [
        [
            u.name,
            u.role,
            f"#{u.agent_id}" if u.agent_id is not None else "-",
            "yes" if u.disabled else "no",
            f"until {_when(u.locked_until)}" if u.locked_until and u.locked(now) else "no",
        ]
        for u in users
    ]


async def _token(args: argparse.Namespace, staff: StaffDirectory, clock: Clock) -> int:
    action = args.token_action
    now = clock.now()
    if action == "create":
        days = args.expires_days
        if days < 0:
            raise InvalidInput("expires-days", "must be 0 (never) or a number of days")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token = await staff.issue_token(
            args.name,
            args.role,
            secret,
            expires_at=now + timedelta(days=days) if days else None,
            at=now,
        )
        print(secret)
        expiry = f"expires {_when(token.expires_at)}" if token.expires_at else "never expires"
        print(
            f"token {token.name} ({token.role}) {expiry}. The secret above is shown this once "
            "and will not be shown again: store it now.",
            file=sys.stderr,
        )
    elif action == "revoke":
        token = await staff.revoke_token(args.name, at=now)
        print(f"token {token.name} revoked")
    else:
        header = ["name", "role", "state", "created", "expires", "last used"]
        print(_table(header, _token_rows(await staff.tokens(), now)))
    return 0


def _token_rows(tokens: Sequence[TokenRecord], now: datetime) -> list[list[str]]:
    return [
        [
            t.name,
            t.role,
            t.state(now),
            _when(t.created_at),
            _when(t.expires_at) if t.expires_at else "never",
            _when(t.last_used_at) if t.last_used_at else "-",
        ]
        for t in tokens
    ]


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "-"


def _table(header: list[str], rows: list[list[str]]) -> str:
    """Columns padded to their widest cell, counting a Chinese character as two."""
    widths = [max(_width(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = zip(row, widths, strict=True)
        lines.append("  ".join(cell + " " * (width - _width(cell)) for cell, width in cells))
    return "\n".join(line.rstrip() for line in lines)


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
