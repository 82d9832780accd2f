"""A resident's SIP phone calls the hotline over the residents' trunk.

SIPp plays the phone (tests/sip/hotline_caller.xml): it sends an INVITE for 400 from
127.0.0.1 to Asterisk's UDP transport (config/asterisk/pjsip.conf, endpoint
residents-trunk), listens through the greeting, keys menu choices as RFC 4733 events
(a pcap written by tests/dtmf_pcap.py: sip-tester's stock files cannot key 2 then 1),
stays on the line a while and hangs up with a BYE. The test then reads the call record
(and the case it opened) from the HTTP API, found by the caller number the phone sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import socket
import struct
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from crm.rules import RepairClass, Rule
from telephony.config import Config, WhenClosed
from tests.audio import likeness, loudness, wav_samples
from tests.conftest import ROOT, Hotline, with_queues
from tests.dtmf_pcap import telephone_events, write_pcap
from tests.polling import eventually

SIPP = shutil.which("sipp")
SCENARIO = ROOT / "tests" / "sip" / "hotline_caller.xml"
TRUNK = "127.0.0.1:5060"  # transport-udp in config/asterisk/pjsip.conf
HOTLINE_NUMBER = "400"
PCMU = 0  # RTP payload type of G.711 u-law, the codec the scenario offers first
TELEPHONE_EVENT = 101  # the payload type the scenario offers for RFC 4733 events
ETH_P_ALL = 0x0003  # <linux/if_ether.h>: a packet socket for every protocol
SO_RCVBUFFORCE = 33  # <asm-generic/socket.h>; root may exceed rmem_max (not in `socket`)

pytestmark = [
    pytest.mark.asterisk,
    pytest.mark.sip,
    pytest.mark.skipif(
        SIPP is None,
        reason="sipp is not on PATH (Debian package sip-tester; make test installs it)",
    ),
    pytest.mark.skipif(
        os.geteuid() != 0, reason="watching RTP on loopback needs root (so does the sandbox)"
    ),
]


@dataclasses.dataclass(frozen=True)
class RtpPacket:
    payload_type: int
    payload: bytes


class RtpTap:
    """RTP arriving at one UDP port on loopback, seen by a packet socket beside the receiver.

    SIPp owns the port (and reads and echoes what arrives), so the tap does not take the
    packets from it: the kernel hands a copy of every frame on ``lo`` to this socket too.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.packets: list[RtpPacket] = []
        self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        # room for a few seconds of all loopback traffic, should the event loop lag
        self._sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 8 << 20)
        self._sock.bind(("lo", 0))
        self._sock.setblocking(False)
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> RtpTap:
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._sock.close()

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            frame, address = await loop.sock_recvfrom(self._sock, 65535)
            # Each frame on lo is seen leaving and arriving; count it once, arriving.
            if address[2] == socket.PACKET_HOST:
                self._take(frame)

    def _take(self, frame: bytes) -> None:
        ip = frame[14:]  # lo frames carry an Ethernet header of zeros
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != socket.IPPROTO_UDP:
            return
        udp = ip[(ip[0] & 0x0F) * 4 :]
        if struct.unpack("!H", udp[2:4])[0] != self.port:
            return
        rtp = udp[8:]
        if len(rtp) < 12 or rtp[0] >> 6 != 2:
            return
        header = 12 + 4 * (rtp[0] & 0x0F)
        self.packets.append(RtpPacket(rtp[1] & 0x7F, rtp[header:]))


@dataclasses.dataclass
class SippRun:
    """What one SIPp call left behind: exit status, console output and its trace files."""

    returncode: int
    stdout: str
    stderr: str
    files: dict[str, str]

    def report(self) -> str:
        parts = [f"sipp exited {self.returncode}", f"--- stdout\n{self.stdout}"]
        parts.append(f"--- stderr\n{self.stderr}")
        parts += [f"--- {name}\n{text}" for name, text in sorted(self.files.items())]
        return "\n".join(parts)

    def trace(self, suffix: str) -> str:
        found = [text for name, text in self.files.items() if name.endswith(suffix)]
        assert len(found) == 1, f"no single sipp *{suffix} file\n{self.report()}"
        return found[0]

    def answer_ms(self) -> float:
        """Time from the INVITE to the 200 OK as the phone saw it (-trace_rtt)."""
        rows = [line.split(";") for line in self.trace("_rtt.csv").splitlines()[1:] if line]
        assert len(rows) == 1, f"expected one response time\n{self.report()}"
        return float(rows[0][1])


