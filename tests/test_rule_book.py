"""Each rule of the rule book (src/models/rules.py) by its outcome, on every path that reads it:
GraphQL with compiled queries on and off (the compiled feed, send and live read are built from
the same rules as the ORM resolvers), and the MCP tools.

One world per path: a viewer V and one person per state a rule tells apart. A rule removed
from the rule book makes one of these fail (the checks are listed in the closing note of the
rule-book change)."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from src import events
from src.app import create_app
from src.config import Settings
from src.resolvers.ai_data import popular_interests
from tests.helpers import (
    GraphQLClient,
    LiveServer,
    WsClient,
    dev_login,
    live_server,
    registered_user,
    sql,
)
from tests.recipient_view import EARLIEST, REPLAY, mcp_calls

# Visible to V: PLAIN and the three PRO states. Everyone else is hidden from V for one reason.
VISIBLE = ("plain", "pro_now", "pro_expired", "pro_future")
HIDDEN = ("held", "hidden", "blocks_v", "blocked_by_v", "banned", "unregistered", "sender_blocker")
FEED = "{ users(first: 50) { edges { node { id isPro } } } }"
PAGE = """query ($after: String) { users(first: 3, after: $after) {
  edges { node { id } } pageInfo { hasNextPage endCursor } } }"""
USER = "query ($id: ID!) { user(id: $id) { id isPro } }"
SEND = """mutation ($input: SendWhisperInput!) { sendWhisper(input: $input) {
  whisper { id content recipient { id } } errors { code message field } } }"""
INBOX = """{ whispersReceived(first: 30) {
  edges { node { content isAnonymous sender { id } } } } }"""
BLOCK = "mutation ($id: ID!) { blockUser(userId: $id) { ok } }"
BLOCK_SENDER = "mutation ($id: ID!) { blockWhisperSender(whisperId: $id) { ok } }"
MCP_INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "rule-book", "version": "1"},
    },
}
GENEROUS = {k: (100_000, 60) for k in ("block:user", "whisper:user", "mcp:user", "report:user")}


@dataclass
class World:
    app: Starlette
    server: LiveServer
    gql: GraphQLClient
    http: httpx.AsyncClient
    compiled: bool
    tokens: dict[str, str]
    ids: dict[str, str]

    async def post(self, query: str, variables: dict[str, Any], who: str) -> dict[str, Any]:
        """The whole answer (with `extensions`), as `who`."""
        response = await self.http.post(
            "/graphql",
            json={"query": query, "variables": variables},
            headers={"authorization": f"Bearer {self.tokens[who]}"},
        )
        answer: dict[str, Any] = response.json()
        return answer

    async def feed(self, who: str = "V") -> dict[str, bool]:
        """{name: isPro} of the people on `who`'s feed, the path pinned."""
        answer = await self.post(FEED, {}, who)
        assert "errors" not in answer, answer
        assert answer["extensions"]["path"] == ("compiled" if self.compiled else "interpreted")
        names = {v: k for k, v in self.ids.items()}
        return {
            names[e["node"]["id"]]: e["node"]["isPro"] for e in answer["data"]["users"]["edges"]
        }


@pytest.fixture(params=[True, False], ids=["compiled", "interpreted"])
async def world(request: pytest.FixtureRequest, settings: Settings) -> AsyncIterator[World]:
    compiled: bool = request.param
    app = create_app(
        settings.model_copy(
            update={"compiled_queries": compiled, "report_path": True, "rate_limits": GENEROUS}
        )
    )
    async with live_server(app) as server, httpx.AsyncClient(base_url=server.url) as http:
        gql = GraphQLClient(http)
        tokens: dict[str, str] = {}
        for name in ("V", *VISIBLE, *HIDDEN, "sender"):
            if name == "unregistered":
                tokens[name] = (await dev_login(gql, name))["accessToken"]
            else:
                tokens[name] = (await registered_user(gql, name))["accessToken"]
        ids = {}
        for name, token in tokens.items():
            me = await gql("{ me { id } }", token=token)
            ids[name] = me.data["me"]["id"]
        world = World(app, server, gql, http, compiled, tokens, ids)
        await _states(world)
        yield world


