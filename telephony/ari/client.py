"""ARI REST calls over one shared aiohttp ``ClientSession``.

One session for the life of the service (aiohttp's advice): connection pooling keeps
the per-request cost at a few hundred microseconds, which matters for answering within
the first ring under a burst of calls. Credentials go in an ``Authorization`` header,
never in a URL, so they cannot leak into access logs or our own log lines.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Mapping
from typing import Any

import aiohttp

from telephony.ari.exceptions import AriConflict, AriHttpError, AriNotFound, AriUnavailable
from telephony.ari.models import AsteriskInfo, Bridge, Channel, LiveRecording, Playback

log = logging.getLogger(__name__)

Params = Mapping[str, str | int | float | bool | None]


class AriClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        user: str,
        password: str,
        *,
        timeout_s: float = 10.0,
    ) -> None:
        self._session = session
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": basic_auth(user, password)}
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def request(
        self,
        method: str,
        path: str,
        params: Params | None = None,
        body: Any = None,
        *,
        retry_stale: bool = True,
    ) -> Any:
        """Send one request; return the decoded JSON (or None for 204 No Content).

        Asterisk closes idle keep-alive connections on its own schedule; a request sent on
        one it just closed fails with ServerDisconnectedError before Asterisk read it, so it
        is sent once more on a new connection (except where a repeat could act twice).
        """
        try:
            return await self._request(method, path, params, body)
        except AriUnavailable as err:
            if not retry_stale or not isinstance(err.__cause__, aiohttp.ServerDisconnectedError):
                raise
            return await self._request(method, path, params, body)

    async def _request(self, method: str, path: str, params: Params | None, body: Any) -> Any:
        query = {k: _query_value(v) for k, v in (params or {}).items() if v is not None}
        url = f"{self.base_url}{path}"
        try:
            async with self._session.request(
                method, url, params=query, json=body, headers=self._headers, timeout=self._timeout
            ) as resp:
                if resp.status == 204:
                    return None
                text = await resp.text()
                if resp.status >= 400:
                    raise _http_error(resp.status, method, path, text)
                if not text:
                    return None
                return await resp.json(content_type=None)
        except aiohttp.ClientResponseError as err:
            raise _http_error(err.status, method, path, err.message) from err
        except (aiohttp.ClientError, TimeoutError) as err:
            raise AriUnavailable(f"{method} {path}: {type(err).__name__}: {err}") from err

    # -- asterisk ---------------------------------------------------------------------
    async def asterisk_info(self) -> AsteriskInfo:
        return AsteriskInfo.from_json(await self.request("GET", "/asterisk/info"))

    async def application_channels(self, app: str) -> set[str]:
        """Ids of the channels in (or subscribed by) a Stasis application."""
        data = await self.request("GET", f"/applications/{app}")
        return {str(c) for c in data.get("channel_ids", [])} if isinstance(data, dict) else set()

    # -- channels ---------------------------------------------------------------------
    async def list_channels(self) -> list[Channel]:
        return [Channel.from_json(c) for c in await self.request("GET", "/channels")]

    async def get_channel(self, channel_id: str) -> Channel:
        return Channel.from_json(await self.request("GET", f"/channels/{channel_id}"))

    async def answer(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{channel_id}/answer")

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        await self.request("DELETE", f"/channels/{channel_id}", {"reason": reason})

    async def play(
        self,
        channel_id: str,
        media: str | list[str],
        *,
        playback_id: str | None = None,
        lang: str | None = None,
    ) -> Playback:
        params: dict[str, str | None] = {
            "media": media if isinstance(media, str) else ",".join(media),
            "lang": lang,
        }
        if playback_id:
            data = await self.request("POST", f"/channels/{channel_id}/play/{playback_id}", params)
        else:
            data = await self.request("POST", f"/channels/{channel_id}/play", params)
        return Playback.from_json(data)

    async def get_playback(self, playback_id: str) -> Playback:
        return Playback.from_json(await self.request("GET", f"/playbacks/{playback_id}"))

    async def stop_playback(self, playback_id: str) -> None:
        await self.request("DELETE", f"/playbacks/{playback_id}")

    async def send_dtmf(
        self, channel_id: str, dtmf: str, *, between_ms: int = 100, duration_ms: int = 100
    ) -> None:
        await self.request(
            "POST",
            f"/channels/{channel_id}/dtmf",
            {"dtmf": dtmf, "between": between_ms, "duration": duration_ms},
        )

    async def start_moh(self, channel_id: str, moh_class: str | None = None) -> None:
        await self.request("POST", f"/channels/{channel_id}/moh", {"mohClass": moh_class})

    async def ring(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{channel_id}/ring")

    async def originate(
        self,
        endpoint: str,
        *,
        app: str,
        app_args: str | None = None,
        caller_id: str | None = None,
        timeout_s: int = 30,
        channel_id: str | None = None,
        other_channel_id: str | None = None,
        variables: Mapping[str, str] | None = None,
    ) -> Channel:
        params: dict[str, str | int | None] = {
            "endpoint": endpoint,
            "app": app,
            "appArgs": app_args,
            "callerId": caller_id,
            "timeout": timeout_s,
            "channelId": channel_id,
            "otherChannelId": other_channel_id,
        }
        body = {"variables": dict(variables)} if variables else None
        data = await self.request("POST", "/channels", params, body, retry_stale=False)
        return Channel.from_json(data)

    async def record(
        self,
        channel_id: str,
        name: str,
        *,
        fmt: str = "wav",
        max_duration_s: int = 0,
        max_silence_s: int = 0,
        terminate_on: str = "none",
        if_exists: str = "fail",
        beep: bool = False,
    ) -> LiveRecording:
        params: dict[str, str | int | bool] = {
            "name": name,
            "format": fmt,
            "maxDurationSeconds": max_duration_s,
            "maxSilenceSeconds": max_silence_s,
            "terminateOn": terminate_on,
            "ifExists": if_exists,
            "beep": beep,
        }
        data = await self.request("POST", f"/channels/{channel_id}/record", params)
        return LiveRecording.from_json(data)

    async def record_bridge(
        self, bridge_id: str, name: str, *, fmt: str = "wav", if_exists: str = "fail"
    ) -> LiveRecording:
        """Record the bridge's mix: every participant, as a reviewer hears the call."""
        params = {"name": name, "format": fmt, "ifExists": if_exists}
        data = await self.request("POST", f"/bridges/{bridge_id}/record", params)
        return LiveRecording.from_json(data)

    async def snoop(self, channel_id: str, snoop_id: str, app: str, *, spy: str = "in") -> Channel:
        """A channel hearing one direction of ``channel_id`` (``in``: what that party says).

        A channel in a bridge cannot be recorded on its own; its snoop channel can, which
        is how each speaker gets a recording of their own.
        """
        params = {"spy": spy, "whisper": "none", "app": app, "snoopId": snoop_id}
        data = await self.request("POST", f"/channels/{channel_id}/snoop", params)
        return Channel.from_json(data)

    async def stop_recording(self, name: str) -> None:
        await self.request("POST", f"/recordings/live/{name}/stop")

    async def stored_recording(self, name: str) -> bytes:
        """The audio of a finished recording, fetched over HTTP so Asterisk may be remote."""
        path = f"/recordings/stored/{name}/file"
        try:
            async with self._session.get(
                f"{self.base_url}{path}", headers=self._headers, timeout=self._timeout
            ) as resp:
                if resp.status >= 400:
                    raise _http_error(resp.status, "GET", path, await resp.text())
                return await resp.read()
        except (aiohttp.ClientError, TimeoutError) as err:
            raise AriUnavailable(f"GET {path}: {type(err).__name__}: {err}") from err

    async def delete_stored_recording(self, name: str) -> None:
        await self.request("DELETE", f"/recordings/stored/{name}")

    async def endpoint_state(self, technology: str, resource: str) -> str:
        """``online``, ``offline`` or ``unknown``: is a softphone registered?"""
        data = await self.request("GET", f"/endpoints/{technology}/{resource}")
        return str(data.get("state") or "unknown")

    # -- bridges ----------------------------------------------------------------------
    async def create_bridge(
        self, bridge_id: str, *, bridge_type: str = "mixing", name: str | None = None
    ) -> Bridge:
        """Create the bridge with this id, or return it if it exists (POST is idempotent)."""
        data = await self.request(
            "POST", f"/bridges/{bridge_id}", {"type": bridge_type, "name": name}
        )
        return Bridge.from_json(data)

    async def list_bridges(self) -> list[Bridge]:
        return [Bridge.from_json(b) for b in await self.request("GET", "/bridges")]

    async def get_bridge(self, bridge_id: str) -> Bridge:
        return Bridge.from_json(await self.request("GET", f"/bridges/{bridge_id}"))

    async def destroy_bridge(self, bridge_id: str) -> None:
        await self.request("DELETE", f"/bridges/{bridge_id}")

    async def add_to_bridge(
        self, bridge_id: str, channel_id: str, *, role: str | None = None
    ) -> None:
        await self.request(
            "POST", f"/bridges/{bridge_id}/addChannel", {"channel": channel_id, "role": role}
        )

    async def remove_from_bridge(self, bridge_id: str, channel_id: str) -> None:
        await self.request("POST", f"/bridges/{bridge_id}/removeChannel", {"channel": channel_id})

    async def start_bridge_moh(self, bridge_id: str, moh_class: str | None = None) -> None:
        await self.request("POST", f"/bridges/{bridge_id}/moh", {"mohClass": moh_class})


def basic_auth(user: str, password: str) -> str:
    """The ``Authorization`` header value for ARI's HTTP basic authentication."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def _query_value(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _http_error(status: int, method: str, path: str, text: str) -> AriHttpError:
    message = _asterisk_message(text)
    if status == 404:
        return AriNotFound(status, method, path, message)
    if status == 409:
        return AriConflict(status, method, path, message)
    return AriHttpError(status, method, path, message)


def _asterisk_message(text: str) -> str:
    """ARI errors are ``{"message": "..."}``; fall back to the raw body."""
    try:
        data = json.loads(text)
    except ValueError:
        return text.strip()[:200]
    if isinstance(data, dict) and "message" in data:
        return str(data["message"])
    return text.strip()[:200]
