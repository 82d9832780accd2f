"""Search over transcripts at scale: p50/p95 of typical searches on SQLite and PostgreSQL.

Why this exists: supervisors search a year of calls for 漏水 or 3栋201 and want the page
at once; the target is p95 ≤ 200 ms at a million calls on both databases. A test cannot
hold a time budget without flaking, so this script measures and prints, with a ratio
against a baseline measured in the same run on the same data: the plain scan a search
would be without the index (``count(DISTINCT call_id) … WHERE text LIKE '%漏水%'`` over
every turn), timed a few times. The exit status only says whether the bench ran.

The data (seeded, made at run time): ``--calls`` calls (default 1 000 000; ``--quick``
20 000) over a year, newest last as the service writes them, in five queues, each
answered by one of 20 agents, with a transcript of 8-10 turns of property-hotline
Chinese: greeting, 栋/单元/房号, one fault (漏水 停电 电梯困人 下水道堵塞 门禁 …) or a fee
question (物业费 停车费), a name, a phone number, the promise of a technician. Rows are
bulk-inserted (executemany on SQLite, COPY on PostgreSQL), then the index is built with
``crm.search_index.rebuild`` (what migration 0007 runs), timed, and its size printed.

Each search goes through ``CallSearch.search`` (the service's own path: the index query,
the count, then the page's turns with their marks; 20 per page), ``--runs`` times
(default 20; quick 5), on a two-character word, a longer phrase and a room number, each
alone, with a 30-day window, and with a queue; plus one agent's calls. PostgreSQL runs
on the URL of ``scripts/test-postgres up`` (``--pg-url``) in a database of its own,
dropped at the end; SQLite in a temporary folder.

    .venv/bin/python bench/search.py --quick              # 20 000 calls (about a minute)
    .venv/bin/python bench/search.py                      # 1 000 000 calls
    .venv/bin/python bench/search.py --backends sqlite --calls 200000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from crm.db import create_engine, make_sessionmaker, migrate  # noqa: E402
from crm.search import CallSearch  # noqa: E402
from crm.search_index import rebuild  # noqa: E402

START = datetime(2025, 12, 1, tzinfo=UTC)
YEAR_S = 365 * 24 * 3600
QUEUES = ("repair", "repair", "repair", "inquiry", "complaint", "operator", "emergency")
AGENTS = 20
CHUNK = 20_000
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
FAULTS = (
    "卫生间漏水了，楼上一直在滴水",
    "厨房的水管漏水，地上都是水",
    "楼道里停电了，灯都不亮",
    "我们家突然停电了，电闸也跳了",
    "电梯困人了，里面有个老人",
    "电梯坏了，一直停在十二楼不动",
    "厨房下水道堵塞了，水下不去",
    "马桶堵塞了，冲不下去",
    "小区门禁刷卡没反应，进不去",
    "门禁卡丢了，想补办一张",
    "空调外机噪音很大，晚上睡不着",
    "楼下有人装修，声音太吵了",
)
FEES = (
    "想问一下物业费怎么交",
    "物业费可以在手机上交吗",
    "停车费这个月涨了吗",
    "停车费的发票去哪里开",
)
AGENT_LINES = (
    "好的，我们马上安排维修师傅过去",
    "好的，师傅两个小时之内到",
    "请您保持电话畅通，师傅到了会联系您",
    "这个费用可以在物业服务中心前台交",
)


@dataclass(frozen=True)
class Search:
    name: str
    q: str
    window: bool = False
    queue: str | None = None
    agent: int | None = None


SEARCHES = (
    Search("two characters 漏水", "漏水"),
    Search("  + 30-day window", "漏水", window=True),
    Search("  + queue repair", "漏水", queue="repair"),
    Search("phrase 下水道堵塞", "下水道堵塞"),
    Search("  + 30-day window", "下水道堵塞", window=True),
    Search("  + queue repair", "下水道堵塞", queue="repair"),
    Search("number 3栋201", "3栋201"),
    Search("  + 30-day window", "3栋201", window=True),
    Search("  + queue inquiry", "3栋201", queue="inquiry"),
    Search("漏水, one agent's calls", "漏水", agent=7),
)


def transcript(rng: random.Random) -> list[tuple[str, str]]:
    """One call's turns (speaker, text): realistic enough in words, numbers and length."""
    building, unit = rng.randint(1, 30), rng.randint(1, 6)
    room = rng.randint(1, 33) * 100 + rng.randint(1, 4)
    surname = rng.choice(SURNAMES)
    phone = f"1{rng.choice('3589')}{rng.randint(0, 999_999_999):09d}"
    matter = rng.choice(FAULTS) if rng.random() < 0.75 else rng.choice(FEES)
    return [
        ("agent", "您好，这里是物业服务中心，请问有什么可以帮您"),
        ("resident", f"你好，我是{building}栋{unit}单元{room}的，{matter}"),
        ("agent", "好的，请问您贵姓，联系电话是多少"),
        ("resident", f"我姓{surname}，电话{phone}"),
        ("agent", f"{surname}先生您好，您是{building}栋{room}对吧"),
        ("resident", "对的，麻烦快一点"),
        ("agent", rng.choice(AGENT_LINES)),
        ("resident", "好的谢谢"),
        *([("agent", "不客气，再见")] if rng.random() < 0.5 else []),
    ]


