"""Logging set-up: one line per record with the call's ids when the record carries them.

Caller numbers are personal data (service standards §6): log lines show only their last
four digits, through ``redact_number``.

A request the HTTP parser cannot read is the client's mistake, not ours: aiohttp logs
each at ERROR with a traceback, so anyone able to open a socket could fill the log with
them and bury real faults. ``quiet_bad_requests`` makes those one INFO line each; a
handler's own failure (a 500) stays at ERROR with its traceback.
"""

from __future__ import annotations

import logging

from aiohttp.http_exceptions import HttpProcessingError

FIELDS = ("call_id", "channel_id", "case_id")


class _ContextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = [
            f"{k}={getattr(record, k)}" for k in FIELDS if getattr(record, k, None) is not None
        ]
        return f"{line} [{' '.join(extras)}]" if extras else line


def setup_logging(*, verbose: bool = False) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(_ContextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


class _BadRequestsAtInfo(logging.Filter):
    """Rewrites aiohttp.server's record of a request refused by the parser (4xx)."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError) and 400 <= error.code < 500:
            # The parser's message quotes the client's bytes: one line, bounded, escaped.
            said = " ".join(error.message.split())[:200]
            remote = record.args[0] if isinstance(record.args, tuple) and record.args else "-"
            record.msg = "bad request refused: %d %s %r from %s"
            record.args = (error.code, type(error).__name__, said, remote)
            # aiohttp keeps a scanner's first bad method at DEBUG; never raise a level.
            level = min(record.levelno, logging.INFO)
            record.levelno, record.levelname = level, logging.getLevelName(level)
            record.exc_info, record.exc_text = None, None
        return True


def quiet_bad_requests() -> None:
    """Log requests the HTTP parser refuses at INFO without a traceback (see above)."""
    server = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, _BadRequestsAtInfo) for f in server.filters):
        server.addFilter(_BadRequestsAtInfo())


def redact_number(number: str | None) -> str:
    if not number:
        return "-"
    return "*" * max(0, len(number) - 4) + number[-4:]
