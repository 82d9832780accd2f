"""A table-driven state machine shared by calls and the IVR.

A state holds only the transitions its table lists; anything else raises
``IllegalTransition`` rather than being ignored, so a missing case shows up as an error
with the call's id instead of as a call silently stuck in the wrong state.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from enum import StrEnum
from typing import Generic, TypeVar

from telephony.exceptions import IllegalTransition

S = TypeVar("S", bound=StrEnum)
E = TypeVar("E", bound=StrEnum)

log = logging.getLogger(__name__)


class Machine(Generic[S, E]):
    def __init__(
        self, name: str, table: Mapping[tuple[S, E], S], initial: S, *, call_id: str = ""
    ) -> None:
        self.name = name
        self._table = table
        self.state = initial
        self.call_id = call_id

    def can(self, event: E) -> bool:
        return (self.state, event) in self._table

    def apply(self, event: E) -> S:
        try:
            new = self._table[(self.state, event)]
        except KeyError:
            raise IllegalTransition(self.name, self.state, event) from None
        log.info(
            "%s %s --%s--> %s",
            self.name,
            self.state,
            event,
            new,
            extra={"call_id": self.call_id, "machine": self.name},
        )
        self.state = new
        return new
