"""The ``hotline`` command: serve, simulate a call, prompts, models, transcribe, sandbox."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from crm.residents_cli import add_residents_parser, run_residents
from crm.staff_cli import COMMANDS as STAFF_COMMANDS
from crm.staff_cli import add_staff_parsers, run_staff
from telephony.ari import AriClient, listening
from telephony.config import Config, load_config
from telephony.exceptions import HotlineError
from telephony.logs import setup_logging
from telephony.recording.models_cli import add_models_parser, run_models
from telephony.recording.transcribe_cli import add_transcribe_parser, run_transcribe
from telephony.simulator import (
    AgentBehaviour,
    AgentSimulator,
    Dtmf,
    HangUp,
    Play,
    ResidentSimulator,
    Step,
    Wait,
)
from web.app import build_app, prompt_library

PROJECT = Path(__file__).resolve().parent.parent


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hotline", description="Resident hotline (物业客服热线)")
    parser.add_argument("--config", type=Path, help="TOML file (default config/hotline.toml)")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the ARI application and the HTTP API")
    call = sub.add_parser("call", help="place a simulated resident's call into the hotline")
    call.add_argument("--caller", default="13800138000", help="caller number ('' for none)")
    call.add_argument("--name", default="模拟居民", help="caller name")
    call.add_argument(
        "--digits", default="2,1", help="comma-separated key presses, each after --pause seconds"
    )
    call.add_argument("--pause", type=float, default=2.0, help="seconds before each key press")
    call.add_argument(
        "--hold", type=float, default=5.0, help="seconds to stay on after the last key"
    )
    call.add_argument("--api", default=None, help="service URL to print the call record from")
    call.add_argument(
        "--say",
        default=None,
        metavar="MEDIA",
        help="what the resident says after the keys (e.g. sound:hotline/repair)",
    )
    call.add_argument(
        "--agent-says",
        default=None,
        metavar="MEDIA",
        help="what the simulated agent says on answering (with --agent)",
    )
    call.add_argument(
        "--agent",
        default=None,
        metavar="EXT",
        help="also run a simulated agent's phone (Local/EXT@sim-agents), logged in and ready "
        "for every queue through --api, answering after 1 s and talking 5 s",
    )
    prompts = sub.add_parser("prompts", help="prompt audio")
    prompts.add_argument("action", choices=["build"])
    add_models_parser(sub)
    add_transcribe_parser(sub)
    add_residents_parser(sub)
    add_staff_parsers(sub)
    sandbox = sub.add_parser("asterisk", help="the Asterisk sandbox (scripts/asterisk-sandbox)")
    sandbox.add_argument("action", choices=["up", "down", "status", "restart", "cli", "root"])
    sandbox.add_argument("rest", nargs="*")
    args = parser.parse_args(argv)
    setup_logging(verbose=args.verbose)

    if args.command == "asterisk":
        script = PROJECT / "scripts" / "asterisk-sandbox"
        os.execv(str(script), [str(script), args.action, *args.rest])
    try:
        config = load_config(args.config)
        if args.command == "serve":
            web.run_app(build_app(config), host=config.http.host, port=config.http.port, print=None)
        elif args.command == "prompts":
            rendered = asyncio.run(prompt_library(config).build())
            print(f"prompts: {len(rendered)} rendered into {config.prompts.dir}")
        elif args.command == "call":
            return asyncio.run(_simulate_call(config, args))
        elif args.command == "models":
            t = config.transcription
            return run_models(args, t.model, t.language)
        elif args.command == "transcribe":
            return run_transcribe(args, config)
        elif args.command == "residents":
            return run_residents(args, config)
        elif args.command in STAFF_COMMANDS:
            return run_staff(args, config)
    except HotlineError as err:
        print(f"hotline: {err}", file=sys.stderr)
        return 2
    return 0


async def _simulate_call(config: Config, args: argparse.Namespace) -> int:
    steps: list[Step] = []
    for digit in [d.strip() for d in args.digits.split(",") if d.strip()]:
        steps += [Wait(args.pause), Dtmf(digit)]
    if args.say:
        steps += [Wait(args.pause + 1.5), Play(args.say)]
    steps += [Wait(args.hold), HangUp()]
    if args.agent and not args.api:
        print("--agent needs --api", file=sys.stderr)
        return 2
    caller_id = f'"{args.name}" <{args.caller}>' if args.caller else None
    started = datetime.now(UTC)
    a = config.ari
    async with contextlib.AsyncExitStack() as stack:
        http = await stack.enter_async_context(aiohttp.ClientSession())
        # The service's API is for signed-in staff: a supervisor's token (hotline token
        # create NAME --role supervisor) reads calls, cases and transcripts; adding the
        # simulated agent is an admin's act (HOTLINE_ADMIN_TOKEN, only when it is new).
        api_http = await stack.enter_async_context(
            aiohttp.ClientSession(headers=_bearer(os.environ.get("HOTLINE_API_TOKEN")))
        )
        ari = AriClient(http, a.url, a.user, a.password)
        sim = ResidentSimulator(ari, f"hotline-sim-{uuid.uuid4().hex[:6]}")
        await stack.enter_async_context(
            listening(http, a.url, a.user, a.password, sim.app, sim.on_event)
        )
        if args.agent:
            # The agent's phone is simulated; their console is the HTTP API.
            phones = AgentSimulator(ari)
            phones.behaviour[args.agent] = AgentBehaviour(
                answer_after_s=1.0, talk_s=None if args.say else 5.0, play=args.agent_says
            )
            await stack.enter_async_context(
                listening(http, a.url, a.user, a.password, phones.app, phones.on_event)
            )
            await _log_in_agent(api_http, config, args.api, args.agent)
        call = await sim.dial(caller_id)
        print(
            f"calling {sim.endpoint} as {caller_id or 'no caller id'}; "
            f"hotline channel {call.hotline_leg}"
        )
        await sim.run(call, steps)
        print("call ended")
        if args.api:
            record = await _closed_record(api_http, args.api, call.hotline_leg, since=started)
            if record is None:
                print("no closed call record found for this call", file=sys.stderr)
                return 1
            print(json.dumps(record, ensure_ascii=False, indent=2))
            await _print_case(api_http, args.api, record["id"])
            if record.get("answered_at") and record.get("queue"):
                await _print_transcript(api_http, args.api, record["id"])
    return 0


def _bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


async def _print_case(http: aiohttp.ClientSession, api: str, call_id: int) -> None:
    """The case the call opened or joined, as the agent sees it: owner, deadlines, urgency."""
    for _ in range(100):  # the case is made just after the call record closes
        async with http.get(f"{api}/api/cases", params={"limit": "20"}) as resp:
            found = [
                c
                for c in (await resp.json())["items"]
                if call_id in [link["call_id"] for link in c["calls"]]
            ]
        if found:
            break
        await asyncio.sleep(0.1)
    else:
        print(f"case: none found for call {call_id}")
        return
    case = found[0]
    print(
        f"case {case['id']}: {case['kind_label']} ({case['kind']}) {case['status']}, "
        f"owner agent {case['owner_agent_id']}, resident {case['resident_id']}, "
        f"{case['summary']}"
    )
    if case["repair"]:
        r = case["repair"]
        print(f"  work order: {r['repair_class']} (suggested: {r['suggested_because']})")
    for d in case["deadlines"]:
        print(f"  deadline {d['label']} ({d['rule']}) due {d['due_at']}")
    for c in case["callbacks"]:
        print(f"  call-back ({c['reason']}) due {c['due_at']}")


async def _print_transcript(http: aiohttp.ClientSession, api: str, call_id: int) -> None:
    """Wait (at most 90 s) for the call's transcript and print it as a supervisor reads it."""
    status = None
    for _ in range(900):
        async with http.get(f"{api}/api/calls/{call_id}/transcript") as resp:
            job = (await resp.json())["job"]
        status = job and job["status"]
        if status in ("done", "failed"):
            break
        await asyncio.sleep(0.1)
    async with http.get(f"{api}/api/calls/{call_id}/recordings") as resp:
        for r in (await resp.json())["items"]:
            print(f"recording {r['role']:8} {r['status']:7} {r['duration_s']} s  {r['path']}")
    if status != "done":
        print(f"transcript: {status or 'not queued'}" + (f" ({job['error']})" if job else ""))
        return
    async with http.get(f"{api}/api/calls/{call_id}/transcript?format=text") as resp:
        print("transcript:\n" + await resp.text())


