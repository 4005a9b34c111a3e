"""Sender anonymity as an observational property (issue 15), tested with hypothesis.

Two worlds hold the same people, ids and data, and differ in one thing only: which of two
candidates, S1 or S2, sent the recipient R the anonymous whisper W. Each candidate is in a
generated state (blocked R, hidden, held, banned, deleted, …), the same in both worlds. R — with
two colluding accounts, C and D — then runs a generated sequence of operations on every surface:
block and unblock anyone, blockWhisperSender, reply, mark read, reveal their reply, report
(whispers and users, enough to trigger a hold), swipe, send, the inbox, outbox and
`whisper(id)`, matches, reports, the browse feed, discovery, the export, MCP tools, and the
`whisperReceived` replay over a websocket with a live event after it. Every answer must be the
same in both worlds once ids of objects created during the run and times are normalised.

It runs with compiled queries on and off. Bounded for CI; a longer run:
`QQ_ANON_EXAMPLES=300 .venv/bin/pytest tests/test_two_worlds.py -q`.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from sqlalchemy import text
from sqlmodel import SQLModel

from src.app import create_app
from src.config import Settings
from src.db import async_url
from src.models import AuthSession, User, UserProfile, UserSwipe, Whisper
from src.resolvers.indexing import reindex
from tests.db_server import admin_execute, with_database
from tests.helpers import GraphQLClient, LiveServer, WsClient, live_server
from tests.recipient_view import EARLIEST, REPLAY, WHISPER_FIELDS, Normaliser, mcp_calls

EXAMPLES = int(os.environ.get("QQ_ANON_EXAMPLES", "10"))

PEOPLE = ("R", "S1", "S2", "X", "C", "D")  # recipient, candidates, bystander, colluders
UID = {name: str(uuid.UUID(int=0x100 + i)) for i, name in enumerate(PEOPLE)}
SID = {name: uuid.UUID(int=0x200 + i) for i, name in enumerate(PEOPLE)}
# R's earlier whispers to the candidates; X's named and anonymous ones; W, the secret.
WID = {name: str(uuid.UUID(int=0x300 + i)) for i, name in enumerate(("V1", "V2", "WX", "WXA", "W"))}
UNKNOWN, NOBODY = "00000000-0000-4000-8000-000000000000", str(uuid.UUID(int=0))
FIXED = [*UID.values(), *WID.values(), *(str(s) for s in SID.values()), UNKNOWN, NOBODY]
BASE = datetime(2026, 10, 1, tzinfo=UTC)
STATES = (
    "plain",
    "blocks_r",
    "blocked_by_r",
    "blocks_r_by_whisper",
    "hidden",
    "held",
    "banned",
    "deleted",
)


# --- the operations ------------------------------------------------------------------------

USERS = ("S1", "S2", "X", "C")
WHISPER_TARGETS = ("W", "WX", "WXA", "V1", "UNKNOWN", "BAD")
operations = st.one_of(
    st.tuples(st.sampled_from(("block", "unblock")), st.sampled_from(USERS)),
    st.tuples(st.just("block_sender"), st.sampled_from(WHISPER_TARGETS)),
    st.tuples(st.just("reply"), st.sampled_from(("W", "W", "WX", "WXA")), st.booleans()),
    st.tuples(st.just("read"), st.sampled_from(("W", "WXA"))),
    st.tuples(st.just("reveal_reply")),
    st.tuples(st.just("report_whisper"), st.sampled_from(WHISPER_TARGETS)),
    st.tuples(st.just("report_user"), st.sampled_from(("R", "C", "D")), st.sampled_from(USERS)),
    st.tuples(st.just("swipe"), st.sampled_from(USERS), st.sampled_from(("LIKE", "PASS"))),
    st.tuples(st.just("send"), st.sampled_from(USERS)),
    st.tuples(st.just("collude_send")),
    st.tuples(st.sampled_from(("look", "feed", "discover", "export", "mcp"))),
)
FINAL = [("look",), ("feed",), ("discover",), ("export",), ("mcp",), ("replay",)]

LOOK = f"""query ($w: ID!) {{
  whispersReceived(first: 30) {{
    edges {{ cursor node {{ {WHISPER_FIELDS} }} }} pageInfo {{ hasNextPage endCursor }}
  }}
  unread: whispersReceived(unreadOnly: true, first: 30) {{ edges {{ cursor node {{ id }} }} }}
  whispersSent(first: 30) {{ edges {{ cursor node {{ {WHISPER_FIELDS} }} }} }}
  whisper(id: $w) {{ {WHISPER_FIELDS} }}
  matches {{ edges {{ cursor node {{ id user {{ id isPro profile {{ nickname }} }} }} }} }}
  me {{ quotas {{ kind used limit }} reports {{ edges {{ node {{
    id status decision whisperId whisperContent reported {{ id profile {{ nickname }} }}
  }} }} }} }}
  {" ".join(f'{n}: user(id: "{UID[n]}") {{ id profile {{ nickname }} }}' for n in USERS)}
}}"""
FEED = "{ users(first: 20) { edges { cursor node { id profile { nickname bio } } } } }"
DISCOVER = """{ discover(first: 10) {
  edges { cursor node { score user { id profile { nickname } } } } degraded
} }"""
SEND = f"""mutation ($input: SendWhisperInput!) {{
  sendWhisper(input: $input) {{ whisper {{ {WHISPER_FIELDS} }} errors {{ code message field }} }}
}}"""
PLAIN_SEND = """mutation ($input: SendWhisperInput!) { sendWhisper(input: $input) {
  whisper { id content recipient { id } } errors { code message field }
} }"""
OK = "errors { code message field }"
MUTATIONS = {
    "block": f"mutation ($id: ID!) {{ blockUser(userId: $id) {{ ok {OK} }} }}",
    "unblock": f"mutation ($id: ID!) {{ unblockUser(userId: $id) {{ ok {OK} }} }}",
    "block_sender": f"mutation ($id: ID!) {{ blockWhisperSender(whisperId: $id) {{ ok {OK} }} }}",
    "read": f"""mutation ($id: ID!) {{
      markWhisperRead(id: $id) {{ whisper {{ {WHISPER_FIELDS} }} {OK} }} }}""",
    "reveal": f"""mutation ($id: ID!) {{
      revealWhisper(id: $id) {{ whisper {{ {WHISPER_FIELDS} }} {OK} }} }}""",
    "swipe": f"""mutation ($id: ID!, $a: SwipeAction!) {{
      swipe(targetUserId: $id, action: $a) {{ match {{ id user {{ id }} }} {OK} }} }}""",
}
REPORT = """mutation ($input: ReportInput!) { reportUser(input: $input) {
  report { id status reported { id profile { nickname } } } errors { code message field } } }"""
REPORT_WHISPER = """mutation ($input: ReportWhisperInput!) { reportWhisper(input: $input) {
  report { id status decision whisperId reported { id profile { nickname } } }
  errors { code message field } } }"""


def check_meaningful(op: tuple[Any, ...], answer: Any) -> None:
    """Reads must answer, not fail alike in both worlds (a query the schema refuses would
    compare equal and prove nothing)."""
    if op[0] in ("look", "feed", "discover", "export"):
        assert not answer.get("errors"), (op, answer["errors"])
    if op[0] == "mcp":
        refused = [a["error"] for a in answer if "error" in a and "NOT_FOUND" not in a["error"]]
        assert not refused, refused


def whisper_id(name: str) -> str:
    return {"UNKNOWN": UNKNOWN, "BAD": "not-an-id"}.get(name) or WID[name]


@dataclass(repr=False)
class World:
    app: Any
    server: LiveServer
    gql: GraphQLClient
    tokens: dict[str, str]
    last_reply: str | None = None

    def __repr__(self) -> str:  # hypothesis prints the failing example: keep tokens out
        return f"World({self.server.url})"

    async def run(self, op: tuple[Any, ...]) -> Any:
        kind, *args = op
        r = self.tokens["R"]
        if kind in ("block", "unblock"):
            return await self.q(MUTATIONS[kind], {"id": UID[args[0]]}, r)
        if kind == "block_sender":
            return await self.q(MUTATIONS[kind], {"id": whisper_id(args[0])}, r)
        if kind == "reply":
            data = {"replyToId": WID[args[0]], "content": "who are you?", "anonymous": args[1]}
            answer = await self.q(SEND, {"input": data}, r)
            whisper = (answer.get("data") or {}).get("sendWhisper", {}).get("whisper")
            self.last_reply = whisper["id"] if whisper else self.last_reply
            return answer
        if kind == "read":
            return await self.q(MUTATIONS["read"], {"id": WID[args[0]]}, r)
        if kind == "reveal_reply":
            return await self.q(MUTATIONS["reveal"], {"id": self.last_reply or UNKNOWN}, r)
        if kind == "report_whisper":
            data = {"whisperId": whisper_id(args[0]), "reason": "HARASSMENT", "details": "x"}
            return await self.q(REPORT_WHISPER, {"input": data}, r)
        if kind == "report_user":
            data = {"reportedUserId": UID[args[1]], "reason": "SPAM"}
            return await self.q(REPORT, {"input": data}, self.tokens[args[0]])
        if kind == "swipe":
            return await self.q(MUTATIONS["swipe"], {"id": UID[args[0]], "a": args[1]}, r)
        if kind == "send":  # a plain send: the compiled path when it is on
            data = {"recipientId": UID[args[0]], "content": "hello"}
            return await self.q(PLAIN_SEND, {"input": data}, r)
        if kind == "collude_send":
            data = {"recipientId": UID["R"], "content": "ping", "anonymous": False}
            return await self.q(PLAIN_SEND, {"input": data}, self.tokens["C"])
        if kind == "look":
            return await self.q(LOOK, {"w": WID["W"]}, r)
        if kind in ("feed", "discover"):
            return await self.q(FEED if kind == "feed" else DISCOVER, None, r)
        if kind == "export":
            return await self.q("mutation { exportMyData { json errors { code } } }", None, r)
        if kind == "mcp":
            calls = [
                ("list_whispers", {}),
                ("list_whispers", {"box": "sent"}),
                *(("get_profile", {"userId": UID[n]}) for n in USERS),
            ]
            return await mcp_calls(self.server, r, calls)
        assert kind == "replay"
        return await self.replay()

    async def q(self, query: str, variables: dict[str, Any] | None, token: str) -> Any:
        response = await self.gql.http.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"authorization": f"Bearer {token}"},
        )
        assert response.status_code == 200, response.text
        return response.json()

    async def replay(self) -> list[Any]:
        """The replay from the start, then a live event (read by live_sql when compiled)."""
        got: list[Any] = []
        async with WsClient.connect(self.server, self.tokens["R"]) as ws:
            await ws.subscribe("r", REPLAY, {"after": EARLIEST})
            for poke in (False, True):
                if poke:
                    got.append(await self.run(("collude_send",)))
                while True:
                    try:
                        got.append((await ws.next(0.4)).get("payload"))
                    except TimeoutError:
                        break
        return got


# --- building the worlds --------------------------------------------------------------------

_KEEP = {"alembic_version", "institutions"}


async def build(world: World, sender: str, states: dict[str, str]) -> None:
    """The same world every time, but for who sent W; candidates put in `states`."""
    services = world.app.state.services
    tables = ", ".join(t.name for t in SQLModel.metadata.sorted_tables if t.name not in _KEEP)
    async with services.engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {tables} CASCADE"))
    async with services.sessionmaker() as session, session.begin():
        for i, name in enumerate(PEOPLE):
            uid = uuid.UUID(UID[name])
            moment = BASE + timedelta(hours=i)
            session.add(User(id=uid, registered_at=moment, created_at=moment))
            await session.flush()
            bio = f"{name} likes hiking, tea and long walks by the river."
            session.add(UserProfile(user_id=uid, nickname=f"nick-{name}", bio=bio, city="上海"))
            session.add(AuthSession(id=SID[name], user_id=uid))
        rows = [("V1", "R", "S1", False), ("V2", "R", "S2", False), ("WX", "X", "R", False)]
        rows += [("WXA", "X", "R", True), ("W", sender, "R", True)]
        for i, (name, frm, to, anonymous) in enumerate(rows):
            session.add(
                Whisper(
                    id=uuid.UUID(WID[name]),
                    sender_id=uuid.UUID(UID[frm]),
                    recipient_id=uuid.UUID(UID[to]),
                    content=f"whisper {name}" if name != "W" else "guess who",
                    is_anonymous=anonymous,
                    created_at=BASE + timedelta(days=1, minutes=i),
                )
            )
        for who in ("S1", "S2", "X"):
            session.add(
                UserSwipe(
                    swiper_id=uuid.UUID(UID[who]),
                    target_id=uuid.UUID(UID["R"]),
                    action="LIKE",
                    created_at=BASE,
                )
            )
    world.tokens = {
        n: services.tokens.issue_access(uuid.UUID(UID[n]), SID[n]).token for n in PEOPLE
    }
    world.last_reply = None
    for name, state in states.items():
        await apply_state(world, name, state)


async def apply_state(world: World, name: str, state: str) -> None:
    token, uid = world.tokens[name], UID[name]
    if state == "blocks_r":
        await world.q(MUTATIONS["block"], {"id": UID["R"]}, token)
    elif state == "blocked_by_r":
        await world.q(MUTATIONS["block"], {"id": uid}, world.tokens["R"])
    elif state == "blocks_r_by_whisper":
        await world.q(MUTATIONS["block_sender"], {"id": WID["V" + name[-1]]}, token)
    elif state == "hidden":
        await world.q(
            "mutation { updateProfile(input: {discoverable: false}) { errors { code } } }",
            None,
            token,
        )
    elif state in ("held", "banned"):
        change = {
            "held": "UPDATE users SET moderation_hold_at = now() WHERE id = :u",
            "banned": "UPDATE users SET status = 'banned' WHERE id = :u",
        }[state]
        async with world.app.state.services.engine.begin() as conn:
            await conn.execute(text(change), {"u": uid})
    elif state == "deleted":
        await world.q("mutation { deleteAccount { ok } }", None, token)


@pytest.fixture(params=[True, False], ids=["compiled", "interpreted"])
async def worlds(
    request: pytest.FixtureRequest,
    settings: Settings,
    pg_admin_url: str,
    template_db: str,
    tmp_path: Path,
) -> AsyncIterator[tuple[World, World]]:
    name = f"qq_two_worlds_{os.getpid()}_{int(request.param)}"
    await admin_execute(
        pg_admin_url,
        f"DROP DATABASE IF EXISTS {name} WITH (FORCE)",
        f"CREATE DATABASE {name} TEMPLATE {template_db}",
    )
    generous = {
        k: (100_000, 60)
        for k in (
            "block:user",
            "whisper:user",
            "report:user",
            "discover:user",
            "swipe:user",
            "mcp:user",
        )
    }
    common = {
        "compiled_queries": request.param,
        "max_query_cost": 1_000_000,
        "rate_limits": generous,
        "quota_limits": {
            "BASIC": {"WHISPER": 1000, "SWIPE": 1000, "AI_REQUEST": 1000, "DISCOVERY": 1000}
        },
    }
    a = settings.model_copy(update={**common, "data_dir": tmp_path / "a"})
    b = settings.model_copy(
        update={
            **common,
            "data_dir": tmp_path / "b",
            "database_url": SecretStr(async_url(with_database(pg_admin_url, name))),
        }
    )
    app_a, app_b = create_app(a), create_app(b)
    try:
        async with (
            live_server(app_a) as sa,
            live_server(app_b) as sb,
            httpx.AsyncClient(base_url=sa.url) as ha,
            httpx.AsyncClient(base_url=sb.url) as hb,
        ):
            pair = (
                World(app_a, sa, GraphQLClient(ha), {}),
                World(app_b, sb, GraphQLClient(hb), {}),
            )
            for world in pair:  # the index: every profile, once (operations change no profile)
                await build(world, "S1", {})
                await reindex(world.app.state.services)
            yield pair
    finally:
        await admin_execute(pg_admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    states=st.fixed_dictionaries({"S1": st.sampled_from(STATES), "S2": st.sampled_from(STATES)}),
    ops=st.lists(operations, min_size=1, max_size=8),
)
async def test_the_recipient_cannot_tell_who_sent_it(
    worlds: tuple[World, World], states: dict[str, str], ops: list[tuple[Any, ...]]
) -> None:
    one, two = worlds
    await asyncio.gather(build(one, "S1", states), build(two, "S2", states))
    seen: list[list[Any]] = [[], []]
    normalise = [Normaliser(FIXED), Normaliser(FIXED)]
    for op in [*ops, *FINAL]:
        answers = await asyncio.gather(one.run(op), two.run(op))
        check_meaningful(op, answers[0])
        for i, answer in enumerate(answers):
            seen[i].append(normalise[i](answer))
        if seen[0][-1] != seen[1][-1]:
            pytest.fail(
                f"{op} answers differently when {states} and S1 or S2 sent W, after {ops}:\n"
                + json.dumps(seen[0][-1], ensure_ascii=False, sort_keys=True)[:3000]
                + "\n---\n"
                + json.dumps(seen[1][-1], ensure_ascii=False, sort_keys=True)[:3000]
            )