def calls(n: int, seed: int) -> Iterator[tuple[list[dict[str, Any]], list[tuple[Any, ...]]]]:
    """Chunks of (call rows, segment rows) in id order, started_at ascending."""
    rng = random.Random(seed)
    step = YEAR_S / max(n, 1)
    for low in range(1, n + 1, CHUNK):
        rows: list[dict[str, Any]] = []
        turns: list[tuple[Any, ...]] = []
        for call_id in range(low, min(low + CHUNK, n + 1)):
            at = START + timedelta(seconds=call_id * step)
            rows.append(
                {
                    "id": call_id,
                    "channel_id": f"bench-{call_id}",
                    "direction": "in",
                    "caller_number": f"138{call_id:08d}",
                    "started_at": at,
                    "queue": rng.choice(QUEUES),
                    "state": "ended",
                    "greeting_played": True,
                    "agent": 1 + call_id % AGENTS,
                }
            )
            for seq, (speaker, said) in enumerate(transcript(rng)):
                turns.append((call_id, seq, speaker, seq * 4000, seq * 4000 + 3500, said))
        yield rows, turns


async def load(engine: AsyncEngine, n: int, seed: int) -> float:
    """Insert the calls, their queue entries and turns in bulk; seconds taken."""
    started = time.perf_counter()
    async with engine.begin() as conn:
        now = START
        await conn.execute(
            text(
                "INSERT INTO agent (id, name, endpoint, state, state_since, created_at, active) "
                "VALUES (:id, :name, :endpoint, 'logged-out', :at, :at, true)"
            ),
            [
                {"id": i, "name": f"坐席{i}", "endpoint": f"PJSIP/{1000 + i}", "at": now}
                for i in range(1, AGENTS + 1)
            ],
        )
    for rows, turns in calls(n, seed):
        async with engine.begin() as conn:
            await _insert_chunk(conn, rows, turns)
    return time.perf_counter() - started


async def _insert_chunk(
    conn: AsyncConnection, rows: list[dict[str, Any]], turns: list[tuple[Any, ...]]
) -> None:
    keys: tuple[str, ...] = ("id", "channel_id", "direction", "caller_number", "started_at")
    keys += ("queue", "state", "greeting_played")
    call_rows = [tuple(r[k] for k in keys) for r in rows]
    entries = [
        (r["id"], r["id"], r["queue"], 0, r["started_at"], r["started_at"], r["agent"])
        for r in rows
    ]
    call_cols = list(keys)
    entry_cols = ["id", "call_id", "queue", "priority", "entered_at", "answered_at", "agent_id"]
    turn_cols = ["call_id", "seq", "speaker", "start_ms", "end_ms", "text"]
    raw = (await conn.get_raw_connection()).driver_connection
    if conn.dialect.name == "postgresql":
        assert raw is not None
        await raw.copy_records_to_table("call", records=call_rows, columns=call_cols)
        await raw.copy_records_to_table("queue_entry", records=entries, columns=entry_cols)
        await raw.copy_records_to_table("transcript_segment", records=turns, columns=turn_cols)
        return
    iso = [(*r[:4], r[4].isoformat(sep=" "), *r[5:]) for r in call_rows]
    entry_rows = [(*e[:4], e[4].isoformat(sep=" "), e[5].isoformat(sep=" "), e[6]) for e in entries]
    for table, cols, values in (
        ("call", call_cols, iso),
        ("queue_entry", entry_cols, entry_rows),
        ("transcript_segment", turn_cols, turns),
    ):
        marks = ", ".join("?" * len(cols))
        await conn.exec_driver_sql(
            f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})", values
        )


