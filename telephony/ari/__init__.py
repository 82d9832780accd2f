"""A small typed asyncio client for the Asterisk REST Interface (ARI).

Generic on purpose (nothing hotline-specific) so it could live as its own library:
``client`` does REST calls on one aiohttp session, ``events`` turns websocket JSON into
typed events, ``stream`` keeps the ``/ari/events`` websocket alive across Asterisk
restarts, and ``models`` holds the resources both return.
"""

from telephony.ari.client import AriClient
from telephony.ari.exceptions import (
    AriConflict,
    AriError,
    AriHttpError,
    AriNotFound,
    AriUnavailable,
)
from telephony.ari.stream import EventStream, StreamStatus, listening

__all__ = [
    "AriClient",
    "AriConflict",
    "AriError",
    "AriHttpError",
    "AriNotFound",
    "AriUnavailable",
    "EventStream",
    "StreamStatus",
    "listening",
]
