"""Who may do what (service standards §6): every route closed by default, roles, sessions.

The whole service runs (Asterisk out of reach: nothing here needs a call), on a clock
the tests move, so session expiry and lock-out are checked at their boundaries.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import WSServerHandshakeError, web
from aiohttp.test_utils import TestClient, TestServer

from crm.staff import Role
from tests.clocks import ManualClock
from tests.staff import ADMIN, SUPERVISOR, cheap_hasher, issue_test_tokens, issue_token
from tests.test_service_http import unreachable_config
from web.app import build_app
from web.appkeys import LIVE, QUEUE_FACTS, STAFF
from web.auth import CSRF_HEADER, SESSION_COOKIE
from web.calls import CALL_LOG

Client = TestClient[web.Request, web.Application]
PASSWORD = "Ld8-correct-horse-7781"
OPEN = {("get", "/healthz"), ("get", "/prompts/{name}.wav")}


@dataclasses.dataclass
class Service:
    app: web.Application
    clock: ManualClock
    server: TestServer
    make_client: Callable[..., Any]

    async def client(self, **kw: Any) -> Client:
        """Another browser or program on the one running service."""
        client: Client = await self.make_client(self.server, **kw)
        return client

    def origin(self, client: Client) -> str:
        return str(client.make_url("/")).rstrip("/")

    async def add_agent(self, extension: str) -> int:
        async with (await self.client(headers=ADMIN)).post(
            "/api/agents",
            json={"name": f"坐席{extension}", "endpoint": f"PJSIP/{extension}", "skills": {}},
        ) as resp:
            assert resp.status == 201, await resp.text()
            agent_id: int = (await resp.json())["id"]
            return agent_id

    async def add_user(self, name: str, role: Role, agent_id: int | None = None) -> None:
        await self.app[STAFF].add_user(name, role, PASSWORD, agent_id=agent_id, at=self.clock.now())

    async def sign_in(self, name: str, password: str = PASSWORD) -> tuple[Client, str]:
        """A browser-like client signed in as ``name``, and the session's CSRF token."""
        client = await self.client()
        status = await login(client, name, password, origin=self.origin(client))
        assert status == 303
        async with client.get("/api/me") as resp:
            assert resp.status == 200
            csrf: str = (await resp.json())["csrf_token"]
        return client, csrf

    async def audit(self) -> list[dict[str, Any]]:
        async with (await self.client(headers=ADMIN)).get("/api/audit") as resp:
            assert resp.status == 200
            items: list[dict[str, Any]] = (await resp.json())["items"]
            return items


async def login(client: Client, name: str, password: str, *, origin: str) -> int:
    async with client.get("/login") as resp:
        token = re.search(r'name="csrf" value="([^"]+)"', await resp.text())
    assert token is not None
    form = {"csrf": token.group(1), "name": name, "password": password}
    async with client.post(
        "/login", data=form, headers={"Origin": origin}, allow_redirects=False
    ) as resp:
        return resp.status


@pytest.fixture
async def service(
    aiohttp_client: Callable[..., Any], aiohttp_server: Callable[..., Any], tmp_path: Path
) -> Service:
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
    app = build_app(unreachable_config(tmp_path), clock, passwords=cheap_hasher())
    server = await aiohttp_server(app)  # starts the app: migrations, the staff directory
    made = Service(app, clock, server, aiohttp_client)
    await issue_test_tokens(app)
    return made


def example(path: str) -> str:
    return path.replace("{name}", "greeting").replace("{rule}", "on-site").replace("{id}", "1")


async def test_every_route_in_the_document_answers_401_without_credentials(
    service: Service,
) -> None:
    """Closed by default: only health and the prompt audio Asterisk fetches stay open."""
    supervisor = await service.client(headers=SUPERVISOR)
    async with supervisor.get("/api/openapi.json") as resp:
        paths = (await resp.json())["paths"]
    anonymous = await service.client()
    checked = 0
    for path, operations in paths.items():
        for method in operations:
            if (method, path) in OPEN:
                continue
            async with anonymous.request(method.upper(), example(path), json={}) as resp:
                assert resp.status == 401, (method, path)
                body = await resp.json()
                assert body["error_id"] == "unauthorised"
                assert resp.headers["WWW-Authenticate"].startswith('Bearer realm="hotline"')
            checked += 1
    assert checked >= 40
    async with anonymous.get("/api/live") as resp:
        assert resp.status == 401
    async with anonymous.get("/healthz") as resp:
        assert resp.status == 503  # open, and honest: Asterisk is out of reach
    # A page sends the browser to the login page instead, and back after.
    async with anonymous.get("/", allow_redirects=False) as resp:
        assert resp.status == 303
        target = urlsplit(resp.headers["Location"])
        assert (target.path, parse_qs(target.query)) == ("/login", {"next": ["/"]})


