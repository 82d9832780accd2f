"""The access audit: every playback, download, export and unmasking, granted or not.

Rows name the user, their address and what they asked for; a denied one says why, so an
admin can see who tried to open what they should not (service standards §6).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from web.appkeys import CLOCK, STAFF
from web.proxies import client_address

if TYPE_CHECKING:
    from web.auth import Principal


async def record_access(
    request: web.Request,
    principal: Principal | None,
    action: str,
    target: str,
    *,
    granted: bool,
    reason: str = "",
) -> None:
    await request.app[STAFF].audit(
        at=request.app[CLOCK].now(),
        user_id=principal.user_id if principal else None,
        actor=principal.label if principal else "?",
        address=client_address(request),
        action=action,
        target=target,
        granted=granted,
        reason=reason,
    )
