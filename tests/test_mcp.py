"""The MCP server at /mcp on a live uvicorn server, through the SDK's streamable HTTP client:
tools, resources and prompts as the token's user, the same permissions and anonymity as
GraphQL, bearer auth (401), Origin (403) and Host (421) checks, quotas; and `qiaoqiao mcp`
over stdio."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import httpx2
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from starlette.applications import Starlette

from src.app import create_app
from src.config import Settings, reveal
from tests.ai_helpers import SESSIONS, indexed, populate
from tests.fakes.wechat import FakeWechat
from tests.helpers import GraphQLClient, LiveServer, live_server, sql

ME = "{ me { id } }"


@contextlib.asynccontextmanager
async def mcp_client(
    server: LiveServer, token: str, headers: dict[str, str] | None = None
) -> AsyncIterator[ClientSession]:
    sent = {"authorization": f"Bearer {token}", **(headers or {})}
    async with (
        httpx2.AsyncClient(headers=sent) as http,
        streamable_http_client(server.url + "/mcp", http_client=http) as (read, write, *_),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


async def call(session: ClientSession, tool: str, **arguments: Any) -> Any:
    result = await session.call_tool(tool, arguments)
    text = result.content[0].text  # type: ignore[union-attr]
    assert not result.is_error, text
    return json.loads(text)


async def call_error(session: ClientSession, tool: str, **arguments: Any) -> str:
    result = await session.call_tool(tool, arguments)
    assert result.is_error
    text: str = result.content[0].text  # type: ignore[union-attr]
    prefix = f"Error executing tool {tool}: "
    assert text.startswith(prefix), text
    return text.removeprefix(prefix)


World = tuple[Starlette, LiveServer, GraphQLClient, dict[str, str], dict[str, str]]


async def _world(settings: Settings) -> AsyncIterator[World]:
    app = create_app(settings)
    async with (
        live_server(app) as server,
        httpx.AsyncClient(base_url=server.url) as http,
    ):
        gql = GraphQLClient(http)
        tokens = await populate(gql)
        ids = {
            name: (await gql(ME, token=token)).data["me"]["id"] for name, token in tokens.items()
        }
        yield app, server, gql, tokens, ids


@pytest.fixture
async def world(settings: Settings) -> AsyncIterator[World]:
    async for w in _world(settings.model_copy(update={"vector_worker": True})):
        await indexed(w[0])
        yield w


@pytest.fixture
async def plain_world(settings: Settings) -> AsyncIterator[World]:
    """No vector worker: for tests that never search."""
    async for w in _world(settings):
        yield w


async def test_tools_resources_and_prompts_over_http(world: World) -> None:
    app, server, gql, tokens, ids = world
    async with mcp_client(server, tokens["viewer"]) as mcp:
        tools = {t.name for t in (await mcp.list_tools()).tools}
        assert tools == {
            "search_users",
            "get_profile",
            "suggest_profile_improvements",
            "send_whisper",
            "list_whispers",
        }
        found = await call(mcp, "search_users", query="喜欢徒步和登山的人", first=2)
        names = [p["nickname"] for p in found["people"]]
        assert len(names) == 2 and set(names) <= {"pm_hiker", "climber", "designer"}
        shanghai = await call(mcp, "search_users", query="hiking", city="Shanghai")
        assert [p["nickname"] for p in shanghai["people"]] == ["pm_hiker"]

        other = await call(mcp, "get_profile", userId=ids["pm_hiker"])
        assert other["nickname"] == "pm_hiker" and "birthDate" not in other
        mine = await call(mcp, "get_profile")
        assert mine["id"] == ids["viewer"] and "birthDate" in mine
        # One casing for every key, the GraphQL API's (it mixed avatar_url with birthDate).
        assert [k for k in [*mine, *other] if "_" in k] == []
        # A misnamed argument is refused, never dropped (which answered with your own profile).
        wrong = await call_error(mcp, "get_profile", user_id=ids["pm_hiker"])
        assert wrong.startswith("INVALID_INPUT: unknown argument(s) user_id"), wrong

        advice = await call(mcp, "suggest_profile_improvements")
        assert advice["usedModel"] is None
        assert {"bio", "interests", "city"} <= {s["field"] for s in advice["suggestions"]}

        resources = {str(r.uri) for r in (await mcp.list_resources()).resources}
        assert resources == {"qiaoqiao://me/profile", "qiaoqiao://schema.graphql"}
        profile = await mcp.read_resource("qiaoqiao://me/profile")
        assert json.loads(profile.contents[0].text)["nickname"] == "viewer"  # type: ignore[union-attr]
        sdl = (await mcp.read_resource("qiaoqiao://schema.graphql")).contents[0].text  # type: ignore[union-attr]
        assert "type Query" in sdl and "aiChat(message: String!" in sdl

        prompts = {p.name for p in (await mcp.list_prompts()).prompts}
        assert prompts == {"icebreaker", "profile_review"}
        ice = await mcp.get_prompt("icebreaker", {"userId": ids["pm_hiker"]})
        text = ice.messages[0].content.text  # type: ignore[union-attr]
        assert "I love hiking and mountains" in text and '"nickname":"viewer"' in text
        review = await mcp.get_prompt("profile_review", {})
        assert "Findings" in review.messages[0].content.text  # type: ignore[union-attr]

    # search_users and suggestions are AI requests: metered and recorded as metadata.
    sessions = (await gql(SESSIONS, token=tokens["viewer"])).data["aiSessions"]
    assert sorted(e["node"]["kind"] for e in sessions["edges"]) == [
        "search",
        "search",
        "suggestions",
    ]
    used = await sql(
        app,
        "SELECT used FROM user_quotas WHERE kind = 'AI_REQUEST' AND user_id = :u",
        u=uuid.UUID(ids["viewer"]),
    )
    assert used == 3


async def test_hidden_and_blocked_people_look_missing(plain_world: World) -> None:
    _, server, gql, tokens, ids = plain_world
    await gql(
        "mutation ($i: ProfileInput!) { updateProfile(input: $i) { errors { code } } }",
        {"i": {"discoverable": False}},
        token=tokens["designer"],
    )
    await gql(
        "mutation ($u: ID!) { blockUser(userId: $u) { errors { code } } }",
        {"u": ids["viewer"]},
        token=tokens["climber"],
    )
    async with mcp_client(server, tokens["viewer"]) as mcp:
        missing = await call_error(mcp, "get_profile", userId=str(uuid.uuid4()))
        hidden = await call_error(mcp, "get_profile", userId=ids["designer"])
        blocked = await call_error(mcp, "get_profile", userId=ids["climber"])
        assert missing == hidden == blocked == "NOT_FOUND: No such user."
        prompt_error = None
        try:
            await mcp.get_prompt("icebreaker", {"userId": ids["designer"]})
        except Exception as exc:  # the SDK raises the protocol error
            prompt_error = str(exc)
        assert prompt_error is not None and "No such user" in prompt_error


async def test_whispers_keep_the_anonymous_sender_hidden(plain_world: World) -> None:
    _, server, _gql, tokens, ids = plain_world
    async with mcp_client(server, tokens["viewer"]) as sender:
        sent = await call(
            sender, "send_whisper", recipientId=ids["pm_hiker"], content="你好，徒步吗？"
        )
        assert sent["isAnonymous"] is True and sent["senderId"] == ids["viewer"]
        assert sent["recipientId"] == ids["pm_hiker"]

    seen: list[Any] = []
    async with mcp_client(server, tokens["pm_hiker"]) as recipient:
        inbox = await call(recipient, "list_whispers")
        seen.append(inbox)
        (whisper,) = inbox["whispers"]
        assert whisper["content"] == "你好，徒步吗？"
        assert whisper["senderId"] is None and whisper["isMine"] is False
        reply = await call(
            recipient, "send_whisper", replyToId=whisper["id"], content="好啊！周末？"
        )
        seen.append(reply)
        assert reply["recipientId"] is None and reply["replyToId"] == whisper["id"]
        seen.append(await call(recipient, "list_whispers", box="sent"))
        seen.append(await call(recipient, "list_whispers", unreadOnly=True))
    assert ids["viewer"] not in json.dumps(seen)  # no path from the recipient to the sender

    async with mcp_client(server, tokens["viewer"]) as sender:
        inbox = await call(sender, "list_whispers")
        assert [w["content"] for w in inbox["whispers"]] == ["好啊！周末？"]
        assert inbox["whispers"][0]["senderId"] is None  # the reply is anonymous too

    async with mcp_client(server, tokens["climber"]) as outsider:
        for box in ("received", "sent"):
            assert (await call(outsider, "list_whispers", box=box))["whispers"] == []
        stolen = await call_error(
            outsider, "send_whisper", replyToId=whisper["id"], content="who are you?"
        )
        assert stolen.startswith("NOT_FOUND")


async def test_send_whisper_applies_graphql_rules_and_quota(settings: Settings) -> None:
    limits = {"BASIC": {"WHISPER": 1, "AI_REQUEST": 1}, "PRO": {"WHISPER": 1, "AI_REQUEST": 1}}
    async for world in _world(settings.model_copy(update={"quota_limits": limits})):
        _, server, _gql, tokens, ids = world
        async with mcp_client(server, tokens["viewer"]) as mcp:
            empty = await call_error(mcp, "send_whisper", recipientId=ids["climber"], content=" ")
            assert empty.startswith("INVALID_INPUT")
            itself = await call_error(mcp, "send_whisper", recipientId=ids["viewer"], content="x")
            assert itself == "NOT_FOUND: This person cannot receive whispers."
            await call(mcp, "send_whisper", recipientId=ids["climber"], content="hi")
            over = await call_error(mcp, "send_whisper", recipientId=ids["climber"], content="hi")
            assert over.startswith("QUOTA_EXCEEDED")
            await call(mcp, "suggest_profile_improvements")
            over = await call_error(mcp, "suggest_profile_improvements")
            assert over.startswith("QUOTA_EXCEEDED")
            over = await call_error(mcp, "search_users", query="hiking")
            assert over.startswith("QUOTA_EXCEEDED")


async def test_http_requires_a_valid_token_a_known_host_and_origin(plain_world: World) -> None:
    _, server, gql, tokens, _ = plain_world
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
        },
    }
    accept = {"accept": "application/json, text/event-stream"}
    async with httpx.AsyncClient(base_url=server.url) as http:

        async def post(**headers: str) -> httpx.Response:
            return await http.post("/mcp", json=init, headers={**accept, **headers})

        assert (await post()).status_code == 401
        assert (await post(authorization="Bearer not-a-jwt")).status_code == 401
        good = f"Bearer {tokens['viewer']}"
        assert (await post(authorization=good)).status_code == 200
        assert (await post(authorization=good, origin="https://evil.example")).status_code == 403
        assert (await post(authorization=good, host="evil.example")).status_code == 421
        # A refresh token is not an access token; a logged-out session's token stops working.
        login = await gql(
            'mutation { wechatLogin(code: "dev:viewer") { accessToken refreshToken } }'
        )
        fresh = login.data["wechatLogin"]
        assert (await post(authorization=f"Bearer {fresh['refreshToken']}")).status_code == 401
        await gql(
            "mutation ($r: String!) { logout(refreshToken: $r) { ok } }",
            {"r": fresh["refreshToken"]},
            token=fresh["accessToken"],
        )
        assert (await post(authorization=f"Bearer {fresh['accessToken']}")).status_code == 401


async def test_allowed_origins_come_from_settings(settings: Settings) -> None:
    update = {"mcp_allowed_origins": ["https://agent.example.com"]}
    async for world in _world(settings.model_copy(update=update)):
        _, server, _gql, tokens, ids = world
        origin = {"origin": "https://agent.example.com"}
        async with mcp_client(server, tokens["viewer"], origin) as mcp:
            assert (await call(mcp, "get_profile"))["id"] == ids["viewer"]


async def test_stdio_serves_the_token_user(plain_world: World, settings: Settings) -> None:
    _, _server, _gql, tokens, ids = plain_world
    env = {
        **os.environ,
        "DATABASE_URL": reveal(settings.database_url),
        "DATA_DIR": str(settings.data_dir),
        "MODEL_DIR": str(settings.model_dir),
        "QIAOQIAO_TOKEN": tokens["designer"],
    }
    params = StdioServerParameters(command=sys.executable, args=["-m", "src.cli", "mcp"], env=env)
    async with (
        stdio_client(params) as (read, write),
        ClientSession(read, write) as mcp,
    ):
        await mcp.initialize()
        profile = await call(mcp, "get_profile")
        assert profile["id"] == ids["designer"] and profile["nickname"] == "designer"
        assert (await call(mcp, "list_whispers"))["whispers"] == []


async def test_whispers_an_agent_writes_pass_content_security(
    wx_settings: Settings, fake_wechat: FakeWechat
) -> None:
    app = create_app(wx_settings)
    login = "mutation ($c: String!) { wechatLogin(code: $c) { accessToken me { id } } }"
    register = """mutation { register(input: {acceptedPolicyVersion: "2026-11", nickname: "N"})
                  { errors { code } } }"""
    async with live_server(app) as server, httpx.AsyncClient(base_url=server.url) as http:
        gql = GraphQLClient(http)
        people = {}
        for name in ("sender", "recipient"):
            fake_wechat.add_login(f"code-{name}", f"openid-{name}")
            payload = (await gql(login, {"c": f"code-{name}"})).data["wechatLogin"]
            assert (await gql(register, token=payload["accessToken"])).data["register"][
                "errors"
            ] == []
            people[name] = payload
        recipient_id = people["recipient"]["me"]["id"]
        async with mcp_client(server, people["sender"]["accessToken"]) as mcp:
            refused = await call_error(
                mcp, "send_whisper", recipientId=recipient_id, content="今晚一起来赌博吧"
            )
            assert refused == "CONTENT_REJECTED: This text breaks the content rules."
            await call(mcp, "send_whisper", recipientId=recipient_id, content="周末去爬山吗")
        checked = [b["content"] for p, b in fake_wechat.calls if p == "/wxa/msg_sec_check"]
        assert checked[-2:] == ["今晚一起来赌博吧", "周末去爬山吗"]
        assert await sql(app, "SELECT count(*) FROM whispers") == 1


async def test_the_schema_resource_shows_what_the_callers_role_may_call(
    plain_world: World,
) -> None:
    """Moderator operations are not in a user's schema (nor the types only they reach); a
    moderator's schema has them."""
    app, server, _, tokens, ids = plain_world
    async with mcp_client(server, tokens["viewer"]) as mcp:
        user_sdl = (await mcp.read_resource("qiaoqiao://schema.graphql")).contents[0].text  # type: ignore[union-attr]
    viewer = uuid.UUID(ids["viewer"])
    await sql(app, "UPDATE users SET role = 'moderator' WHERE id = :id", id=viewer)
    async with mcp_client(server, tokens["viewer"]) as mcp:
        moderator_sdl = (await mcp.read_resource("qiaoqiao://schema.graphql")).contents[0].text  # type: ignore[union-attr]
    for moderation in ("resolveReport(", "reports(status:", "input ResolveReportInput"):
        assert moderation not in user_sdl
        assert moderation in moderator_sdl
    for everyone in ("sendWhisper(", "aiChat(message: String!", "reportUser("):
        assert everyone in user_sdl and everyone in moderator_sdl