@pytest.mark.parametrize(
    ("header", "status"),
    [
        ("Bearer {t}", 200),
        ("bearer {t}", 200),  # RFC 6750 / 7235: the scheme is case-insensitive
        ("BEARER {t}", 200),
        ("{t}", 401),  # a bare token is no scheme at all
        ("Basic {t}", 401),
        ("Bearer", 401),
        ("Bearer {t} extra", 401),
        ("Bearer {t}\u202e", 401),
    ],
)
async def test_bearer_tokens_follow_rfc_6750(service: Service, header: str, status: int) -> None:
    secret = SUPERVISOR["Authorization"].removeprefix("Bearer ")
    client = await service.client()
    async with client.get("/api/calls", headers={"Authorization": header.format(t=secret)}) as resp:
        assert resp.status == status
        if status == 401:
            assert 'error="invalid_request"' in resp.headers["WWW-Authenticate"]


async def test_a_revoked_or_expired_token_is_refused(service: Service) -> None:
    staff, now = service.app[STAFF], service.clock.now()
    secret = "hlt_integration-token-for-the-test-0001"
    await staff.issue_token(
        "erp", Role.SUPERVISOR, secret, expires_at=now + timedelta(days=1), at=now
    )
    client = await service.client(headers={"Authorization": f"Bearer {secret}"})
    async with client.get("/api/calls") as resp:
        assert resp.status == 200
    service.clock.advance(days=1, seconds=1)
    async with client.get("/api/calls") as resp:
        assert resp.status == 401
        assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]

    other = await issue_token(service.app, Role.SUPERVISOR, name="crm-sync")
    client = await service.client(headers=other)
    async with client.get("/api/calls") as resp:
        assert resp.status == 200
    await staff.revoke_token("crm-sync", at=service.clock.now())
    async with client.get("/api/calls") as resp:
        assert resp.status == 401


async def test_roles_see_and_do_only_their_part(service: Service) -> None:
    mine, theirs = await service.add_agent("1001"), await service.add_agent("1002")
    await service.add_user("li", Role.AGENT, mine)
    agent, csrf = await service.sign_in("li")
    origin = {"Origin": service.origin(agent), CSRF_HEADER: csrf}
    expected = [
        ("GET", "/api/calls", 200),
        ("GET", "/api/queues", 200),
        ("GET", "/api/cases", 200),
        ("GET", "/api/transcription/jobs", 403),
        ("GET", "/api/audit", 403),
        ("POST", "/api/agents", 403),
        ("DELETE", f"/api/agents/{theirs}", 403),
        ("POST", f"/api/agents/{theirs}/state", 403),  # another agent's phone
        ("POST", f"/api/agents/{mine}/state", 200),  # their own
    ]
    for method, path, status in expected:
        body = {"action": "log-in"} if path.endswith("/state") else {}
        async with agent.request(method, path, json=body, headers=origin) as resp:
            assert resp.status == status, (method, path, await resp.text())

    admin = await service.client(headers=ADMIN)
    for path in ("/api/cases", "/api/residents", "/api/calls/1/transcript"):
        async with admin.get(path) as resp:
            assert resp.status == 403, path  # runs the installation, reads no resident's data
    async with admin.get("/api/calls") as resp:
        assert resp.status == 200


