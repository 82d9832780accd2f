"""A bounded schemathesis run over every operation of the service's own OpenAPI document.

Why this exists (issue 13): the document at ``/api/openapi.json`` is generated from the
routes' declarations, and the API tests check every answer they happen to receive against
it; a fuzzer asks the questions nobody wrote a test for. Schemathesis reads the document
the running service serves, generates requests from its schemas (valid ones, and invalid
ones the service must refuse), and checks each answer: no server error, a status the
operation documents, a content type it documents, and a body that matches the schema of
that status (for a refusal: exactly the ``error_id`` values the route declares).

The whole service runs in this process (``build_app``, as ``hotline serve`` builds it) on a
fresh SQLite database, or on a fresh database of the PostgreSQL server ``--postgres``
names, with Asterisk out of reach (nothing listens on 127.0.0.1:9): the routes that would
dial answer 503 at once, which they document (see ``NOT_SERVER_ERRORS``). A few records
(an agent, a room, a resident, cases of each kind, an ended call) are made first, and
valid requests mostly name them, so the handlers behind the 404s run too.

Every operation runs twice: with credentials (a supervisor's API token, or an admin's for
what only an admin may do, as web/permissions.py's table says) and with none, when every
route but the open ones must answer 401 ``unauthorised`` (``refused_without_credentials``).
Requests go through schemathesis' ``Case.call`` from a worker thread while the service's
event loop answers them. Hypothesis draws from a fixed seed with no example database, so
two runs of the same code send the same requests. Exit status: 0 when nothing failed, 1
on any failure, 2 when the run itself could not start.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import os
import platform
import secrets
import socket
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import hypothesis
import hypothesis.errors
import requests
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from schemathesis import APIOperation, Case, CheckContext, GenerationMode, Response
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from crm.messages import MessageReason
from crm.recordings import StoredAudio
from crm.staff import Role
from telephony.config import AriConfig, Config, DatabaseConfig, load_config
from telephony.recording.vosk_model import packaged_model
from web.app import build_app
from web.appkeys import ACD, CLOCK, MESSAGES, RECORDINGS, STAFF
from web.calls import CALL_LOG
from web.permissions import Permission, allowed, permission_for

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_EXAMPLES = 100
QUICK_EXAMPLES = 10
DEFAULT_SEED = 13
REQUEST_TIMEOUT_S = 30.0  # generous: a loaded 2-core machine is slow, not broken
# Nothing listens on the discard port: ARI is refused at once, as with Asterisk down.
UNREACHABLE_ARI = "http://127.0.0.1:9/ari"

# Not fuzzed: the live feed is a websocket. A plain GET is not how it is used, and what it
# sends is documented as x-websocket-message, which no HTTP check reads.
EXCLUDED = frozenset({("GET", "/api/live")})

# The ids seed_records makes in every table it writes to; a valid request's path id is
# mostly one of them.
SEEDED_IDS = (1, 2, 3)

# 503 is the service saying honestly that a part it needs is not there (Asterisk for
# /healthz and the routes that dial, the database when it is stuck), and each route
# that can answer it documents it: status_code_conformance holds it to that. Any other
# 5xx (a 500 is an unhandled exception) is a server error.
NOT_SERVER_ERRORS = ["2xx", "3xx", "4xx", "503"]

CheckFunction = Callable[[CheckContext, Response, "Case[Any]"], bool | None]


def refused_without_credentials(
    ctx: CheckContext, response: Response, case: Case[Any]
) -> bool | None:
    """Without credentials every route but the open ones answers 401 unauthorised."""
    permission = permission_for(case.operation.method.upper(), case.operation.path)
    if permission is Permission.OPEN:
        return None
    if response.status_code != 401:
        raise AssertionError(f"{response.status_code} without credentials, not 401")
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or body.get("error_id") != "unauthorised":
        raise AssertionError("a 401 without error_id unauthorised")
    return None


CHECKS: tuple[CheckFunction, ...] = (
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
)
ANONYMOUS_CHECKS: tuple[CheckFunction, ...] = (*CHECKS, refused_without_credentials)


class BenchError(Exception):
    """The run could not start (no database server, the service did not start)."""


@dataclasses.dataclass(frozen=True)
class Plan:
    """How much to send: examples per operation and generation mode, from one seed."""

    examples: int
    seed: int
    modes: tuple[GenerationMode, ...] = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)


@dataclasses.dataclass
class Tally:
    """What one pass (with or without credentials) sent and found."""

    label: str
    checks: tuple[CheckFunction, ...]
    operations: int = 0
    requests: int = 0
    statuses: Counter[int] = dataclasses.field(default_factory=Counter)
    failures: Counter[str] = dataclasses.field(default_factory=Counter)
    # (check, operation, the failure's title) → the first example of it, printed once.
    examples: dict[tuple[str, str, str], str] = dataclasses.field(default_factory=dict)

    def fail(self, check: str, operation: str, title: str, example: str) -> None:
        self.failures[check] += 1
        self.examples.setdefault((check, operation, title), example)

    @property
    def failed(self) -> int:
        return sum(self.failures.values())


def _example(case: Case[Any], response: Response, failure: BaseException) -> str:
    """One line to reproduce a failure: what was sent, what came back, and why it is wrong."""
    message = failure.message if isinstance(failure, Failure) else str(failure)
    query = f" query={case.query}" if case.query else ""
    body = case.body if isinstance(case.body, dict | list | str) else None
    sent = f" body={str(body)[:200]}" if body is not None else ""
    answer = response.text[:300].replace("\n", " ")
    why = " ".join(message.split())[:400]
    return (
        f"{case.method} {case.formatted_path}{query}{sent} → {response.status_code} {answer}: {why}"
    )


def _title(failure: BaseException) -> str:
    if isinstance(failure, Failure):
        return failure.title
    return (str(failure).splitlines() or [type(failure).__name__])[0]


# -- the fuzzing ------------------------------------------------------------------------


def load_schema(document: dict[str, Any]) -> schemathesis.BaseSchema:
    """The document as schemathesis sees it, with 503 counted as documented, not a bug."""
    config = schemathesis.Config.from_dict(
        {"checks": {"not_a_server_error": {"expected-statuses": NOT_SERVER_ERRORS}}}
    )
    return schemathesis.openapi.from_dict(document, config=config)


Credentials = Callable[["APIOperation[Any, Any, Any, Any]"], dict[str, str]]


def fuzz(
    schema: schemathesis.BaseSchema,
    base: str,
    plan: Plan,
    tally: Tally,
    credentials: Credentials | None,
) -> None:
    """Every operation, ``plan.examples`` requests per generation mode, each answer checked.

    Blocking (requests): run it in a thread beside the loop that serves ``base``.
    """
    with requests.Session() as session:
        for operation in _operations(schema, tally):
            tally.operations += 1
            headers = credentials(operation) if credentials is not None else {}
            for mode in plan.modes:
                run = _examples(operation, mode, base, session, headers, plan, tally)
                # Unsatisfiable: nothing to make invalid, no parameters and no body (GET /api/me).
                with contextlib.suppress(hypothesis.errors.Unsatisfiable):
                    run()


def _operations(
    schema: schemathesis.BaseSchema, tally: Tally
) -> Iterator[APIOperation[Any, Any, Any, Any]]:
    for result in schema.get_all_operations():
        if not isinstance(result, Ok):
            error = result.err()
            tally.fail("valid_operation", str(error.path), "invalid schema", str(error))
            continue
        operation = result.ok()
        if (operation.method.upper(), operation.path) not in EXCLUDED:
            yield operation


def _examples(
    operation: APIOperation[Any, Any, Any, Any],
    mode: GenerationMode,
    base: str,
    session: requests.Session,
    headers: dict[str, str],
    plan: Plan,
    tally: Tally,
) -> Callable[[], None]:
    settings = hypothesis.settings(
        max_examples=plan.examples,
        database=None,  # no replay of earlier runs' examples: same seed, same requests
        deadline=None,
        phases=[Phase.explicit, Phase.generate],  # failures are counted, not shrunk
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )

    @hypothesis.seed(plan.seed)
    @settings
    @hypothesis.given(
        operation.as_strategy(generation_mode=mode), st.sampled_from((None, *SEEDED_IDS))
    )
    def run(case: Case[Any], known: int | None) -> None:
        ids = case.path_parameters or {}
        if mode is GenerationMode.POSITIVE and known is not None and "id" in ids:
            case.path_parameters = {**ids, "id": known}
        try:
            response = case.call(
                base_url=base, session=session, headers=headers, timeout=REQUEST_TIMEOUT_S
            )
        except requests.RequestException as err:
            # No answer in time, or the connection dropped: a hang or a crash is a finding.
            sent = f"{case.method} {case.formatted_path}: {type(err).__name__}"
            tally.fail("an_answer", operation.label, type(err).__name__, sent)
            return
        tally.requests += 1
        tally.statuses[response.status_code] += 1
        for check in tally.checks:
            try:
                case.validate_response(response, checks=[check], headers=headers)
            except FailureGroup as group:
                for failure in group.exceptions:
                    example = _example(case, response, failure)
                    tally.fail(check.__name__, operation.label, _title(failure), example)
            except AssertionError as err:
                example = _example(case, response, err)
                tally.fail(check.__name__, operation.label, _title(err), example)

    return run


def credentials_for(supervisor: dict[str, str], admin: dict[str, str]) -> Credentials:
    """A supervisor's token where a supervisor may, else an admin's (agents' phones, the
    access audit): the permission table decides, as it does for the service."""

    def headers(operation: APIOperation[Any, Any, Any, Any]) -> dict[str, str]:
        permission = permission_for(operation.method.upper(), operation.path)
        if permission is None or allowed(Role.SUPERVISOR, permission):
            return supervisor
        return admin

    return headers


# -- the service ------------------------------------------------------------------------


def service_config(folder: Path, database_url: str) -> Config:
    """The shipped config on a fresh database, Asterisk out of reach, transcription with
    the packaged test model (a test dependency: the Mandarin one is not on build machines)."""
    config = load_config(ROOT / "config" / "hotline.toml", env={})
    model = packaged_model("ko")
    if model is not None:
        transcription = dataclasses.replace(
            config.transcription, model=model, language="ko", warm_start=False
        )
    else:
        transcription = dataclasses.replace(config.transcription, enabled=False)
    return dataclasses.replace(
        config,
        ari=AriConfig(
            url=UNREACHABLE_ARI,
            user="fuzz",
            password=secrets.token_urlsafe(12),
            reconnect_initial_s=0.5,
            reconnect_max_s=5.0,
        ),
        database=DatabaseConfig(url=database_url),
        recording=dataclasses.replace(config.recording, dir=folder / "recordings"),
        transcription=transcription,
    )


@contextlib.asynccontextmanager
async def fresh_database(folder: Path, postgres: str | None) -> AsyncIterator[str]:
    """A new SQLite file, or a new database on the ``postgres`` server (dropped after)."""
    if postgres is None:
        yield f"sqlite+aiosqlite:///{folder / 'fuzz.db'}"
        return
    admin = create_async_engine(postgres, isolation_level="AUTOCOMMIT")
    name = f"hotline_fuzz_{uuid.uuid4().hex[:12]}"
    try:
        try:
            async with admin.connect() as connection:
                await connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        except (OSError, ConnectionError) as err:
            raise BenchError(f"PostgreSQL at --postgres: {err}") from err
        try:
            yield make_url(postgres).set(database=name).render_as_string(hide_password=False)
        finally:
            async with admin.connect() as connection:
                await connection.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def issue_token(app: web.Application, name: str, role: Role) -> dict[str, str]:
    """An Authorization header of a new token of the in-process service (never printed)."""
    secret = f"fuzz_{secrets.token_urlsafe(32)}"
    now = app[CLOCK].now()
    await app[STAFF].issue_token(name, role, secret, expires_at=now + timedelta(days=1), at=now)
    return {"Authorization": f"Bearer {secret}"}


async def seed_records(
    http: aiohttp.ClientSession,
    base: str,
    app: web.Application,
    admin: dict[str, str],
    supervisor: dict[str, str],
) -> None:
    """A few records of each kind, so that small ids name something and the handlers run
    past their 404: agents logged in and ready (a call-back can be dialled, and answers
    503 with Asterisk away), residents, cases with a promised call-back each, ended calls
    with a message, a queued call-back and recordings in each state a player meets."""

    async def post(path: str, headers: dict[str, str], body: dict[str, Any]) -> None:
        async with http.post(f"{base}{path}", json=body, headers=headers) as resp:
            if resp.status not in (200, 201):
                raise BenchError(f"seeding POST {path}: HTTP {resp.status}: {await resp.text()}")

    for n, extension in enumerate(("1001", "1002", "1003"), start=1):
        agent = {"name": f"坐席{extension}", "endpoint": f"PJSIP/{extension}", "skills": {}}
        await post("/api/agents", admin, agent)
        for action in ("log-in", "ready"):
            await post(f"/api/agents/{n}/state", supervisor, {"action": action})
    await post("/api/rooms", supervisor, {"building": "3栋", "room": "201"})
    for name, phone in (("王芳", "13800138000"), ("李强", "13900139000"), ("张伟", "02088886666")):
        body = {"name": name, "building": "3栋", "room": "201", "phones": [phone]}
        await post("/api/residents", supervisor, body)
    for n, kind in enumerate(("inquiry", "repair", "complaint"), start=1):
        case = {"kind": kind, "channel": "walk-in", "summary": f"fuzz {kind}", "resident_id": n}
        case["phone"] = "13800138000"
        await post("/api/cases", supervisor, case)
        await post(f"/api/cases/{n}/callbacks", supervisor, {"version": 1})
    now = app[CLOCK].now()
    started = now - timedelta(minutes=5)
    calls = app[CALL_LOG]
    for n in range(len(SEEDED_IDS)):
        call_id = await calls.open_call(
            channel_id=f"fuzz-{uuid.uuid4().hex[:8]}",
            caller_number="13800138000",
            caller_name=None,
            dialled_number="400",
            started_at=started + timedelta(seconds=n),
        )
        ended = started + timedelta(minutes=1)
        await calls.close_call(call_id, ended_at=ended, reason="caller-hangup")
        await app[MESSAGES].leave(
            call_id=call_id,
            queue="repair",
            reason=MessageReason.NO_AGENTS,
            recording=None,
            duration_s=None,
            at=ended,
        )
    await app[ACD].callbacks.request(
        call_id=1,
        queue="repair",
        number="13800138000",
        place_at=started,
        at=started,
        expires_at=now + timedelta(days=1),
    )
    recordings = app[RECORDINGS]
    # Still recording; stored but its file gone from the store; deleted by retention.
    for role in ("mixed", "resident", "agent"):
        await recordings.started(
            call_id=1, role=role, asterisk_name=f"fuzz-{role}", fmt="wav", at=started
        )
    missing = StoredAudio("gone.wav", 44, 0.0, 8000, "0" * 64)
    await recordings.stored(2, missing, at=now)
    await recordings.stored(3, missing, at=now)
    await recordings.purged(3, at=now)


@contextlib.asynccontextmanager
async def running_service(config: Config) -> AsyncIterator[tuple[web.Application, str]]:
    app = build_app(config)
    runner = web.AppRunner(app)
    port = free_port()
    await runner.setup()  # migrations, the staff directory
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        yield app, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


class ErrorLines(logging.Handler):
    """The service's ERROR log lines during the run (a 500's traceback among them)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name}: {record.getMessage()[:200]}")


