"""Ended sessions leave the database: swept at start and every hour after.

A session a browser simply stopped using is refused as soon as it is presented, but its
row would stay for ever; the sweep keeps the table the size of the staff signed in.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from crm.clock import Clock
from crm.exceptions import CrmError
from crm.staff import StaffDirectory

log = logging.getLogger(__name__)

SWEEP_EVERY_S = 3600.0


async def sweep_sessions(staff: StaffDirectory, clock: Clock, idle: timedelta) -> None:
    while True:
        try:
            ended = await staff.purge_sessions(at=clock.now(), idle=idle)
        except CrmError as err:
            log.warning("session sweep failed (next in an hour): %s", err)
        else:
            if ended:
                log.info("session sweep: %d ended session(s) removed", ended)
        await asyncio.sleep(SWEEP_EVERY_S)
