"""A real SIP softphone for tests: Debian's baresip (1.0.0) as a call-centre agent.

``Softphone`` writes a private baresip config folder, starts ``baresip -f <dir>`` headless
(no sound card, no terminal, loopback only) and registers an agent's PJSIP endpoint with
the sandbox Asterisk. It answers incoming calls by itself, sends a WAV file (or silence)
and can record what it hears.

baresip is driven through its ``ctrl_tcp`` module (JSON in netstrings on a loopback TCP
port): commands go in (``uanew``, ``hangup``, ``accept``, ``quit``) and every user-agent
event comes out (``REGISTER_OK``, ``CALL_ESTABLISHED``, ``CALL_CLOSED``, ...), so calls are
counted from events rather than from log lines. The account is created with ``uanew``
once the control connection is up, so not even the first ``REGISTER_OK`` is missed.
baresip's console output is kept in ``output`` for failure reports.

What baresip 1.0.0 does that a caller of this module should know:

- Audio goes out through the ``aufile`` source, which ends the call when its file runs
  out. The phone therefore sends ``play`` followed by silence up to ``call_limit_s``
  seconds in all, and then hangs up by itself.
- The ``sndfile`` filter records what the phone hears to ``dump-<local time>-dec.wav``
  (and what it sends to ``...-enc.wav``) in ``record_dir``; the WAV header is complete
  only once the call has ended, and two calls starting in the same second share a name.
- ``answermode=auto`` answers at once; for ``answer_after_s > 0`` the account is manual
  and this module sends ``accept`` after the delay.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import socket
import wave
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from telephony.ari import AriClient, AriError

BARESIP = shutil.which("baresip")
STDBUF = shutil.which("stdbuf")  # baresip never flushes stdout; line-buffer it for the log
MODULE_PATH = Path("/usr/lib/baresip/modules")  # Debian's baresip-core installs them here
REGISTRAR = "127.0.0.1:5060"  # transport-udp in config/asterisk/pjsip.conf
RATE = 8000  # G.711: the only codecs the agents' endpoints allow
FILENAME_MAX = 127  # sndfile builds "<snd_path>/dump-<time>-dec.wav" in a 128-byte buffer
# the events that open a call (an auto-answered one raises only CALL_ESTABLISHED)
CALL_STARTS = frozenset({"CALL_INCOMING", "CALL_RINGING", "CALL_PROGRESS", "CALL_ESTABLISHED"})
ANSI = re.compile(r"\x1b\[[0-9;]*m")


class SoftphoneError(RuntimeError):
    """baresip did not start, register, or do what it was told."""


def free_port(kinds: tuple[int, ...] = (socket.SOCK_DGRAM,)) -> int:
    """A loopback port free right now for every socket kind given (baresip's SIP port
    takes both UDP and TCP)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, kinds[0]) as first:
            first.bind(("127.0.0.1", 0))
            port: int = first.getsockname()[1]
            try:
                for kind in kinds[1:]:
                    with socket.socket(socket.AF_INET, kind) as other:
                        other.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise SoftphoneError("no free port on 127.0.0.1")


