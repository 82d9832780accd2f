"""Fakes for fault injection: the real ARI client, with chosen requests going wrong.

Under load Asterisk replies after the service's ARI timeout, or not at all; what it was
asked may still have happened. These fakes make one chosen request do that, every time
the test runs, against the real sandbox: ``FailingAri`` sends the request and then
reports a timeout (the worst case: done, but we never heard), ``SlowAri`` holds the
request until the test lets it go, ``LateRingAri`` has Asterisk ring longer than the ACD's
clock says.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from telephony.ari import AriClient, AriUnavailable
from telephony.ari.client import Params

Match = Callable[[str, str, Params | None], bool]


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    params: dict[str, Any]


class FailingAri(AriClient):
    """The real client, except that the first ``times`` requests matching ``match`` are sent
    and then raise ``AriUnavailable`` as a timed-out reply does (with ``lost``, they are
    not even sent: Asterisk never got them)."""

    def __init__(
        self, real: AriClient, match: Match, *, times: int = 1, lost: bool = False
    ) -> None:
        vars(self).update(vars(real))  # the same connection pool and credentials
        self._match = match
        self._left = times
        self._lost = lost
        self.injected: list[Request] = []

    async def request(
        self,
        method: str,
        path: str,
        params: Params | None = None,
        body: Any = None,
        *,
        retry_stale: bool = True,
    ) -> Any:
        failing = self._left > 0 and self._match(method, path, params)
        if failing:
            self._left -= 1
            self.injected.append(Request(method, path, dict(params or {})))
        if not (failing and self._lost):
            result = await super().request(method, path, params, body, retry_stale=retry_stale)
        if failing:
            raise AriUnavailable(f"{method} {path}: TimeoutError: injected by FailingAri")
        return result


class SlowAri(AriClient):
    """The real client, except that requests matching ``match`` wait until ``release()``
    before they are sent (an Asterisk slow to get to them)."""

    def __init__(self, real: AriClient, match: Match) -> None:
        vars(self).update(vars(real))
        self._match = match
        self._released = asyncio.Event()
        self.held: list[Request] = []

    def release(self) -> None:
        self._released.set()

    async def request(
        self,
        method: str,
        path: str,
        params: Params | None = None,
        body: Any = None,
        *,
        retry_stale: bool = True,
    ) -> Any:
        if self._match(method, path, params):
            self.held.append(Request(method, path, dict(params or {})))
            await self._released.wait()
        return await super().request(method, path, params, body, retry_stale=retry_stale)


class LateRingAri(AriClient):
    """The real client, except that Asterisk rings agents' phones for ``ring_s`` whatever
    the ACD asked: Asterisk's side of a ring outlasting the ACD's own clock, as when a
    loaded Asterisk runs seconds behind the service."""

    def __init__(self, real: AriClient, ring_s: int) -> None:
        vars(self).update(vars(real))
        self._ring_s = ring_s

    async def request(
        self,
        method: str,
        path: str,
        params: Params | None = None,
        body: Any = None,
        *,
        retry_stale: bool = True,
    ) -> Any:
        if (method, path) == ("POST", "/channels") and agent_leg(params, "channelId"):
            params = {**(params or {}), "timeout": self._ring_s}
        return await super().request(method, path, params, body, retry_stale=retry_stale)


def agent_leg(params: Params | None, key: str) -> bool:
    """Whether a request's parameter ``key`` names an agent's phone (``agent-…``)."""
    return str((params or {}).get(key) or "").startswith("agent-")
