"""No unit of work opens another while it holds a connection, and a wait for one is short.

On SQLite the service has one connection: a repository method that calls another (or
opens a second session) from inside ``async with self._transaction(...)`` waits for the
connection its own caller holds, until the pool gives up, and every call, request and
loop of the service waits behind it. Two checks keep that out:

- dynamically, the repository tests run on ``one_connection_engine`` (one connection on
  both backends, a short wait) and conftest's ``pool_waits`` fails any test in which a
  unit of work found no free connection;
- statically, below: inside a transaction every awaited call goes through the session
  (or something made from it), so even a path no test takes cannot nest.
"""

from __future__ import annotations

import ast
import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm.calls import CallLog
from crm.db import create_engine, make_sessionmaker
from crm.exceptions import StorageError
from crm.repository import Repository

ROOT = Path(__file__).resolve().parents[1]
# Parameters of these types are a unit of work's session, or made from it.
SESSION_TYPES = {"AsyncSession", "CaseChange"}


def _root(node: ast.AST) -> str | None:
    while isinstance(node, ast.Attribute | ast.Subscript | ast.Call | ast.Starred):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _is_session(node: ast.AST, roots: set[str]) -> bool:
    """``node`` is the session itself, or what was made from it (``change.session`` too)."""
    if isinstance(node, ast.Name):
        return node.id in roots
    return isinstance(node, ast.Attribute) and node.attr == "session" and _root(node) in roots


def _through(call: ast.AST, roots: set[str]) -> bool:
    """A call on the session (or what was made from it), or one that is handed it."""
    if not isinstance(call, ast.Call):
        return False
    handed = [*call.args, *(k.value for k in call.keywords)]
    return _root(call.func) in roots or any(_is_session(arg, roots) for arg in handed)


def _names(target: ast.AST | None) -> set[str]:
    if target is None:
        return set()
    return {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}


def _opens_work(node: ast.AST) -> bool:
    if not isinstance(node, ast.AsyncWith):
        return False
    opened = [ast.unparse(i.context_expr) for i in node.items]
    return any("_transaction(" in text or "_sessions(" in text for text in opened)


def _outside_work(body: list[ast.stmt], roots: set[str]) -> Iterator[ast.AST]:
    """What in ``body`` waits on anything but ``roots`` (the session and its products),
    or opens a unit of work of its own."""
    roots = set(roots)
    for statement in body:
        for node in ast.walk(statement):
            if _opens_work(node):
                assert isinstance(node, ast.AsyncWith)
                yield node
                roots |= {name for i in node.items for name in _names(i.optional_vars)}
            elif isinstance(node, ast.AsyncWith | ast.AsyncFor):
                entered = [i.context_expr for i in getattr(node, "items", [])]
                entered += [node.iter] if isinstance(node, ast.AsyncFor) else []
                if not all(_through(e, roots) or _root(e) in roots for e in entered):
                    yield node
            elif isinstance(node, ast.Await) and not _through(node.value, roots):
                yield node
            value = getattr(node, "value", None)
            if isinstance(value, ast.Await):
                value = value.value
            if isinstance(node, ast.Assign | ast.AnnAssign) and _through(value, roots):
                # change = await begin_change(session, …): made from the session
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                roots |= {name for t in targets for name in _names(t)}


def _parse(source: str) -> ast.Module:
    """``ast.parse`` with the garbage collector held off.

    Earlier tests leave asyncio tasks for the collector; a finalizer that runs inside
    CPython 3.11's AST constructor (and logs "Task was destroyed") upsets its recursion
    counter: ``SystemError: AST constructor recursion depth mismatch`` (seen on a fresh
    clone). With the collector off, no finalizer runs inside the parse.
    """
    gc.disable()
    try:
        return ast.parse(source)
    finally:
        gc.enable()


