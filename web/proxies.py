"""What a TLS-terminating reverse proxy in front of us says about a request.

Only a proxy the admin listed (``[access] trusted_proxies``) is believed: anyone else
could write ``X-Forwarded-For`` to put another address in the access audit, or
``X-Forwarded-Proto: https`` to be given a Secure cookie over plain HTTP.
"""

from __future__ import annotations

import ipaddress

from aiohttp import web

from web.appkeys import CONFIG


def request_scheme(request: web.Request) -> str:
    if _from_trusted_proxy(request):
        forwarded = request.headers.get("X-Forwarded-Proto", "").strip().lower()
        if forwarded in ("http", "https"):
            return forwarded
    return request.scheme


def client_address(request: web.Request) -> str:
    """The caller's address: behind a trusted proxy, the last hop it saw."""
    if _from_trusted_proxy(request):
        hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",")]
        if hops and hops[-1]:
            return hops[-1]
    return request.remote or "-"


def _from_trusted_proxy(request: web.Request) -> bool:
    proxies = request.app[CONFIG].access.trusted_proxies
    if not proxies or request.remote is None:
        return False
    try:
        remote = ipaddress.ip_address(request.remote)
    except ValueError:
        return False
    return any(remote in ipaddress.ip_network(p, strict=False) for p in proxies)