async def _states(w: World) -> None:
    """Put each person in their state, through the API where there is one."""
    await sql(w.app, "UPDATE users SET moderation_hold_at = now() WHERE id = :id", id=w.ids["held"])
    await sql(w.app, "UPDATE users SET status = 'banned' WHERE id = :id", id=w.ids["banned"])
    await sql(
        w.app,
        "UPDATE user_profiles SET visibility = 'hidden' WHERE user_id = :id",
        id=w.ids["hidden"],
    )
    await w.gql(BLOCK, {"id": w.ids["V"]}, token=w.tokens["blocks_v"])
    await w.gql(BLOCK, {"id": w.ids["blocked_by_v"]}, token=w.tokens["V"])
    # sender_blocker blocked V's whispers (blockWhisperSender) after one of them.
    sent = await w.gql(
        SEND,
        {"input": {"recipientId": w.ids["sender_blocker"], "content": "hi"}},
        token=w.tokens["V"],
    )
    whisper = sent.data["sendWhisper"]["whisper"]["id"]
    await w.gql(BLOCK_SENDER, {"id": whisper}, token=w.tokens["sender_blocker"])
    # That one person is unreachable, not invisible: leave them out of the feed by hiding them.
    await sql(
        w.app,
        "UPDATE user_profiles SET visibility = 'hidden' WHERE user_id = :id",
        id=w.ids["sender_blocker"],
    )
    for name, start, end in (
        ("pro_now", -1, 1),
        ("pro_expired", -3, -1),
        ("pro_future", 1, 3),
    ):
        await sql(
            w.app,
            "INSERT INTO memberships (id, user_id, plan, valid_from, valid_until)"
            " VALUES (gen_random_uuid(), :id, 'PRO', now() + :start,"
            " now() + :end)",
            id=w.ids[name],
            start=timedelta(days=start),
            end=timedelta(days=end),
        )


def _mcp_found(result: Any) -> bool:
    return "error" not in result


async def test_visible_to(world: World) -> None:
    on_feed = await world.feed()
    # the feed shows others only; the "sender" helper account is plain too
    assert set(on_feed) == {*VISIBLE, "sender"}
    found = {}
    for name in (*VISIBLE, *HIDDEN):
        answer = await world.post(USER, {"id": world.ids[name]}, "V")
        found[name] = answer["data"]["user"] is not None
    assert found == {name: name in VISIBLE for name in (*VISIBLE, *HIDDEN)}
    calls = [("get_profile", {"userId": world.ids[name]}) for name in (*VISIBLE, *HIDDEN)]
    results = await mcp_calls(world.server, world.tokens["V"], calls)
    assert [_mcp_found(r) for r in results] == [n in VISIBLE for n in (*VISIBLE, *HIDDEN)]


async def test_everyone_sees_themselves(world: World) -> None:
    for name in ("hidden", "held"):
        answer = await world.post(USER, {"id": world.ids[name]}, name)
        assert answer["data"]["user"] == {"id": world.ids[name], "isPro": False}
        assert name not in await world.feed(name)  # the feed is of others
    (own,) = await mcp_calls(world.server, world.tokens["held"], [("get_profile", {})])
    assert own["id"] == world.ids["held"]


async def test_is_pro_now(world: World) -> None:
    on_feed = await world.feed()
    assert {n: on_feed[n] for n in VISIBLE} == {
        "plain": False,
        "pro_now": True,
        "pro_expired": False,
        "pro_future": False,
    }
    for name in VISIBLE:
        answer = await world.post(USER, {"id": world.ids[name]}, "V")
        assert answer["data"]["user"]["isPro"] is (name == "pro_now")


async def test_is_pro_follows_the_injected_clock(world: World) -> None:
    services = world.app.state.services
    later = datetime.now(UTC) + timedelta(days=2)
    world.app.state.services = dataclasses.replace(services, clock=lambda: later)
    on_feed = await world.feed()
    assert {n: on_feed[n] for n in VISIBLE} == {
        "plain": False,
        "pro_now": False,
        "pro_expired": False,
        "pro_future": True,
    }


async def test_login_valid(world: World) -> None:
    await sql(
        world.app,
        "UPDATE auth_sessions SET revoked_at = now() WHERE user_id = :id",
        id=world.ids["plain"],
    )
    for name in ("plain", "banned"):  # a revoked login; a banned account
        answer = await world.post(FEED, {}, name)
        assert answer["data"] is None
        assert [e["extensions"]["code"] for e in answer["errors"]] == ["UNAUTHENTICATED"]
        mcp = await world.http.post(
            "/mcp",
            json=MCP_INIT,
            headers={
                "accept": "application/json, text/event-stream",
                "authorization": f"Bearer {world.tokens[name]}",
            },
        )
        assert mcp.status_code == 401
    assert set(await world.feed("pro_now")) >= {"V", "sender"}  # a live login still works