async def index_size(engine: AsyncEngine, path: Path | None) -> int:
    async with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            found = await conn.execute(text("SELECT pg_total_relation_size('search_call')"))
            return int(found.scalar() or 0)
        names = await conn.execute(
            text("SELECT name FROM sqlite_master WHERE name LIKE 'search_call%'")
        )
        total = 0
        for (name,) in names.all():
            try:
                pages = await conn.execute(
                    text("SELECT sum(pgsize) FROM dbstat WHERE name = :name"), {"name": name}
                )
                total += int(pages.scalar() or 0)
            except Exception:  # no dbstat compiled in: the file's growth stands in
                return -1
        return total


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def baseline(engine: AsyncEngine, runs: int) -> float:
    """The unindexed scan, median ms: every turn read to count the calls saying 漏水."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        async with engine.connect() as conn:
            await conn.execute(
                text(
                    "SELECT count(DISTINCT call_id) FROM transcript_segment "
                    "WHERE text LIKE '%漏水%'"
                )
            )
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def run_searches(engine: AsyncEngine, runs: int) -> list[tuple[str, float, float, str]]:
    search = CallSearch(make_sessionmaker(engine))
    middle = START + timedelta(days=180)
    results = []
    for s in SEARCHES:
        since, until = (middle, middle + timedelta(days=30)) if s.window else (None, None)
        times = []
        total = ""
        for _ in range(runs):
            started = time.perf_counter()
            page = await search.search(
                s.q,
                since=since,
                until=until,
                queue=s.queue,
                only_agent_id=s.agent,
                limit=20,
                offset=0,
            )
            times.append((time.perf_counter() - started) * 1000)
            total = f"{page.total}+" if page.total_more else str(page.total)
        results.append((s.name, percentile(times, 0.5), percentile(times, 0.95), total))
    return results


@asynccontextmanager
async def database(backend: str, pg_url: str | None) -> AsyncIterator[tuple[str, Path | None]]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="bench-search-") as folder:
            path = Path(folder) / "hotline.db"
            yield f"sqlite+aiosqlite:///{path}", path
        return
    assert pg_url is not None
    admin = create_async_engine(pg_url, isolation_level="AUTOCOMMIT")
    name = f"bench_search_{uuid.uuid4().hex[:8]}"
    try:
        async with admin.connect() as conn:
            await conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield make_url(pg_url).set(database=name).render_as_string(hide_password=False), None
        finally:
            async with admin.connect() as conn:
                await conn.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.dispose()


async def bench(backend: str, n: int, runs: int, seed: int, pg_url: str | None) -> None:
    async with database(backend, pg_url) as (url, path):
        await migrate(url)
        engine = create_engine(url)
        try:
            load_s = await load(engine, n, seed)
            before = path.stat().st_size if path else 0
            started = time.perf_counter()
            async with engine.begin() as conn:
                await conn.run_sync(rebuild)
                if backend == "postgresql":
                    await conn.exec_driver_sql("ANALYZE")
            build_s = time.perf_counter() - started
            size = await index_size(engine, path)
            if size < 0 and path is not None:
                size = path.stat().st_size - before
            print(
                f"\n{backend}: {n} calls loaded in {load_s:.1f} s; index built in "
                f"{build_s:.1f} s, {size / 2**20:.1f} MiB"
            )
            base = await baseline(engine, 3)
            results = await run_searches(engine, runs)
        finally:
            await engine.dispose()
    print(f"baseline: LIKE '%漏水%' over every turn, count of calls: median {base:.0f} ms")
    print(f"{'search':34} {'p50 ms':>8} {'p95 ms':>8} {'hits':>9} {'p50 / baseline':>15}")
    for name, p50, p95, total in results:
        print(f"{name:34} {p50:8.1f} {p95:8.1f} {total:>9} {p50 / base:15.3f}")
    worst = max(p95 for _, _, p95, _ in results)
    print(f"worst p95 {worst:.1f} ms (target ≤ 200 ms at 1 000 000 calls)")


def pg_from_script() -> str | None:
    script = ROOT / "scripts" / "test-postgres"
    try:
        done = subprocess.run([str(script), "up"], check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as err:
        print(f"PostgreSQL not available ({err}); skipping it", file=sys.stderr)
        return None
    return done.stdout.strip().splitlines()[-1]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="20 000 calls, 5 runs per search")
    parser.add_argument("--calls", type=int, help="calls to generate (default 1 000 000)")
    parser.add_argument("--runs", type=int, help="runs per search (default 20; quick 5)")
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated")
    parser.add_argument("--pg-url", default=os.environ.get("HOTLINE_BENCH_PG_URL"))
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args(argv)
    n = args.calls or (20_000 if args.quick else 1_000_000)
    runs = args.runs or (5 if args.quick else 20)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    print(f"search bench: {n} calls, {runs} runs per search, machine: {os.cpu_count()} cores")
    for backend in backends:
        pg_url = None
        if backend == "postgresql":
            pg_url = args.pg_url or pg_from_script()
            if pg_url is None:
                continue
        asyncio.run(bench(backend, n, runs, args.seed, pg_url))
    return 0


if __name__ == "__main__":
    sys.exit(main())