async def _log_in_agent(http: aiohttp.ClientSession, config: Config, api: str, ext: str) -> None:
    """A simulated agent for every queue, logged in and ready (made once, then reused)."""
    endpoint = AgentSimulator.endpoint(ext)
    body = {
        "name": f"模拟坐席{ext}",
        "endpoint": endpoint,
        "skills": {name: 5 for name in config.queues},
    }
    async with http.get(f"{api}/api/agents") as resp:
        if resp.status == 401:
            raise HotlineError("the service wants a token: set HOTLINE_API_TOKEN")
        agents = (await resp.json())["items"]
    known = [a["id"] for a in agents if a["endpoint"] == endpoint]
    if known:  # made by an earlier demo
        agent_id = known[0]
    else:
        admin = _bearer(os.environ.get("HOTLINE_ADMIN_TOKEN"))
        async with http.post(f"{api}/api/agents", json=body, headers=admin) as resp:
            created = await resp.json()
            if resp.status != 201:
                raise HotlineError(
                    f"cannot add agent {endpoint} ({created.get('message')}): adding an "
                    "agent is an admin's act (HOTLINE_ADMIN_TOKEN)"
                )
        agent_id = created["id"]
    for action in ("log-in", "ready"):
        async with http.post(f"{api}/api/agents/{agent_id}/state", json={"action": action}):
            pass  # 409 when already in that state is fine
    print(f"agent {ext} ({endpoint}) logged in and ready")


async def _closed_record(
    http: aiohttp.ClientSession, api: str, channel_id: str, *, since: datetime
) -> dict[str, Any] | None:
    """Poll the service's API until the record of this call is closed (at most 10 s)."""
    for _ in range(100):
        async with http.get(
            f"{api}/api/calls", params={"since": since.isoformat(), "limit": "500"}
        ) as resp:
            items = (await resp.json())["items"]
        mine = [c for c in items if c["channel_id"] == channel_id and c["ended_at"]]
        if mine:
            async with http.get(f"{api}/api/calls/{mine[0]['id']}") as resp:
                return dict(await resp.json())
        await asyncio.sleep(0.1)
    return None


if __name__ == "__main__":
    logging.captureWarnings(True)
    sys.exit(main())