async def test_may_whisper(world: World) -> None:
    reachable = {"plain", "pro_now", "hidden", "held"}
    outcome = {}
    for name in (
        "plain",
        "pro_now",
        "hidden",
        "held",
        "V",
        "blocks_v",
        "blocked_by_v",
        "banned",
        "unregistered",
        "sender_blocker",
    ):
        data = {"recipientId": world.ids[name], "content": f"to {name}"}
        answer = await world.post(SEND, {"input": data}, "V")
        payload = answer["data"]["sendWhisper"]
        outcome[name] = payload["whisper"] is not None
        if not outcome[name]:
            assert payload["errors"] == [
                {
                    "code": "NOT_FOUND",
                    "message": "This person cannot receive whispers.",
                    "field": "recipientId",
                }
            ]
    assert outcome == {name: name in reachable for name in outcome}
    calls = [
        ("send_whisper", {"recipientId": world.ids[n], "content": f"mcp to {n}"})
        for n in ("plain", "blocks_v", "blocked_by_v", "sender_blocker")
    ]
    results = await mcp_calls(world.server, world.tokens["V"], calls)
    assert [_mcp_found(r) for r in results] == [True, False, False, False]


async def test_unregistered_cannot_send(world: World) -> None:
    data = {"recipientId": world.ids["plain"], "content": "hello"}
    answer = await world.post(SEND, {"input": data}, "unregistered")
    assert answer["data"]["sendWhisper"]["errors"][0]["code"] == "REGISTRATION_REQUIRED"


async def _inbox_world(world: World) -> None:
    """Whispers to V: named and anonymous ones from people blocked either way (written
    directly: blocks act at send time, so these arrived before the blocks), a withheld one,
    and two others."""
    rows = [
        ("named from blocked", "blocked_by_v", False, False),
        ("anonymous from blocked", "blocks_v", True, False),
        ("withheld", "plain", False, True),
        ("named", "plain", False, False),
        ("anonymous", "pro_now", True, False),
    ]
    for i, (content, sender, anonymous, withheld) in enumerate(rows):
        await sql(
            world.app,
            "INSERT INTO whispers (id, sender_id, recipient_id, content, is_anonymous, withheld,"
            " created_at) VALUES (gen_random_uuid(), :s, :r, :c, :a, :w,"
            " now() + make_interval(secs => :i))",
            s=world.ids[sender],
            r=world.ids["V"],
            c=content,
            a=anonymous,
            w=withheld,
            i=i,
        )


EXPECTED_INBOX = [  # newest first; the sender of an anonymous whisper is never shown
    ("anonymous", True, None),
    ("named", False, "plain"),
    ("anonymous from blocked", True, None),
]


async def test_shown_to_recipient(world: World) -> None:
    await _inbox_world(world)
    names = {v: k for k, v in world.ids.items()}

    def seen(nodes: list[dict[str, Any]]) -> list[tuple[str, bool, str | None]]:
        return [
            (n["content"], n["isAnonymous"], n["sender"] and names[n["sender"]["id"]])
            for n in nodes
        ]

    answer = await world.post(INBOX, {}, "V")
    assert seen([e["node"] for e in answer["data"]["whispersReceived"]["edges"]]) == EXPECTED_INBOX
    (listed,) = await mcp_calls(world.server, world.tokens["V"], [("list_whispers", {})])
    got = [
        (w["content"], w["isAnonymous"], w["senderId"] and names[w["senderId"]])
        for w in listed["whispers"]
    ]
    assert got == EXPECTED_INBOX


async def test_shown_to_recipient_live(world: World) -> None:
    """The `whisperReceived` events after the catch-up: the compiled live read (live_sql)."""
    async with WsClient.connect(world.server, world.tokens["V"]) as ws:
        await ws.subscribe("r", REPLAY, {"after": EARLIEST})
        assert await ws.nothing_for(0.5)  # nothing yet: the catch-up is done
        await _inbox_world(world)
        payload = json.dumps({"k": events.WHISPER, "u": [world.ids["V"]]})
        await sql(world.app, "SELECT pg_notify(:c, :p)", c=events.CHANNEL, p=payload)
        got = [(await ws.next())["payload"]["data"]["whisperReceived"] for _ in EXPECTED_INBOX]
        assert await ws.nothing_for(0.5)
    names = {v: k for k, v in world.ids.items()}
    oldest_first = [
        (w["content"], w["isAnonymous"], w["sender"] and names[w["sender"]["id"]]) for w in got
    ]
    assert oldest_first == EXPECTED_INBOX[::-1]


