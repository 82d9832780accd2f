"""Logging set-up: one line per record with the call's ids when the record carries them.

Caller numbers are personal data (service standards §6): log lines show only their last
four digits, through ``redact_number``.
"""

from __future__ import annotations

import logging

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


def redact_number(number: str | None) -> str:
    if not number:
        return "-"
    return "*" * max(0, len(number) - 4) + number[-4:]
