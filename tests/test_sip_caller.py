"""A resident's SIP phone calls the hotline over the residents' trunk.

SIPp plays the phone (tests/sip/hotline_caller.xml): it sends an INVITE for 400 from
127.0.0.1 to Asterisk's UDP transport (config/asterisk/pjsip.conf, endpoint
residents-trunk), listens through the greeting, keys a menu choice as RFC 4733 events
(sip-tester's dtmf_2833_N.pcap), waits a little and hangs up with a BYE. The test then
reads the call record from the HTTP API, found by the caller number the phone sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import socket
import struct
from pathlib import Path
from typing import Any

import pytest

from telephony.config import Config
from tests.audio import likeness, loudness, wav_samples
from tests.conftest import ROOT, Hotline
from tests.polling import eventually

SIPP = shutil.which("sipp")
SCENARIO = ROOT / "tests" / "sip" / "hotline_caller.xml"
DTMF_PCAPS = Path("/usr/share/sip-tester")  # Debian's sip-tester ships them
TRUNK = "127.0.0.1:5060"  # transport-udp in config/asterisk/pjsip.conf
HOTLINE_NUMBER = "400"
PCMU = 0  # RTP payload type of G.711 u-law, the codec the scenario offers first
ETH_P_ALL = 0x0003  # <linux/if_ether.h>: a packet socket for every protocol
SO_RCVBUFFORCE = 33  # <asm-generic/socket.h>; root may exceed rmem_max (not in `socket`)

pytestmark = [
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
    workdir: Path, *, caller: str, name: str, digit: str, listen_ms: int, media_port: int
) -> SippRun:
    """One SIPp call: dial 400, listen ``listen_ms`` after the answer, key ``digit``, hang up."""
    assert SIPP is not None
    prepare_workdir(workdir, digit)
    args = [
        TRUNK,
        "-sf", SCENARIO.name,
        "-s", HOTLINE_NUMBER,
        "-key", "caller", caller,
        "-key", "caller_name", name,
        "-i", "127.0.0.1",
        "-p", str(free_udp_port()),
        "-mi", "127.0.0.1",
        "-mp", str(media_port),
        "-rtp_echo",
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


def prepare_workdir(workdir: Path, digit: str) -> None:
    """SIPp's folder: the scenario (SIPp writes its traces beside it) and the key's pcap."""
    pcap = DTMF_PCAPS / f"dtmf_2833_{digit}.pcap"
    assert pcap.is_file(), f"{pcap} is missing (Debian package sip-tester ships it)"
    workdir.mkdir()
    (workdir / "digit.pcap").symlink_to(pcap)
    shutil.copy(SCENARIO, workdir / SCENARIO.name)


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
            digit=digit,
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
