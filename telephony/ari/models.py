"""ARI resources as frozen dataclasses, parsed from Asterisk's JSON.

Only the fields the service uses are typed; the full JSON stays in ``raw`` for logging
and for fields a later feature needs before it earns a typed attribute.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def parse_time(value: str | None) -> datetime | None:
    """Asterisk writes ``2026-11-24T14:00:00.620+0000``; Python 3.11 reads that form."""
    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Channel:
    id: str
    name: str
    state: str
    caller_number: str
    caller_name: str
    dialplan_context: str
    dialplan_exten: str
    creationtime: datetime | None
    language: str
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Channel:
        caller = data.get("caller") or {}
        dialplan = data.get("dialplan") or {}
        return cls(
            id=str(data["id"]),
            name=str(data.get("name", "")),
            state=str(data.get("state", "")),
            caller_number=str(caller.get("number", "")),
            caller_name=str(caller.get("name", "")),
            dialplan_context=str(dialplan.get("context", "")),
            dialplan_exten=str(dialplan.get("exten", "")),
            creationtime=parse_time(data.get("creationtime")),
            language=str(data.get("language", "")),
            raw=data,
        )

    @property
    def stasis_app(self) -> str | None:
        """The Stasis application the channel sits in, if its dialplan says so."""
        dialplan = self.raw.get("dialplan") or {}
        if dialplan.get("app_name") != "Stasis":
            return None
        return str(dialplan.get("app_data", "")).split(",", 1)[0] or None


@dataclass(frozen=True)
class Bridge:
    id: str
    bridge_type: str
    channels: tuple[str, ...]
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Bridge:
        return cls(
            id=str(data["id"]),
            bridge_type=str(data.get("bridge_type", "")),
            channels=tuple(str(c) for c in data.get("channels", [])),
            raw=data,
        )


@dataclass(frozen=True)
class Playback:
    id: str
    media_uri: str
    target_uri: str
    state: str
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Playback:
        return cls(
            id=str(data["id"]),
            media_uri=str(data.get("media_uri", "")),
            target_uri=str(data.get("target_uri", "")),
            state=str(data.get("state", "")),
            raw=data,
        )


@dataclass(frozen=True)
class LiveRecording:
    name: str
    format: str
    target_uri: str
    state: str
    cause: str
    duration_s: int | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LiveRecording:
        duration = data.get("duration")
        return cls(
            name=str(data["name"]),
            format=str(data.get("format", "")),
            target_uri=str(data.get("target_uri", "")),
            state=str(data.get("state", "")),
            cause=str(data.get("cause", "")),
            duration_s=int(duration) if duration is not None else None,
            raw=data,
        )


@dataclass(frozen=True)
class AsteriskInfo:
    """What ``GET /asterisk/info`` says; ``startup_time`` tells a restart from a blip."""

    version: str
    startup_time: datetime | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AsteriskInfo:
        status = data.get("status") or {}
        system = data.get("system") or {}
        return cls(
            version=str(system.get("version", "")),
            startup_time=parse_time(status.get("startup_time")),
            raw=data,
        )
