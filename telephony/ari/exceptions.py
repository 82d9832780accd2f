"""Errors raised by the ARI client.

    AriError
    ├── AriUnavailable   Asterisk could not be reached (refused, reset, timed out)
    └── AriHttpError     Asterisk answered with an HTTP error; carries its message
        ├── AriNotFound  404: the channel, bridge or playback is gone (often a hang-up race)
        └── AriConflict  409: the resource is in the wrong state (e.g. channel not in Stasis)

aiohttp's errors are translated here at the boundary so callers never handle them.
"""

from __future__ import annotations


class AriError(Exception):
    """Base of every ARI client error."""


class AriUnavailable(AriError):
    """Raised when Asterisk does not answer at all; the call may be retried later."""


class AriHttpError(AriError):
    """Raised for a 4xx/5xx answer; ``message`` is Asterisk's own explanation."""

    def __init__(self, status: int, method: str, path: str, message: str) -> None:
        super().__init__(f"{method} {path}: HTTP {status}: {message}")
        self.status = status
        self.method = method
        self.path = path
        self.message = message


class AriNotFound(AriHttpError):
    """Raised for 404: the resource no longer exists."""


class AriConflict(AriHttpError):
    """Raised for 409: the resource exists but is not in a state that allows the request."""