def nested_units_of_work(source: str, name: str) -> list[str]:
    """Where ``source`` waits on something else while a unit of work is open, by line."""
    found: list[str] = []
    tree = _parse(source)
    for node in ast.walk(tree):
        if _opens_work(node):
            assert isinstance(node, ast.AsyncWith)
            roots = {
                n.id
                for i in node.items
                if i.optional_vars is not None
                for n in ast.walk(i.optional_vars)
                if isinstance(n, ast.Name)
            }
            where = ast.unparse(node.items[0].context_expr)
            found += [
                f"{name}:{inner.lineno}: {ast.unparse(inner)[:90]} inside {where}"
                for inner in _outside_work(node.body, roots)
            ]
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            # A helper given the session runs inside its caller's unit of work.
            params = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
            roots = {
                p.arg
                for p in params
                if p.annotation is not None and _root(p.annotation) in SESSION_TYPES
            }
            if roots:
                found += [
                    f"{name}:{inner.lineno}: {ast.unparse(inner)[:90]} in {node.name}, "
                    "which runs inside a unit of work"
                    for inner in _outside_work(node.body, roots)
                ]
    return found


def test_no_unit_of_work_awaits_anything_but_its_own_session() -> None:
    """Every module of crm/ and telephony/: inside a transaction (and in helpers given its
    session), each await goes through that session; a repository call there would be a
    second unit of work waiting for the first one's connection."""
    found = [
        hit
        for path in sorted([*ROOT.glob("crm/**/*.py"), *ROOT.glob("telephony/**/*.py")])
        if "migrations" not in path.parts
        for hit in nested_units_of_work(
            path.read_text(encoding="utf-8"), str(path.relative_to(ROOT))
        )
    ]
    assert found == []


def test_the_check_sees_a_repository_call_inside_a_transaction() -> None:
    """The old requeue, and the shapes around it, are caught; reads in the session are not."""
    old_requeue = """
class Book(Repository):
    async def requeue(self, call_id):
        async with self._transaction("requeue") as session:
            if (await session.execute(statement)).scalar_one_or_none() is None:
                job = await self.job_for_call(call_id)
                raise Conflict(job.status)
        return await self.job_for_call(call_id)

    async def helper(self, change: CaseChange):
        await change.meet("x")
        await self.desk.cases.get(change.case.id)

    async def fine(self):
        async with self._transaction("fine") as session:
            row = await session.get(Job, 1)
            await load(session, row)
            await row_helper(row)
            async with self._transaction("inner") as other:
                await other.flush()
"""
    found = sorted(nested_units_of_work(old_requeue, "book.py"), key=lambda f: int(f.split(":")[1]))
    assert [line.split(":", 2)[1] for line in found] == ["6", "12", "19"], found
    assert "self.job_for_call(call_id)" in found[0]
    assert "self.desk.cases.get" in found[1]
    assert "self._transaction('inner')" in found[2]


# -- waiting for a connection: short, and said ------------------------------------------
class ConnectionHolder(Repository):
    """Fault injection: a unit of work that keeps its connection until told to let go."""

    async def hold(self, holding: asyncio.Event, release: asyncio.Event) -> None:
        async with self._transaction("held on purpose") as session:
            await session.execute(text("SELECT 1"))
            holding.set()
            await release.wait()


@pytest.fixture
async def one_connection(migrated_db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(migrated_db_url, pool_size=1, wait_s=0.5)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def test_a_unit_of_work_finding_no_connection_fails_fast_and_says_who_held_it(
    one_connection: async_sessionmaker[AsyncSession], pool_waits: list[logging.LogRecord]
) -> None:
    """With the connection held, the call log fails with StorageError (503
    storage-unavailable in the API) after the configured wait instead of queueing for a
    minute, and the log names it and the unit of work that was open; once the holder lets
    go, work goes on."""
    calls = CallLog(one_connection)
    holding, release = asyncio.Event(), asyncio.Event()
    held = asyncio.create_task(ConnectionHolder(one_connection).hold(holding, release))
    await holding.wait()
    try:
        with pytest.raises(StorageError, match="list failed"):
            await calls.list()
    finally:
        release.set()
        await held
    assert [r.getMessage().split(":")[0] for r in pool_waits] == ["list"]
    assert "open units of work: held on purpose" in pool_waits[0].getMessage()
    pool_waits.clear()  # expected here; anywhere else it fails the test
    assert await calls.list() == ([], 0)
