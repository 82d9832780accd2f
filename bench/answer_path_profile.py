"""Where the hotline's answer latency goes: a diagnostic for answer_latency.py's results.

answer_latency.py says how long Asterisk waits for our answer; this says why. It runs
the real service (``build_app``, as ``hotline serve`` does) in a subprocess whose methods
are wrapped in place, in that process only, to timestamp each step of the answer path:
StasisStart received, the call record written (``CallLog.open_call``, SQLite through
aiosqlite), the ``POST /channels/{id}/answer`` request. Wall-clock times compare with
Asterisk's event timestamps because both run on this host's clock. The project's code is
not changed; variant ``answer-first`` only reorders the session's first two steps
(answer, then write the record) to show what writing the record first costs, and
``ari-floor`` replaces the service by an application that only answers, to show what
answering through ARI costs at all on this machine.

    .venv/bin/python bench/answer_path_profile.py [--calls 100] [--rate R] [--cprofile]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import os
import pstats
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from answer_latency import (
    HOTLINE,
    HOTLINE_ENDPOINT,
    SANDBOX,
    BenchError,
    Observer,
    Trace,
    disturbed,
    free_port,
    hang_up_ours,
    hotline_service,
    log_problems,
    percentile,
    require_loopback,
    run_calls,
    run_step,
    sandbox_lock,
    settle,
    subscribe_all_stream,
)

from telephony.ari import AriClient, AriError, EventStream
from telephony.config import Config, load_config
from telephony.exceptions import HotlineError

VARIANTS = ("as-is", "answer-first", "ari-floor")


# -- the instrumented service (runs in the subprocess) ----------------------------------
def serve(variant: str, trace_path: Path, profile_path: Path | None) -> int:
    """Run the service with timing wrappers; write the timings when it stops."""
    from aiohttp import web

    from crm.calls import CallLog
    from telephony.ari.events import Event, StasisStart
    from telephony.logs import setup_logging
    from telephony.session import CallSession
    from telephony.stasis import StasisApp
    from web.app import build_app

    times: dict[str, dict[str, float]] = defaultdict(dict)
    lags: list[float] = []

    on_event = StasisApp.on_event

    def timed_on_event(self: StasisApp, event: Event) -> None:
        if isinstance(event, StasisStart) and event.timestamp is not None:
            t = times[event.channel.id]
            t["received"] = time.time()
            t["stasis"] = event.timestamp.timestamp()
        on_event(self, event)

    open_call = CallLog.open_call

    async def timed_open_call(self: CallLog, **kw: Any) -> int:
        t = times[kw["channel_id"]]
        t["open_start"] = time.time()
        try:
            return await open_call(self, **kw)
        finally:
            t["open_end"] = time.time()

    answer = AriClient.answer

    async def timed_answer(self: AriClient, channel_id: str) -> None:
        t = times[channel_id]
        first = "answer_start" not in t
        if first:
            t["answer_start"] = time.time()
        await answer(self, channel_id)
        if first:
            t["answer_end"] = time.time()

    script = CallSession._script

    async def answer_first(self: CallSession) -> None:
        if not self.adopted:
            await self.deps.ari.answer(self.channel.id)
        await script(self)  # answers again: a no-op on an Up channel

    StasisApp.on_event = timed_on_event  # type: ignore[method-assign]
    CallLog.open_call = timed_open_call  # type: ignore[method-assign]
    AriClient.answer = timed_answer  # type: ignore[method-assign]
    if variant == "answer-first":
        CallSession._script = answer_first  # type: ignore[method-assign]

    async def lag_monitor(app: web.Application) -> Any:
        async def watch() -> None:
            loop = asyncio.get_running_loop()
            while True:
                before = loop.time()
                await asyncio.sleep(0.005)
                lags.append((loop.time() - before - 0.005) * 1000)

        task = asyncio.create_task(watch())
        yield
        task.cancel()

    setup_logging()
    config = load_config()
    app = build_app(config)
    app.cleanup_ctx.append(lag_monitor)
    profiler = cProfile.Profile() if profile_path else None
    if profiler:
        profiler.enable()
    try:
        web.run_app(app, host=config.http.host, port=config.http.port, print=None)
    finally:
        if profiler and profile_path:
            profiler.disable()
            profiler.dump_stats(profile_path)
        trace_path.write_text(json.dumps({"calls": times, "lag_ms": lags}))
    return 0


def serve_floor(trace_path: Path) -> int:
    """The least an ARI application can do: answer on StasisStart, nothing else.

    It takes the ``hotline`` application name (the driver holds the sandbox lock and our
    service is not running) so calls take the very dialplan path the service's calls take;
    the difference between this and the baseline is what answering through ARI costs.
    """
    from aiohttp import web

    from telephony.ari.events import Event, StasisStart

    config = load_config()
    times: dict[str, dict[str, float]] = defaultdict(dict)
    stream_key: web.AppKey[EventStream] = web.AppKey("stream", EventStream)

    async def lifecycle(app: web.Application) -> Any:
        async with aiohttp.ClientSession() as http:
            ari = AriClient(http, config.ari.url, config.ari.user, config.ari.password)
            pending: set[asyncio.Task[None]] = set()

            async def answer(channel_id: str) -> None:
                t = times[channel_id]
                t["open_start"] = t["open_end"] = t["answer_start"] = time.time()
                with contextlib.suppress(AriError):
                    await ari.answer(channel_id)
                t["answer_end"] = time.time()

            def on_event(event: Event) -> None:
                if isinstance(event, StasisStart) and event.timestamp is not None:
                    t = times[event.channel.id]
                    t["received"] = time.time()
                    t["stasis"] = event.timestamp.timestamp()
                    task = asyncio.create_task(answer(event.channel.id))
                    pending.add(task)
                    task.add_done_callback(pending.discard)

            async def connected() -> None:
                return None

            stream = EventStream(
                http,
                config.ari.url,
                config.ari.user,
                config.ari.password,
                [config.ari.app],
                on_event=on_event,
                on_connect=connected,
            )
            app[stream_key] = stream
            reader = asyncio.create_task(stream.run())
            yield
            reader.cancel()

    async def healthz(request: web.Request) -> web.Response:
        up = request.app[stream_key].status.connected
        return web.json_response({"live_calls": 0}, status=200 if up else 503)

    app = web.Application()
    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/healthz", healthz)
    try:
        web.run_app(app, host="127.0.0.1", port=config.http.port, print=None)
    finally:
        trace_path.write_text(json.dumps({"calls": times, "lag_ms": []}))
    return 0


# -- the driver -------------------------------------------------------------------------
def _pcts(values: list[float]) -> str:
    if not values:
        return f"{'-':>7}{'-':>7}{'-':>7}"
    v = sorted(values)
    return f"{percentile(v, 50):>7.1f}{percentile(v, 90):>7.1f}{percentile(v, 99):>7.1f}"


def breakdown(traces: Sequence[Trace], calls: dict[str, dict[str, float]]) -> None:
    steps: dict[str, list[float]] = defaultdict(list)
    for tr in traces:
        t = calls.get(tr.answer_leg)
        if tr.error or not t or tr.created is None or tr.up_at is None:
            continue
        created, up = tr.created.timestamp(), tr.up_at.timestamp()
        keys = ("stasis", "received", "open_start", "open_end", "answer_start", "answer_end")
        if not all(k in t for k in keys):
            continue

        def ms(a: float, b: float) -> float:
            return (b - a) * 1000

        steps["creation → StasisStart (Asterisk)"].append(ms(created, t["stasis"]))
        steps["StasisStart → event received"].append(ms(t["stasis"], t["received"]))
        steps["received → open_call starts"].append(ms(t["received"], t["open_start"]))
        steps["open_call (INSERT, SQLite)"].append(ms(t["open_start"], t["open_end"]))
        steps["received → answer request sent"].append(ms(t["received"], t["answer_start"]))
        steps["answer request (HTTP round trip)"].append(ms(t["answer_start"], t["answer_end"]))
        steps["answer request sent → Up (Asterisk)"].append(ms(t["answer_start"], up))
        steps["creation → Up (total)"].append(ms(created, up))
    print(f"  {'step (ms)':<40}{'p50':>7}{'p90':>7}{'p99':>7}")
    for name, values in steps.items():
        print(f"  {name:<40}{_pcts(values)}")


async def drive(args: argparse.Namespace) -> None:
    config = load_config()
    require_loopback(config.ari.url)
    observer = Observer()
    connector = aiohttp.TCPConnector(limit=20)
    async with aiohttp.ClientSession(connector=connector) as http:
        ari = AriClient(http, config.ari.url, config.ari.user, config.ari.password)
        try:
            info = await ari.asterisk_info()
        except AriError as err:
            raise BenchError(f"ARI unavailable at {config.ari.url}: {err}") from err
        try:
            await profile_variants(ari, http, config, observer, args)
        finally:
            await hang_up_ours(ari)
        if warning := disturbed(info, await ari.asterisk_info()):
            print(f"WARNING: {warning}; figures of this run are not representative")


async def profile_variants(
    ari: AriClient,
    http: aiohttp.ClientSession,
    config: Config,
    observer: Observer,
    args: argparse.Namespace,
) -> None:
    async with subscribe_all_stream(http, config, observer):
        for variant in args.variants:
            with tempfile.TemporaryDirectory(prefix="hotline-profile-") as tmp:
                trace_path, prof_path = Path(tmp) / "trace.json", Path(tmp) / "service.prof"
                argv = [sys.executable, __file__, "serve", "--variant", variant]
                if args.cprofile:
                    argv += ["--profile-file", str(prof_path)]
                env = {"BENCH_TRACE_FILE": str(trace_path)}
                async with hotline_service(http, Path(tmp), free_port(), argv, env) as base:
                    await run_calls(ari, observer, HOTLINE_ENDPOINT, calls=5, rate=5.0, hold_s=0.2)
                    await settle(ari, http, base)
                    traces = await run_calls(
                        ari,
                        observer,
                        HOTLINE_ENDPOINT,
                        calls=args.calls,
                        rate=args.rate,
                        hold_s=args.hold,
                    )
                    await settle(ari, http, base)
                data = json.loads(trace_path.read_text())
                problems = log_problems(Path(tmp) / "service.log")
                if args.save_logs:
                    args.save_logs.mkdir(parents=True, exist_ok=True)
                    shutil.copy(Path(tmp) / "service.log", args.save_logs / f"{variant}.log")
                how = f"at {args.rate:g}/s" if args.rate else "at once"
                failed = sum(1 for t in traces if t.error)
                print(
                    f"\n{time.strftime('%H:%M:%S')} variant {variant}: "
                    f"{args.calls} calls {how}, {failed} failed"
                )
                for kind, problems in (
                    ("not answered", [t.error for t in traces if t.error]),
                    ("hang-up trouble", [t.teardown_error for t in traces if t.teardown_error]),
                ):
                    if problems:
                        print(f"  {kind}: {len(problems)} call(s), e.g. {sorted(problems)[0]}")
                for line in problems:
                    print(f"  service log: {line}")
                if variant == "ari-floor":
                    print("  (no call record: the open_call rows are zero by construction)")
                breakdown(traces, data["calls"])
                lags = data["lag_ms"]
                if lags:
                    print(
                        f"  service event-loop lag (5 ms probe): p99 "
                        f"{percentile(sorted(lags), 99):.1f} ms, max {max(lags):.1f} ms, "
                        f"mean {statistics.fmean(lags):.2f} ms"
                    )
                if args.cprofile and prof_path.exists():
                    print("  service cProfile, top 25 by own time (whole run incl. warm-up):")
                    stats = pstats.Stats(str(prof_path))
                    stats.sort_stats("tottime").print_stats(25)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="mode")
    srv = sub.add_parser("serve", help="(internal) the instrumented service")
    srv.add_argument("--variant", choices=VARIANTS, default="as-is")
    srv.add_argument("--profile-file", type=Path)
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--rate", type=float, help="arrivals per second (default: all at once)")
    parser.add_argument("--hold", type=float, default=0.5)
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--save-logs", type=Path, help="copy each variant's service log here")
    parser.add_argument("--cprofile", action="store_true", help="print the service's profile")
    args = parser.parse_args(argv)
    if args.mode == "serve" and args.variant == "ari-floor":
        return serve_floor(Path(os.environ["BENCH_TRACE_FILE"]))
    if args.mode == "serve":
        return serve(args.variant, Path(os.environ["BENCH_TRACE_FILE"]), args.profile_file)
    try:
        with sandbox_lock(900):
            run_step("hotline prompts build", [str(HOTLINE), "prompts", "build"], 300)
            run_step("asterisk-sandbox up", [str(SANDBOX), "up"], 900)
            asyncio.run(drive(args))
    except (BenchError, HotlineError) as err:
        print(f"profile: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
