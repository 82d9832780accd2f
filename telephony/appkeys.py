"""Typed keys for everything the HTTP server keeps in its ``web.Application``."""

from __future__ import annotations

from aiohttp import web

from telephony.ari.stream import EventStream, StreamStatus
from telephony.config import Config
from telephony.prompts import PromptLibrary
from telephony.stasis import StasisApp

CONFIG: web.AppKey[Config] = web.AppKey("config", Config)
STREAM_STATUS: web.AppKey[StreamStatus] = web.AppKey("stream_status", StreamStatus)
STREAM: web.AppKey[EventStream] = web.AppKey("stream", EventStream)
STASIS: web.AppKey[StasisApp] = web.AppKey("stasis", StasisApp)
PROMPTS: web.AppKey[PromptLibrary] = web.AppKey("prompts", PromptLibrary)