def free_udp_port(*, and_plus: int = 0) -> int:
    """A loopback UDP port free right now; with ``and_plus``, port + and_plus is free too."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as first:
            first.bind(("127.0.0.1", 0))
            port: int = first.getsockname()[1]
            if not and_plus:
                return port
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as second:
                try:
                    second.bind(("127.0.0.1", port + and_plus))
                except OSError:
                    continue
                return port
    raise AssertionError("no free UDP port pair on 127.0.0.1")


async def call_hotline(
    workdir: Path,
    *,
    caller: str,
    name: str,
    keys: str,
    listen_ms: int,
    stay_ms: int = 3000,
    gap_ms: int = 1000,
    media_port: int,
    echo: bool = True,
) -> SippRun:
    """One SIPp call: dial 400, listen ``listen_ms`` after the answer, press ``keys``
    (``gap_ms`` apart), stay on the line ``stay_ms`` after the last one, hang up.

    ``echo`` sends what the phone hears back (-rtp_echo), like a microphone would; leave
    it off to press more than one key: the echo is a second stream (Asterisk's own SSRC)
    beside the keys', and at each change of SSRC Asterisk forgets which key it last saw
    end, so the end packet's next copy (RFC 4733 sends three) is another press: 2 then 1
    reads 2, 2 (res_rtp_asterisk.c, ast_rtp_interpret and process_dtmf_rfc2833).
    """
    assert SIPP is not None
    keyed_ms = prepare_workdir(workdir, keys, gap_ms)
    args = [
        TRUNK,
        "-sf", SCENARIO.name,
        "-s", HOTLINE_NUMBER,
        "-key", "caller", caller,
        "-key", "caller_name", name,
        "-key", "stay_ms", str(keyed_ms + stay_ms),
        "-i", "127.0.0.1",
        "-p", str(free_udp_port()),
        "-mi", "127.0.0.1",
        "-mp", str(media_port),
        *(["-rtp_echo"] if echo else []),
        "-d", str(listen_ms),
        "-m", "1",
        "-timeout", "40s",
        "-timeout_error",
        "-nostdin",
        "-trace_screen",
        "-trace_err",
        "-trace_msg",
        "-trace_rtt",
        "-rtt_freq", "1",
    ]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        SIPP,
        *args,
        cwd=workdir,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), 60)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        stdout, stderr = await proc.communicate()
    assert proc.returncode is not None
    return SippRun(
        proc.returncode,
        stdout.decode(errors="replace"),
        stderr.decode(errors="replace"),
        traces(workdir),
    )


def prepare_workdir(workdir: Path, keys: str, gap_ms: int) -> int:
    """SIPp's folder: the scenario (SIPp writes its traces beside it) and the keys' pcap;
    returns how long the keys take to send, in ms."""
    workdir.mkdir()
    shutil.copy(SCENARIO, workdir / SCENARIO.name)
    packets = telephone_events(keys, payload_type=TELEPHONE_EVENT, gap_ms=gap_ms)
    write_pcap(workdir / "keys.pcap", packets)
    return packets[-1].at_ms


def traces(workdir: Path) -> dict[str, str]:
    return {
        path.name: path.read_text(errors="replace")
        for path in workdir.iterdir()
        if path.suffix in {".log", ".csv"}
    }


async def closed_record(hotline: Hotline, caller: str) -> dict[str, Any]:
    """The one call record from ``caller``, via the API, once it is closed."""

    async def find() -> dict[str, Any] | None:
        status, body = await hotline.get("/api/calls", caller=caller)
        assert status == 200, body
        assert body["total"] <= 1, f"more than one call from {caller}: {body}"
        if not body["items"] or not body["items"][0]["ended_at"]:
            return None
        status, full = await hotline.get(f"/api/calls/{body['items'][0]['id']}")
        assert status == 200, full
        return dict(full)

    return await eventually(find, timeout_s=15, what=f"closed call record from {caller}")


def ulaw_to_linear(byte: int) -> int:
    """G.711 u-law to a 16-bit sample (ITU-T G.711)."""
    byte = ~byte & 0xFF
    magnitude = (((byte & 0x0F) << 3) + 0x84) << ((byte & 0x70) >> 4)
    return 0x84 - magnitude if byte & 0x80 else magnitude - 0x84


ULAW = tuple(ulaw_to_linear(byte) for byte in range(256))


@pytest.mark.parametrize(
    ("digit", "queue", "action"),
    [("1", "inquiry", "queue:inquiry"), ("3", "complaint", "queue:complaint")],
)
async def test_a_sip_caller_is_answered_greeted_and_routed_by_an_rfc4733_key(
    hotline: Hotline, base_config: Config, tmp_path: Path, digit: str, queue: str, action: str
) -> None:
    """A SIP caller is answered at once, hears the greeting, is routed by an RFC 4733 key."""
    caller = f"1370040000{digit}"
    greeting_wav = base_config.prompts.dir / "greeting.wav"
    greeting = loudness(wav_samples(greeting_wav))
    media_port = free_udp_port(and_plus=2)  # SIPp binds it and the one two above (video)
    async with RtpTap(media_port) as tap:
        sipp = await call_hotline(
            tmp_path / "sipp",
            caller=caller,
            name="王五",
            keys=digit,
            # key during the main menu, once the greeting has played through
            listen_ms=len(greeting) * 20 + 1000,
            media_port=media_port,
        )
    assert sipp.returncode == 0, sipp.report()
    assert sipp.answer_ms() < base_config.ring.first_ring_ends_ms, sipp.report()

    # What reached the phone's media port starts with the greeting: same speech outline.
    audio = [p for p in tap.packets if p.payload_type == PCMU]
    assert len(audio) >= len(greeting), f"the phone got {len(audio)} PCMU packets\n{sipp.report()}"
    heard = [ULAW[byte] for packet in audio for byte in packet.payload]
    match = likeness(heard, greeting_wav, max_lag_s=0.2)
    assert match > 0.9, f"the phone's first audio is not the greeting ({match:.2f})"

    record = await closed_record(hotline, caller)
    assert record["caller_number"] == caller
    assert record["caller_name"] == "王五"
    assert record["dialled_number"] == HOTLINE_NUMBER
    assert record["answered_at"] is not None
    assert 0 <= record["ring_ms"] < base_config.ring.first_ring_ends_ms
    assert record["greeting_played"] is True
    assert [(s["node"], s["input"], s["action"]) for s in record["ivr_path"]] == [
        ("main", digit, action)
    ]
    assert record["queue"] == queue
    assert record["end_reason"] == "caller-hangup"
    assert record["ended_at"] is not None
    assert record["state"] == "ended"


async def owed_case(hotline: Hotline, phone: str, call_id: int) -> dict[str, Any]:
    """The case that holds an unanswered call, via the staff API, once it owes the caller
    a call-back (written just after the case is opened)."""

    async def find() -> dict[str, Any] | None:
        status, body = await hotline.get("/api/cases", phone=phone)
        assert status == 200, body
        found = [c for c in body["items"] if call_id in [x["call_id"] for x in c["calls"]]]
        return found[0] if found and found[0]["callbacks"] else None

    return await eventually(find, timeout_s=20, what=f"the case of call {call_id}, owing a reply")


async def key_urgent_repair_with_nobody_in(
    make_hotline: Callable[..., Any], config: Config, tmp_path: Path, caller: str
) -> tuple[Config, dict[str, Any], dict[str, Any]]:
    """A SIP caller keys 2 (报修) then 1 (急修) with no agent logged in, as shipped (the
    hotline takes a message), and hangs up while the message prompt plays: the config,
    the call record and the call's case."""
    cfg = with_queues(config, when_nobody_logged_in=WhenClosed.MESSAGE)
    hotline: Hotline = await make_hotline(cfg)
    greeting = wav_samples(cfg.prompts.dir / "greeting.wav")
    asked = wav_samples(cfg.prompts.dir / "message_no_agents.wav")
    sipp = await call_hotline(
        tmp_path / "sipp",
        caller=caller,
        name="赵六",
        keys="21",
        listen_ms=len(greeting) // 8 + 1000,  # into the main menu
        gap_ms=1500,  # into the repair menu
        stay_ms=len(asked) // 16,  # gone halfway through 「对不起，现在没有坐席…」
        media_port=free_udp_port(and_plus=2),
        echo=False,  # two keys
    )
    assert sipp.returncode == 0, sipp.report()
    record = await closed_record(hotline, caller)
    case = await owed_case(hotline, caller, record["id"])
    return cfg, record, case


async def test_a_sip_caller_keys_repair_then_urgent_and_is_routed_to_repair(
    make_hotline: Callable[..., Any], config: Config, tmp_path: Path
) -> None:
    """2 then 1 over the trunk: both keys reach the menu, and the call opens an urgent repair
    case (急修 chosen, nobody there): on site in 2 h, fixed in 24 h, called back now."""
    caller = "13700400021"
    cfg, record, case = await key_urgent_repair_with_nobody_in(
        make_hotline, config, tmp_path, caller
    )

    assert [(s["node"], s["input"], s["action"]) for s in record["ivr_path"]] == [
        ("main", "2", "submenu:repair"),
        ("repair", "1", "queue:repair/urgent"),
    ]
    assert record["queue"] == "repair"
    assert record["end_reason"] == "caller-hangup"  # before any message was left

    assert (case["kind"], case["channel"], case["owner_agent_id"]) == ("repair", "phone", None)
    assert [(c["call_id"], c["role"]) for c in case["calls"]] == [(record["id"], "opened")]
    assert case["repair"] is not None
    assert record["choice"] == "repair/urgent"

    rules = cfg.rules

    assert case["repair"]["repair_class"] == RepairClass.URGENT
    started = datetime.fromisoformat(record["started_at"])
    deadlines = {
        d["rule"]: (datetime.fromisoformat(d["starts_at"]), datetime.fromisoformat(d["due_at"]))
        for d in case["deadlines"]
        if d["rule"] in (Rule.ON_SITE, Rule.FIXED)
    }
    assert deadlines == {  # counted from the call
        Rule.ON_SITE: (started, started + rules.span(Rule.ON_SITE)),
        Rule.FIXED: (started, started + rules.span(Rule.FIXED, repair_class=RepairClass.URGENT)),
    }
    (callback,) = case["callbacks"]
    assert callback["status"] == "due"
    assert datetime.fromisoformat(callback["due_at"]) <= datetime.fromisoformat(
        callback["created_at"]
    )  # due at once, not within the inquiry reply time
