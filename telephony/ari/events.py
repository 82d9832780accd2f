"""Typed ARI events, parsed from the ``/ari/events`` websocket's JSON messages.

Each event names the resource it concerns (``channel_id`` or, for playbacks and
recordings, the ``target_uri`` they run on) so a dispatcher can route it to the one call
session that owns it without knowing every event type.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from telephony.ari.models import Bridge, Channel, LiveRecording, Playback, parse_time


@dataclass(frozen=True)
class Event:
    type: str
    application: str
    timestamp: datetime | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @property
    def channel_id(self) -> str | None:
        """The channel this event is about, if any (used for routing)."""
        return None


@dataclass(frozen=True)
class ChannelEvent(Event):
    channel: Channel

    @property
    def channel_id(self) -> str | None:
        return self.channel.id


@dataclass(frozen=True)
class StasisStart(ChannelEvent):
    args: tuple[str, ...]
    replace_channel: Channel | None


@dataclass(frozen=True)
class StasisEnd(ChannelEvent):
    pass


@dataclass(frozen=True)
class ChannelStateChange(ChannelEvent):
    pass


@dataclass(frozen=True)
class ChannelDtmfReceived(ChannelEvent):
    digit: str
    duration_ms: int


@dataclass(frozen=True)
class ChannelHangupRequest(ChannelEvent):
    cause: int | None
    soft: bool


@dataclass(frozen=True)
class ChannelDestroyed(ChannelEvent):
    cause: int | None
    cause_txt: str


@dataclass(frozen=True)
class ChannelEnteredBridge(ChannelEvent):
    bridge: Bridge


@dataclass(frozen=True)
class ChannelLeftBridge(ChannelEvent):
    bridge: Bridge


def _target_channel(target_uri: str) -> str | None:
    kind, _, ident = target_uri.partition(":")
    return ident if kind == "channel" and ident else None


@dataclass(frozen=True)
class PlaybackEvent(Event):
    playback: Playback

    @property
    def channel_id(self) -> str | None:
        return _target_channel(self.playback.target_uri)


@dataclass(frozen=True)
class PlaybackStarted(PlaybackEvent):
    pass


@dataclass(frozen=True)
class PlaybackFinished(PlaybackEvent):
    pass


@dataclass(frozen=True)
class RecordingEvent(Event):
    recording: LiveRecording

    @property
    def channel_id(self) -> str | None:
        return _target_channel(self.recording.target_uri)


@dataclass(frozen=True)
class RecordingStarted(RecordingEvent):
    pass


@dataclass(frozen=True)
class RecordingFinished(RecordingEvent):
    pass


@dataclass(frozen=True)
class RecordingFailed(RecordingEvent):
    pass


@dataclass(frozen=True)
class ApplicationReplaced(Event):
    """Another websocket registered our application name; we no longer get its events."""


@dataclass(frozen=True)
class UnknownEvent(Event):
    """Any event type the service has no use for yet; kept so nothing is lost silently."""


def _int_or_none(value: Any) -> int | None:
    return int(value) if value is not None else None


def parse_event(data: dict[str, Any]) -> Event:
    """Build the typed event for one websocket message; unknown types become UnknownEvent."""
    kind = str(data.get("type", ""))
    base: dict[str, Any] = {
        "type": kind,
        "application": str(data.get("application", "")),
        "timestamp": parse_time(data.get("timestamp")),
        "raw": data,
    }
    channel = Channel.from_json(data["channel"]) if "channel" in data else None
    if kind == "StasisStart" and channel:
        replace = data.get("replace_channel")
        return StasisStart(
            **base,
            channel=channel,
            args=tuple(str(a) for a in data.get("args", [])),
            replace_channel=Channel.from_json(replace) if replace else None,
        )
    if kind == "StasisEnd" and channel:
        return StasisEnd(**base, channel=channel)
    if kind == "ChannelStateChange" and channel:
        return ChannelStateChange(**base, channel=channel)
    if kind == "ChannelDtmfReceived" and channel:
        return ChannelDtmfReceived(
            **base,
            channel=channel,
            digit=str(data.get("digit", "")),
            duration_ms=int(data.get("duration_ms", 0)),
        )
    if kind == "ChannelHangupRequest" and channel:
        return ChannelHangupRequest(
            **base,
            channel=channel,
            cause=_int_or_none(data.get("cause")),
            soft=bool(data.get("soft", False)),
        )
    if kind == "ChannelDestroyed" and channel:
        return ChannelDestroyed(
            **base,
            channel=channel,
            cause=_int_or_none(data.get("cause")),
            cause_txt=str(data.get("cause_txt", "")),
        )
    if kind in ("ChannelEnteredBridge", "ChannelLeftBridge") and channel and "bridge" in data:
        cls = ChannelEnteredBridge if kind == "ChannelEnteredBridge" else ChannelLeftBridge
        return cls(**base, channel=channel, bridge=Bridge.from_json(data["bridge"]))
    if kind in ("PlaybackStarted", "PlaybackFinished") and "playback" in data:
        pcls = PlaybackStarted if kind == "PlaybackStarted" else PlaybackFinished
        return pcls(**base, playback=Playback.from_json(data["playback"]))
    if kind in ("RecordingStarted", "RecordingFinished", "RecordingFailed") and "recording" in data:
        rcls = {
            "RecordingStarted": RecordingStarted,
            "RecordingFinished": RecordingFinished,
            "RecordingFailed": RecordingFailed,
        }[kind]
        return rcls(**base, recording=LiveRecording.from_json(data["recording"]))
    if kind == "ApplicationReplaced":
        return ApplicationReplaced(**base)
    return UnknownEvent(**base)