@dataclasses.dataclass
class Result:
    backend: str
    tallies: list[Tally]
    wall_s: float
    error_lines: list[str]

    @property
    def failed(self) -> int:
        return sum(t.failed for t in self.tallies)


async def fuzz_service(plan: Plan, postgres: str | None = None) -> Result:
    """The whole run: the service up, records seeded, both passes, the service down."""
    started = time.monotonic()
    errors = ErrorLines()
    logging.getLogger().addHandler(errors)
    # Asterisk is away on purpose: its reconnect warnings say nothing about the API.
    ari_log = logging.getLogger("telephony.ari")
    ari_level = ari_log.level
    ari_log.setLevel(logging.ERROR)
    signed = Tally("with credentials", CHECKS)
    anonymous = Tally("without credentials", ANONYMOUS_CHECKS)
    try:
        with tempfile.TemporaryDirectory(prefix="hotline-fuzz-") as folder:
            async with (
                fresh_database(Path(folder), postgres) as url,
                running_service(service_config(Path(folder), url)) as (app, base),
                aiohttp.ClientSession() as http,
            ):
                admin = await issue_token(app, "fuzz-admin", Role.ADMIN)
                supervisor = await issue_token(app, "fuzz-supervisor", Role.SUPERVISOR)
                await seed_records(http, base, app, admin, supervisor)
                async with http.get(f"{base}/api/openapi.json", headers=supervisor) as resp:
                    if resp.status != 200:
                        raise BenchError(f"GET /api/openapi.json: HTTP {resp.status}")
                    schema = load_schema(await resp.json())
                who = credentials_for(supervisor, admin)
                await asyncio.to_thread(fuzz, schema, base, plan, signed, who)
                # Refused before anything is parsed: valid requests say all there is to say.
                unsigned = dataclasses.replace(plan, modes=(GenerationMode.POSITIVE,))
                await asyncio.to_thread(fuzz, schema, base, unsigned, anonymous, None)
    finally:
        logging.getLogger().removeHandler(errors)
        ari_log.setLevel(ari_level)
    backend = "postgresql" if postgres else "sqlite"
    return Result(backend, [signed, anonymous], time.monotonic() - started, errors.lines)


