"""Errors of the telephony service.

    HotlineError
    ├── ConfigError          bad configuration, raised at start (file, key, reason)
    ├── IllegalTransition    a state machine got an event its state does not accept
    ├── PromptError          prompt audio could not be generated or found
    ├── ModelError           a Vosk model folder is missing, incomplete or of the wrong kind
    └── AudioError           a recording cannot be decoded (empty, truncated, not PCM)

ARI's own errors live in ``telephony.ari.exceptions``.
"""

from __future__ import annotations


class HotlineError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigError(HotlineError):
    """Raised while loading config; names the file, the key and why it was refused."""

    def __init__(self, source: str, key: str, reason: str) -> None:
        super().__init__(f"{source}: {key}: {reason}")
        self.source = source
        self.key = key
        self.reason = reason


class IllegalTransition(HotlineError):
    """Raised by a state machine's ``apply`` for a (state, event) pair not in its table."""

    def __init__(self, machine: str, state: str, event: str) -> None:
        super().__init__(f"{machine}: event {event!r} not allowed in state {state!r}")
        self.machine = machine
        self.state = state
        self.event = event


class PromptError(HotlineError):
    """Raised when prompt audio cannot be generated (espeak-ng/sox missing or failing)."""


class ModelError(HotlineError):
    """Raised when the speech model cannot be used; says which folder and what to run."""

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(
            f"speech model {path}: {reason} "
            "(see `hotline models check` and `hotline models download`)"
        )
        self.path = path
        self.reason = reason

    def __reduce__(self) -> tuple[type[ModelError], tuple[object, str]]:
        return (type(self), (self.path, self.reason))  # crosses from decoder processes


class AudioError(HotlineError):
    """Raised for audio that cannot be transcribed; the reason is stored on the job."""