async def test_a_change_is_recorded_as_whoever_made_it(service: Service) -> None:
    """A case history names the person signed in, not whom the body names; a token's
    change names the token beside the person its integration says it acts for."""
    await service.add_user("wang", Role.SUPERVISOR)
    browser, csrf = await service.sign_in("wang")
    headers = {"Origin": service.origin(browser), CSRF_HEADER: csrf}
    case = {"kind": "inquiry", "channel": "email", "summary": "咨询停车"}
    async with browser.post("/api/cases", json={**case, "by": "李四"}, headers=headers) as resp:
        assert resp.status == 400
        refusal = await resp.json()
        assert refusal["details"]["field"] == "by"
        assert "wang" in refusal["details"]["reason"]
    async with browser.post("/api/cases", json={**case, "by": " wang "}, headers=headers) as resp:
        assert resp.status == 201  # naming yourself is no lie
    async with browser.post("/api/cases", json=case, headers=headers) as resp:
        assert resp.status == 201
        mine = (await resp.json())["id"]
    token = await service.client(headers=SUPERVISOR)
    async with token.post("/api/cases", json={**case, "by": "王班长"}) as resp:
        assert resp.status == 201
        on_behalf = (await resp.json())["id"]
    async with token.post("/api/cases", json=case) as resp:
        assert resp.status == 201
        bare = (await resp.json())["id"]
    async with token.post("/api/cases", json={**case, "by": "王" * 79}) as resp:
        assert resp.status == 400  # with the token's name it would not fit the audit's field

    async def opened_by(case_id: int) -> set[str]:
        async with token.get(f"/api/cases/{case_id}/timeline") as resp:
            assert resp.status == 200, await resp.text()
            return {entry["by"] for entry in (await resp.json())["items"]}

    assert await opened_by(mine) == {"wang"}
    assert await opened_by(on_behalf) == {"王班长 (token:tests)"}
    assert await opened_by(bare) == {"token:tests"}


async def test_an_agent_hears_only_the_calls_they_took_and_every_try_is_audited(
    service: Service,
) -> None:
    mine, theirs = await service.add_agent("1001"), await service.add_agent("1002")
    await service.add_user("li", Role.AGENT, mine)
    await service.add_user("wang", Role.AGENT, theirs)
    now = service.clock.now()
    call_id = await service.app[CALL_LOG].open_call(
        channel_id="test-1", caller_number="13800138000", caller_name=None,
        dialled_number="400", started_at=now,
    )  # fmt: skip
    facts = service.app[QUEUE_FACTS]
    entry = await facts.enter(call_id=call_id, queue="repair", tag=None, priority=0, at=now)
    await facts.answered(entry, agent_id=theirs, at=now)

    li, _ = await service.sign_in("li")
    wang, _ = await service.sign_in("wang")
    async with li.get(f"/api/calls/{call_id}/transcript") as resp:
        assert resp.status == 403
    async with wang.get(f"/api/calls/{call_id}/transcript") as resp:
        assert resp.status == 200
    async with (await service.client(headers=ADMIN)).get(
        f"/api/calls/{call_id}/transcript"
    ) as resp:
        assert resp.status == 403

    rows = [r for r in await service.audit() if r["action"] != "sign-in"]
    by_actor = {(r["actor"], r["granted"]) for r in rows}
    assert ("li", False) in by_actor
    assert ("wang", True) in by_actor
    assert ("tests-admin", False) in {
        (r["actor"].removeprefix("token:"), r["granted"]) for r in rows
    }
    denied = next(r for r in rows if r["actor"] == "li")
    assert denied["target"] == f"call {call_id}"
    assert denied["address"] == "127.0.0.1"
    assert "only calls they took" in denied["reason"]


async def test_an_agents_phone_points_only_at_an_internal_extension_set_by_an_admin(
    service: Service,
) -> None:
    """Toll fraud: a phone pointed at the residents' trunk would ring outside numbers."""
    agent_id = await service.add_agent("1001")
    admin = await service.client(headers=ADMIN)
    supervisor = await service.client(headers=SUPERVISOR)
    fraud = {"endpoint": "PJSIP/13800138000@residents-trunk"}
    async with admin.patch(f"/api/agents/{agent_id}", json=fraud) as resp:
        assert resp.status == 400
        assert (await resp.json())["details"]["field"] == "endpoint"
    async with supervisor.patch(f"/api/agents/{agent_id}", json={"endpoint": "PJSIP/1003"}) as resp:
        assert resp.status == 403
    async with supervisor.patch(f"/api/agents/{agent_id}", json={"skills": {"repair": 3}}) as resp:
        assert resp.status == 200  # skills are the floor's business
    async with admin.patch(f"/api/agents/{agent_id}", json={"endpoint": "PJSIP/1003"}) as resp:
        assert resp.status == 200
        assert (await resp.json())["endpoint"] == "PJSIP/1003"
    rows = [r for r in await service.audit() if r["action"] == "set-endpoint"]
    assert [(r["granted"], r["reason"]) for r in reversed(rows)] == [
        (True, ""),  # the agent added by service.add_agent
        (False, "not internal"),
        (False, "not an admin"),
        (True, ""),
    ]