async def test_after_cursor(world: World) -> None:
    everyone = list(await world.feed())
    seen: list[str] = []
    after = None
    for _ in range(10):
        answer = await world.post(PAGE, {"after": after}, "V")
        page = answer["data"]["users"]
        seen += [e["node"]["id"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == [world.ids[n] for n in everyone]


async def test_is_pro_raises_the_send_quota(world: World) -> None:
    """The compiled send decides the plan in its own statement (`rules.is_pro`): with BASIC's
    10 used today, only a current PRO member may send."""
    for name in ("pro_now", "pro_expired", "pro_future"):
        await sql(
            world.app,
            "INSERT INTO user_quotas (user_id, day, kind, used, daily_limit) VALUES"
            " (:u, (now() AT TIME ZONE 'Asia/Shanghai')::date, 'WHISPER', 10, 10)",
            u=world.ids[name],
        )
    outcome = {}
    for name in ("pro_now", "pro_expired", "pro_future"):
        data = {"recipientId": world.ids["plain"], "content": f"from {name}"}
        answer = await world.post(SEND, {"input": data}, name)
        # A send the compiled statement refuses is answered (refused again) by the interpreter.
        sent_compiled = world.compiled and name == "pro_now"
        assert answer["extensions"]["path"] == ("compiled" if sent_compiled else "interpreted")
        payload = answer["data"]["sendWhisper"]
        outcome[name] = [e["code"] for e in payload["errors"]]
    assert outcome == {
        "pro_now": [],
        "pro_expired": ["QUOTA_EXCEEDED"],
        "pro_future": ["QUOTA_EXCEEDED"],
    }


SENT = """{ whispersSent(first: 10) {
  edges { node { content sender { id } recipient { id } readAt } } } }"""
RECEIVED = """{ whispersReceived(first: 10) { edges { node { content sender { id } } } } }"""
READ = "mutation ($id: ID!) { markWhisperRead(id: $id) { whisper { id } } }"


async def _send(world: World, who: str, **data: Any) -> str:
    answer = await world.post(SEND, {"input": data}, who)
    payload = answer["data"]["sendWhisper"]
    assert payload["errors"] == [], payload
    whisper_id: str = payload["whisper"]["id"]
    return whisper_id


async def test_whisper_exposure(world: World) -> None:
    """sender_shown, recipient_shown, read_at_shown: V replies to an anonymous whisper and to
    a named one; the replies are read. V never learns whom the first reply reached, nor that
    it was read."""
    anonymous = await _send(world, "plain", recipientId=world.ids["V"], content="anon")
    named = await _send(
        world, "pro_now", recipientId=world.ids["V"], content="named", anonymous=False
    )
    first = await _send(world, "V", replyToId=anonymous, content="re anon", anonymous=False)
    second = await _send(world, "V", replyToId=named, content="re named", anonymous=False)
    for reader, whisper in (("plain", first), ("pro_now", second)):
        read = await world.post(READ, {"id": whisper}, reader)
        assert read["data"]["markWhisperRead"]["whisper"] == {"id": whisper}
    names = {v: k for k, v in world.ids.items()}

    def who(user: dict[str, str] | None) -> str | None:
        return user and names[user["id"]]

    sent = (await world.post(SENT, {}, "V"))["data"]["whispersSent"]["edges"]
    assert [
        (
            e["node"]["content"],
            who(e["node"]["sender"]),
            who(e["node"]["recipient"]),
            e["node"]["readAt"] is not None,
        )
        for e in sent[:2]  # (then V's earlier "hi")
    ] == [("re named", "V", "pro_now", True), ("re anon", "V", None, False)]
    received = (await world.post(RECEIVED, {}, "V"))["data"]["whispersReceived"]["edges"]
    assert [(e["node"]["content"], who(e["node"]["sender"])) for e in received] == [
        ("named", "pro_now"),
        ("anon", None),
    ]
    # The other side: the writer of the anonymous whisper knows it is theirs and whom it
    # reached, and who answered.
    theirs = (await world.post(SENT, {}, "plain"))["data"]["whispersSent"]["edges"]
    assert [(who(e["node"]["sender"]), who(e["node"]["recipient"])) for e in theirs] == [
        ("plain", "V")
    ]
    (mcp,) = await mcp_calls(world.server, world.tokens["V"], [("list_whispers", {"box": "sent"})])
    assert [
        (w["content"], w["recipientId"] and names[w["recipientId"]], w["readAt"] is not None)
        for w in mcp["whispers"][:2]
    ] == [("re named", "pro_now", True), ("re anon", None, False)]


async def test_popular_interests_are_of_people_in_discovery(world: World) -> None:
    for name, tag in (("plain", "chess"), ("held", "knitting"), ("hidden", "karate")):
        await sql(
            world.app,
            "UPDATE user_profiles SET interests = ARRAY[:t] WHERE user_id = :id",
            t=tag,
            id=world.ids[name],
        )
    async with world.app.state.services.sessionmaker() as session:
        popular = await popular_interests(session, uuid.UUID(world.ids["V"]), at_least=1)
    assert popular == [("chess", 1)]
