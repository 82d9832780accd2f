"""Typed keys for everything the HTTP server keeps in its ``web.Application``."""

from __future__ import annotations

from aiohttp import web

from crm.clock import Clock
from crm.messages import MessageBox
from crm.queue_facts import QueueFacts
from crm.recordings import RecordingLog
from crm.staff import StaffDirectory
from crm.transcripts import TranscriptBook
from telephony.acd.dispatcher import Acd
from telephony.acd.live import LiveEvents
from telephony.acd.roster import AgentRoster
from telephony.ari.stream import EventStream, StreamStatus
from telephony.config import Config
from telephony.prompts import PromptLibrary
from telephony.recording.store import RecordingStore
from telephony.recording.transcriber import Transcriber
from telephony.stasis import StasisApp
from web.openapi import DocumentCache

CONFIG: web.AppKey[Config] = web.AppKey("config", Config)
STREAM_STATUS: web.AppKey[StreamStatus] = web.AppKey("stream_status", StreamStatus)
STREAM: web.AppKey[EventStream] = web.AppKey("stream", EventStream)
STASIS: web.AppKey[StasisApp] = web.AppKey("stasis", StasisApp)
PROMPTS: web.AppKey[PromptLibrary] = web.AppKey("prompts", PromptLibrary)
ACD: web.AppKey[Acd] = web.AppKey("acd", Acd)
ROSTER: web.AppKey[AgentRoster] = web.AppKey("roster", AgentRoster)
LIVE: web.AppKey[LiveEvents] = web.AppKey("live", LiveEvents)
MESSAGES: web.AppKey[MessageBox] = web.AppKey("messages", MessageBox)
RECORDINGS: web.AppKey[RecordingLog] = web.AppKey("recordings", RecordingLog)
RECORDING_STORE: web.AppKey[RecordingStore] = web.AppKey("recording_store", RecordingStore)
TRANSCRIPTS: web.AppKey[TranscriptBook] = web.AppKey("transcripts", TranscriptBook)
TRANSCRIBER: web.AppKey[Transcriber | None] = web.AppKey("transcriber")
CLOCK: web.AppKey[Clock] = web.AppKey("clock")
STAFF: web.AppKey[StaffDirectory] = web.AppKey("staff", StaffDirectory)
QUEUE_FACTS: web.AppKey[QueueFacts] = web.AppKey("queue_facts", QueueFacts)
OPENAPI: web.AppKey[DocumentCache] = web.AppKey("openapi", DocumentCache)