async def test_a_cookie_request_needs_our_origin_its_csrf_token_and_json(service: Service) -> None:
    agent_id = await service.add_agent("1001")
    await service.add_user("li", Role.AGENT, agent_id)
    browser, csrf = await service.sign_in("li")
    path, body = f"/api/agents/{agent_id}/state", {"action": "log-in"}
    ours = service.origin(browser)
    refusals = [
        ({"Origin": ours}, "csrf"),  # no token
        ({"Origin": ours, CSRF_HEADER: "forged" * 4}, "csrf"),
        ({"Origin": "https://evil.example", CSRF_HEADER: csrf}, "bad-origin"),
        ({CSRF_HEADER: csrf}, "bad-origin"),  # says nowhere where it comes from
    ]
    for headers, error_id in refusals:
        async with browser.post(path, json=body, headers=headers) as resp:
            assert resp.status == 403, headers
            assert (await resp.json())["error_id"] == error_id
    # JSON sent as text/plain (what a foreign page's form can send without asking).
    async with browser.post(
        path,
        data=b'{"action": "log-in"}',
        headers={"Origin": ours, CSRF_HEADER: csrf, "Content-Type": "text/plain"},
    ) as resp:
        assert resp.status == 415
    async with browser.get(f"/api/agents/{agent_id}") as resp:
        assert (await resp.json())["state"] == "logged-out"  # nothing got through
    async with browser.post(path, json=body, headers={"Origin": ours, CSRF_HEADER: csrf}) as resp:
        assert resp.status == 200
    # A program holding a bearer token is no browser: no origin or CSRF token needed.
    async with (await service.client(headers=SUPERVISOR)).post(
        path, json={"action": "ready"}
    ) as resp:
        assert resp.status == 200


async def test_the_live_feed_refuses_a_foreign_page(service: Service) -> None:
    await service.add_user("zhao", Role.SUPERVISOR)
    browser, _ = await service.sign_in("zhao")
    with pytest.raises(WSServerHandshakeError) as refused:
        await browser.ws_connect("/api/live", headers={"Origin": "https://evil.example"})
    assert refused.value.status == 403
    ws = await browser.ws_connect("/api/live", headers={"Origin": service.origin(browser)})
    first = await ws.receive_json(timeout=10)
    assert first["type"] == "snapshot"
    await ws.close()


async def test_an_agents_console_feed_is_theirs_alone(service: Service) -> None:
    """Only a user with an agent opens it, from our own page; it says only their phone."""
    mine = await service.add_agent("1001")
    await service.add_user("li", Role.AGENT, mine)
    await service.add_user("zhao", Role.SUPERVISOR)
    supervisor, _ = await service.sign_in("zhao")
    ours = {"Origin": service.origin(supervisor)}
    with pytest.raises(WSServerHandshakeError) as refused:
        await supervisor.ws_connect("/api/console/feed", headers=ours)
    assert refused.value.status == 403  # no agent of their own
    agent, _ = await service.sign_in("li")
    with pytest.raises(WSServerHandshakeError) as refused:
        await agent.ws_connect("/api/console/feed", headers={"Origin": "https://evil.example"})
    assert refused.value.status == 403
    ws = await agent.ws_connect("/api/console/feed", headers=ours)
    first = await ws.receive_json(timeout=10)
    assert (first["type"], first["agent"]["id"], first["agent"]["state"]) == (
        "me", mine, "logged-out",
    )  # fmt: skip
    await ws.close()