class Softphone:
    """An agent's SIP phone (baresip) registered with Asterisk, as an async context manager.

    ``async with Softphone("1001", "1001", workdir=tmp_path) as phone:`` returns once
    Asterisk has accepted the registration (and, given ``ari``, reports the endpoint
    online); leaving the block quits baresip, which unregisters first.
    """

    def __init__(
        self,
        extension: str,
        password: str,
        *,
        workdir: Path,
        answer_after_s: float = 0.0,
        play: Path | None = None,
        record_dir: Path | None = None,
        sip_port: int | None = None,
        registrar: str = REGISTRAR,
        call_limit_s: float = 300.0,
        max_calls: int = 1,
        ari: AriClient | None = None,
        start_timeout_s: float = 10.0,
        lifetime_s: int = 3600,
    ) -> None:
        if answer_after_s < 0:
            raise ValueError("answer_after_s must not be negative")
        self.extension = extension
        self.password = password
        self.workdir = workdir
        self.answer_after_s = answer_after_s
        self.play = play
        self.record_dir = record_dir
        self.sip_port = sip_port
        self.registrar = registrar
        self.call_limit_s = call_limit_s
        self.max_calls = max_calls
        self.ari = ari
        self.start_timeout_s = start_timeout_s
        self.lifetime_s = lifetime_s  # baresip -t: quits by itself should a test leak it
        self.confdir = workdir / "baresip"
        self.output: list[str] = []  # baresip's console, for failure reports
        self.events: list[dict[str, Any]] = []  # ctrl_tcp events, in order
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._console_task: asyncio.Task[None] | None = None
        self._control_task: asyncio.Task[None] | None = None
        self._changed = asyncio.Condition()
        self._responses: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._tokens = 0
        self._answer_timers: list[asyncio.TimerHandle] = []
        self._control_lost = False

    # -- what happened ------------------------------------------------------------------
    def calls_events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        """Events about calls, all or of one type (``CALL_ESTABLISHED``, ``CALL_CLOSED``...)."""
        return [
            e
            for e in self.events
            if e.get("class") == "call" and event_type in (None, e.get("type"))
        ]

    @property
    def calls_answered(self) -> int:
        """Incoming calls answered and confirmed (ACK received): ``CALL_ESTABLISHED``."""
        return sum(
            1 for e in self.calls_events("CALL_ESTABLISHED") if e.get("direction") == "incoming"
        )

    @property
    def calls_ended(self) -> int:
        """Calls over, whoever ended them: ``CALL_CLOSED``."""
        return len(self.calls_events("CALL_CLOSED"))

    @property
    def active_calls(self) -> set[str]:
        """Ids of the calls not closed yet (an auto-answered call raises no CALL_INCOMING)."""
        active: set[str] = set()
        for event in self.calls_events():
            if event.get("type") == "CALL_CLOSED":
                active.discard(str(event.get("id")))
            elif event.get("type") in CALL_STARTS:
                active.add(str(event.get("id")))
        return active

    @property
    def registered(self) -> bool:
        """Whether the last registration event was a success."""
        for event in reversed(self.events):
            kind = event.get("type")
            if kind == "REGISTER_OK":
                return True
            if kind in ("REGISTER_FAIL", "UNREGISTERING"):
                return False
        return False

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    def heard(self) -> list[Path]:
        """WAV files of what the phone heard, one per call, oldest first."""
        if self.record_dir is None:
            raise SoftphoneError("the softphone was started without record_dir")
        return sorted(self.record_dir.glob("dump-*-dec.wav"))

    def report(self) -> str:
        """baresip's console and events, for an assertion message."""
        events = "\n".join(json.dumps(e, ensure_ascii=False) for e in self.events)
        code = self._proc.returncode if self._proc else None
        return (
            f"baresip {self.extension} (exit {code})\n--- console\n"
            + "\n".join(self.output)
            + f"\n--- events\n{events}"
        )

    async def wait_for(
        self, probe: Callable[[], bool], *, timeout_s: float = 10.0, what: str
    ) -> None:
        """Wait until ``probe()`` holds, re-checked on every event; fail naming ``what``."""

        async def until() -> None:
            async with self._changed:
                while not probe():
                    if not self.running or self._control_lost:
                        raise SoftphoneError(f"baresip stopped waiting for {what}\n{self.report()}")
                    await self._changed.wait()

        try:
            await asyncio.wait_for(until(), timeout_s)
        except TimeoutError:
            raise AssertionError(
                f"timed out after {timeout_s}s waiting for {what}\n{self.report()}"
            ) from None

    async def wait_answered(self, count: int = 1, *, timeout_s: float = 10.0) -> None:
        await self.wait_for(
            lambda: self.calls_answered >= count, timeout_s=timeout_s, what=f"{count} answered"
        )

    async def wait_ended(self, count: int = 1, *, timeout_s: float = 10.0) -> None:
        await self.wait_for(
            lambda: self.calls_ended >= count, timeout_s=timeout_s, what=f"{count} ended"
        )

    # -- what to do ---------------------------------------------------------------------
    async def command(self, command: str, params: str | None = None) -> str:
        """Run one baresip command (as typed after ``/``); its output, or SoftphoneError."""
        if self._writer is None:
            raise SoftphoneError("baresip's control connection is not open")
        self._tokens += 1
        token = f"t{self._tokens}"
        message: dict[str, str] = {"command": command, "token": token}
        if params is not None:
            message["params"] = params
        reply: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._responses[token] = reply
        try:
            self._send(message)
            await self._writer.drain()
            response = await asyncio.wait_for(reply, 10)
        finally:
            self._responses.pop(token, None)
        data = str(response.get("data", ""))
        if not response.get("ok"):
            raise SoftphoneError(f"baresip {command!r} failed: {data}\n{self.report()}")
        return data

    async def hang_up(self, *, timeout_s: float = 10.0) -> None:
        """Hang up the current call and wait until baresip reports it closed."""
        if not self.active_calls:
            raise SoftphoneError(f"no call to hang up\n{self.report()}")
        ended = self.calls_ended
        await self.command("hangup")
        await self.wait_ended(ended + 1, timeout_s=timeout_s)

    # -- start and stop -----------------------------------------------------------------
    async def __aenter__(self) -> Softphone:
        if BARESIP is None:
            raise SoftphoneError("baresip is not on PATH (Debian package baresip-core)")
        try:
            await self._start()
        except BaseException:
            await self._stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stop()

    async def _start(self) -> None:
        assert BARESIP is not None
        ctrl_port = free_port((socket.SOCK_STREAM,))
        sip_port = self.sip_port or free_port((socket.SOCK_DGRAM, socket.SOCK_STREAM))
        self._write_config(sip_port, ctrl_port)
        argv = [BARESIP, "-f", str(self.confdir), "-t", str(self.lifetime_s)]
        if STDBUF is not None:
            argv = [STDBUF, "-oL", "-eL", *argv]
        self._proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=self.workdir,
            stdin=asyncio.subprocess.DEVNULL,  # no stdio module: baresip never reads it
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        self._console_task = asyncio.create_task(self._read_console())
        await self._connect(ctrl_port)
        self._control_task = asyncio.create_task(self._read_control())
        await self.command("uanew", self._account())
        await self.wait_for(
            lambda: self._registration_failed() or self.registered,
            timeout_s=self.start_timeout_s,
            what=f"{self.extension} registered",
        )
        if not self.registered:
            raise SoftphoneError(f"registration of {self.extension} failed\n{self.report()}")
        if self.ari is not None:
            await self._wait_endpoint("online")

    async def _stop(self) -> None:
        for timer in self._answer_timers:
            timer.cancel()
        proc = self._proc
        if proc is not None and proc.returncode is None:
            if self._writer is not None and not self._control_lost:
                with contextlib.suppress(OSError, RuntimeError):
                    self._send({"command": "quit"})  # unregisters, then exits
                    await self._writer.drain()
            if not await self._exited(proc, 5.0):
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
                if not await self._exited(proc, 3.0):
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    await proc.wait()
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
            self._writer = None
        if self._control_task is not None:
            self._control_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._control_task
        if self._console_task is not None:
            # at EOF it ends by itself, keeping baresip's last words
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._console_task), 2)
            self._console_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._console_task

    @staticmethod
    async def _exited(proc: asyncio.subprocess.Process, timeout_s: float) -> bool:
        try:
            await asyncio.wait_for(proc.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def _wait_endpoint(self, state: str) -> None:
        assert self.ari is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout_s
        seen = None
        while loop.time() < deadline:
            with contextlib.suppress(AriError):
                endpoint = await self.ari.request("GET", f"/endpoints/PJSIP/{self.extension}")
                seen = endpoint.get("state")
                if seen == state:
                    return
            await asyncio.sleep(0.05)
        raise SoftphoneError(
            f"Asterisk says PJSIP/{self.extension} is {seen}, not {state}\n{self.report()}"
        )

    def _registration_failed(self) -> bool:
        return any(e.get("type") == "REGISTER_FAIL" for e in self.events)

    # -- configuration ------------------------------------------------------------------
    def _account(self) -> str:
        """The account line (baresip's ``accounts`` syntax) ``uanew`` creates."""
        mode = "auto" if self.answer_after_s == 0 else "manual"
        return (
            f"<sip:{self.extension}@{self.registrar};transport=udp>"
            f";auth_pass={self.password};answermode={mode}"
            ";audio_codecs=PCMU/8000/1,PCMA/8000/1;ptime=20;regint=3600"
        )

    def _write_config(self, sip_port: int, ctrl_port: int) -> None:
        self.confdir.mkdir(parents=True, exist_ok=True)
        audio = self._write_audio(self.confdir / "send.wav")
        lines = [
            "poll_method epoll",
            f"sip_listen 127.0.0.1:{sip_port}",
            "call_local_timeout 120",
            f"call_max_calls {self.max_calls}",
            f"audio_source aufile,{audio}",
            # no audio_player: with no player module loaded baresip plays nothing
            "audio_buffer 20-160",
            "rtp_tos 0",
            "rtcp_mux no",
            "jitter_buffer_delay 5-10",
            "rtp_stats no",
            f"module_path {MODULE_PATH}",
            "module g711.so",
            "module aufile.so",
            "module_app menu.so",  # the commands: accept, hangup, uanew, ...
            "statmode_default off",  # menu's once-a-tick call status line
            "module_app ctrl_tcp.so",
            f"ctrl_tcp_listen 127.0.0.1:{ctrl_port}",
        ]
        if self.record_dir is not None:
            self.record_dir.mkdir(parents=True, exist_ok=True)
            snd_path = min(
                (str(self.record_dir.resolve()), os.path.relpath(self.record_dir, self.workdir)),
                key=len,
            )
            if len(snd_path) + len("/dump-2000-01-01-00-00-00-dec.wav") > FILENAME_MAX:
                raise ValueError(f"record_dir is too long a path for baresip: {snd_path}")
            lines += ["module sndfile.so", f"snd_path {snd_path}"]
        (self.confdir / "config").write_text("\n".join(lines) + "\n")
        (self.confdir / "accounts").write_text("")  # the account comes by uanew
        (self.confdir / "contacts").write_text("")

    def _write_audio(self, path: Path) -> Path:
        """``play`` then silence, ``call_limit_s`` in all: what aufile sends in a call."""
        total = int(self.call_limit_s * RATE)
        with wave.open(str(path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(RATE)
            written = 0
            if self.play is not None:
                with wave.open(str(self.play), "rb") as src:
                    shape = (src.getframerate(), src.getnchannels(), src.getsampwidth())
                    if shape != (RATE, 1, 2):
                        raise ValueError(f"{self.play}: need 8 kHz mono 16-bit, not {shape}")
                    frames = src.readframes(min(src.getnframes(), total))
                out.writeframes(frames)
                written = len(frames) // 2
            chunk = bytes(2 * RATE)
            while written < total:
                n = min(RATE, total - written)
                out.writeframes(chunk[: 2 * n])
                written += n
        return path

    # -- baresip's two outputs ----------------------------------------------------------
    async def _connect(self, port: int) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout_s
        while True:
            try:
                self._reader, self._writer = await asyncio.open_connection("127.0.0.1", port)
                return
            except OSError:
                if not self.running:
                    if self._console_task is not None:  # at EOF: baresip's last words read
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(asyncio.shield(self._console_task), 2)
                    raise SoftphoneError(f"baresip exited at start\n{self.report()}") from None
                if loop.time() > deadline:
                    raise SoftphoneError(f"no ctrl_tcp on port {port}\n{self.report()}") from None
                await asyncio.sleep(0.02)

    async def _read_console(self) -> None:
        assert self._proc is not None
        assert self._proc.stdout is not None
        while line := await self._proc.stdout.readline():
            text = ANSI.sub("", line.decode(errors="replace")).rstrip()
            self.output.append(text)
            del self.output[:-2000]
        await self._proc.wait()
        await self._notify()

    async def _read_control(self) -> None:
        assert self._reader is not None
        try:
            while True:
                size = int((await self._reader.readuntil(b":"))[:-1])
                payload = await self._reader.readexactly(size + 1)  # and the closing ","
                self._take(json.loads(payload[:-1]))
                await self._notify()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError) as err:
            self.output.append(f"[softphone] control connection closed: {err!r}")
        finally:
            self._control_lost = True
            for reply in self._responses.values():
                if not reply.done():
                    reply.set_exception(SoftphoneError(f"baresip went away\n{self.report()}"))
            await self._notify()

    def _take(self, message: dict[str, Any]) -> None:
        if message.get("response"):
            reply = self._responses.get(str(message.get("token")))
            if reply is not None and not reply.done():
                reply.set_result(message)
            return
        if not message.get("event"):
            return
        self.events.append(message)
        if message.get("type") == "CALL_INCOMING" and self.answer_after_s > 0:
            loop = asyncio.get_running_loop()
            self._answer_timers.append(
                loop.call_later(self.answer_after_s, self._send, {"command": "accept"})
            )

    def _send(self, message: dict[str, str]) -> None:
        if self._writer is None or self._writer.is_closing():
            return
        body = json.dumps(message).encode()
        self._writer.write(b"%d:%s," % (len(body), body))

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()