def report(plan: Plan, result: Result) -> None:
    modes = " and ".join(str(m.value) for m in plan.modes)
    print(
        f"api fuzz on {result.backend}: {plan.examples} examples per operation and mode "
        f"({modes}; without credentials positive only), seed {plan.seed}; Python "
        f"{platform.python_version()}, schemathesis {schemathesis.__version__}, "
        f"{os.cpu_count()} cores"
    )
    for tally in result.tallies:
        statuses = ", ".join(f"{s}: {n}" for s, n in sorted(tally.statuses.items()))
        print(
            f"  {tally.label}: {tally.operations} operations, {tally.requests} requests "
            f"(by status {statuses})"
        )
        names = [c.__name__ for c in tally.checks]
        names += sorted(set(tally.failures) - set(names))
        print("    failures: " + ", ".join(f"{n} {tally.failures[n]}" for n in names))
        for (check, operation, _), example in sorted(tally.examples.items()):
            print(f"    FAIL {check} {operation}: {example}")
    if result.error_lines:
        print(f"  service ERROR log lines: {len(result.error_lines)}")
        for line in result.error_lines[:10]:
            print(f"    {line}")
    verdict = f"FAILED ({result.failed} failures)" if result.failed else "no failures"
    print(f"wall time {result.wall_s:.1f} s; {verdict}")


def parse_args(argv: Sequence[str] | None) -> tuple[Plan, str | None]:
    parser = argparse.ArgumentParser(
        description="A bounded schemathesis run against the service's own OpenAPI document."
    )
    parser.add_argument(
        "--examples",
        type=int,
        help=f"requests per operation and generation mode (default {DEFAULT_EXAMPLES})",
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_EXAMPLES} examples (the test suite's run)"
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help=f"Hypothesis' seed (default {DEFAULT_SEED})"
    )
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="run on a fresh database of this PostgreSQL server (the role needs CREATEDB)",
    )
    args = parser.parse_args(argv)
    examples = args.examples or (QUICK_EXAMPLES if args.quick else DEFAULT_EXAMPLES)
    if examples < 1:
        parser.error("--examples must be at least 1")
    return Plan(examples=examples, seed=args.seed), args.postgres


def main(argv: Sequence[str] | None = None) -> int:
    plan, postgres = parse_args(argv)
    try:
        result = asyncio.run(fuzz_service(plan, postgres))
    except BenchError as err:
        print(f"api fuzz: {err}", file=sys.stderr)
        return 2
    report(plan, result)
    return 1 if result.failed else 0


if __name__ == "__main__":
    sys.exit(main())