async def test_the_login_page_speaks_chinese_first_and_english_on_request(
    service: Service,
) -> None:
    client = await service.client()
    async with client.get("/login") as resp:
        html = await resp.text()
        assert resp.headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert '<html lang="zh-CN">' in html
    assert "用户名" in html
    assert "密码" in html
    assert "http://" not in html
    assert "https://" not in html
    async with client.get("/login?lang=en") as resp:
        html = await resp.text()
    assert '<html lang="en">' in html
    assert "Sign in" in html
    async with client.get("/login") as resp:  # the choice is remembered
        assert '<html lang="en">' in await resp.text()
    async with client.get("/static/hotline.css") as resp:
        assert resp.status == 200
        assert "PingFang SC" in await resp.text()


async def test_a_login_form_posted_from_elsewhere_is_refused(service: Service) -> None:
    await service.add_user("zhao", Role.SUPERVISOR)
    client = await service.client()
    form = {"csrf": "x" * 32, "name": "zhao", "password": PASSWORD}
    async with client.post("/login", data=form, headers={"Origin": service.origin(client)}) as resp:
        assert resp.status == 403  # no form of ours was read first
    assert await login(client, "zhao", PASSWORD, origin="https://evil.example") == 403
    assert SESSION_COOKIE not in {c.key for c in client.session.cookie_jar}


async def test_repeated_failures_lock_the_account_for_a_while(service: Service) -> None:
    await service.add_user("zhao", Role.SUPERVISOR)
    client = await service.client()
    origin = service.origin(client)
    for _ in range(4):
        assert await login(client, "zhao", "wrong-password-1", origin=origin) == 401
    assert await login(client, "zhao", "wrong-password-1", origin=origin) == 429
    assert await login(client, "zhao", PASSWORD, origin=origin) == 429  # even the right one
    service.clock.advance(minutes=15, seconds=1)
    assert await login(client, "zhao", PASSWORD, origin=origin) == 303
    reasons = [r["reason"] for r in await service.audit() if r["action"] == "sign-in"]
    assert reasons[0] == ""
    assert reasons[1] == "locked"
    assert reasons.count("wrong") == 4


async def test_an_idle_or_old_session_ends_at_the_login_page(service: Service) -> None:
    await service.add_user("zhao", Role.SUPERVISOR)
    browser, _ = await service.sign_in("zhao")
    service.clock.advance(minutes=29)
    async with browser.get("/api/me") as resp:
        assert resp.status == 200  # still within the 30 idle minutes
    service.clock.advance(minutes=31)
    async with browser.get("/", allow_redirects=False) as resp:
        assert resp.status == 303
        assert resp.headers["Location"].endswith("&expired=1")
    async with browser.get("/login?expired=1") as resp:
        assert "登录已过期" in await resp.text()
    async with browser.get("/api/me") as resp:
        assert resp.status == 401

    busy, _ = await service.sign_in("zhao")
    for _ in range(12 * 3):  # active every 20 minutes, for 12 hours
        service.clock.advance(minutes=20)
        async with busy.get("/api/me") as resp:
            last = resp.status
            if last != 200:
                break
    assert last == 401  # the absolute limit ends even a busy session


async def test_signing_out_ends_the_session(service: Service) -> None:
    await service.add_user("zhao", Role.SUPERVISOR)
    browser, csrf = await service.sign_in("zhao")
    cookie = next(c.value for c in browser.session.cookie_jar if c.key == SESSION_COOKIE)
    async with browser.get("/") as resp:
        page = await resp.text()
        assert "zhao" in page
        assert "退出登录" in page
    async with browser.post(
        "/logout",
        data={"csrf": csrf},
        headers={"Origin": service.origin(browser)},
        allow_redirects=False,
    ) as resp:
        assert resp.status == 303
    replay = await service.client()
    async with replay.get("/api/me", cookies={SESSION_COOKIE: cookie}) as resp:
        assert resp.status == 401  # the old cookie names no session any more


async def test_passwords_and_secrets_stay_out_of_logs_and_the_database(
    service: Service, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG)
    await service.add_user("zhao", Role.SUPERVISOR)
    client = await service.client()
    assert await login(client, "zhao", "a-wrong-Password-9", origin=service.origin(client)) == 401
    browser, _ = await service.sign_in("zhao")
    cookie = next(c.value for c in browser.session.cookie_jar if c.key == SESSION_COOKIE)
    stored = b"".join(f.read_bytes() for f in sorted(tmp_path.glob("h.db*")))  # noqa: ASYNC240
    assert stored
    for secret in (PASSWORD, "a-wrong-Password-9", cookie):
        assert secret not in caplog.text
        assert secret.encode() not in stored


async def test_numbers_are_masked_but_where_the_user_needs_them(service: Service) -> None:
    """Standards §6: a supervisor sees all; an agent the calls they took and the cases
    they own; an admin no full number anywhere; the live feed none for anyone."""
    mine = await service.add_agent("1001")
    await service.add_user("li", Role.AGENT, mine)
    now = service.clock.now()
    calls, facts = service.app[CALL_LOG], service.app[QUEUE_FACTS]
    ids = {}
    for number in ("13800001111", "13900002222"):
        ids[number] = await calls.open_call(
            channel_id=f"test-{number}", caller_number=number, caller_name="张三丰",
            dialled_number="4001234567", started_at=now,
        )  # fmt: skip
    entry = await facts.enter(
        call_id=ids["13800001111"], queue="repair", tag=None, priority=0, at=now
    )
    await facts.answered(entry, agent_id=mine, at=now)
    supervisor = await service.client(headers=SUPERVISOR)
    for owner, phone in ((mine, "13700003333"), (None, "13600004444")):
        async with supervisor.post(
            "/api/cases",
            json={
                "kind": "inquiry", "channel": "email", "summary": "咨询装修押金",
                "by": "王班长", "phone": phone, "owner_agent_id": owner,
            },
        ) as resp:  # fmt: skip
            assert resp.status == 201, await resp.text()

    async def numbers(client: Client, path: str, key: str) -> set[str]:
        async with client.get(path) as resp:
            assert resp.status == 200, await resp.text()
            return {item[key] for item in (await resp.json())["items"]}

    li, _ = await service.sign_in("li")
    admin = await service.client(headers=ADMIN)
    assert await numbers(supervisor, "/api/calls", "caller_number") == {
        "13800001111",
        "13900002222",
    }
    assert await numbers(li, "/api/calls", "caller_number") == {"13800001111", "139****2222"}
    assert await numbers(admin, "/api/calls", "caller_number") == {"138****1111", "139****2222"}
    assert await numbers(li, "/api/calls", "caller_name") == {"张三丰", "张**"}
    async with li.get(f"/api/calls/{ids['13900002222']}") as resp:
        assert (await resp.json())["caller_number"] == "139****2222"
    assert await numbers(li, "/api/cases", "phone") == {"13700003333", "136****4444"}
    assert await numbers(supervisor, "/api/cases", "phone") == {"13700003333", "13600004444"}

    ws = await li.ws_connect("/api/live", headers={"Origin": service.origin(li)})
    assert (await ws.receive_json(timeout=10))["type"] == "snapshot"
    service.app[LIVE].publish("alert", caller_number="13911112222", queue="emergency")
    event = await ws.receive_json(timeout=10)
    assert event["caller_number"] == "139****2222"
    await ws.close()


async def test_only_a_trusted_proxy_says_who_the_client_is(
    aiohttp_client: Callable[..., Any], aiohttp_server: Callable[..., Any], tmp_path: Path
) -> None:
    """The audit names the address the proxy saw, and the cookies are Secure when it says
    https; from anyone else the same headers are ignored (anybody can write them)."""
    forwarded = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    cases = (((), "127.0.0.1", False), (("127.0.0.0/8",), "203.0.113.9", True))
    for trusted, address, secure in cases:
        config = unreachable_config(tmp_path / str(len(trusted)))
        config = dataclasses.replace(
            config, access=dataclasses.replace(config.access, trusted_proxies=trusted)
        )
        clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
        app = build_app(config, clock, passwords=cheap_hasher())
        service = Service(app, clock, await aiohttp_server(app), aiohttp_client)
        await issue_test_tokens(app)
        client = await service.client(headers={**forwarded, **SUPERVISOR})
        async with client.get("/login") as resp:
            assert ("Secure" in resp.headers["Set-Cookie"]) is secure
        async with client.get("/api/calls/1/transcript") as resp:
            assert resp.status == 200
        (row,) = [r for r in await service.audit() if r["action"] == "transcript"]
        assert row["address"] == address
