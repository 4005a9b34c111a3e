"""Real-time delivery over a real websocket: live, replay with `after`, re-authorization per
event, token expiry, two server processes, and abrupt disconnects leaving nothing behind."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import httpx
import jwt
import pytest
from starlette.applications import Starlette

from src.app import create_app
from src.auth.tokens import ALGORITHM, derive_key
from src.config import Settings
from src.resolvers import live_sql
from tests.helpers import (
    GraphQLClient,
    LiveServer,
    WsClient,
    free_port,
    live_server,
    registered_user,
    send_whisper,
    sql,
)

RECEIVED = """subscription ($after: String) {
  whisperReceived(after: $after) { id content sender { id } isAnonymous }
}"""
MATCHED = "subscription { matchCreated { id user { id } } }"
CURSORS = "{ whispersReceived(first: 100) { edges { cursor node { id } } } }"


@pytest.fixture
async def server(app: Starlette) -> AsyncIterator[LiveServer]:
    async with live_server(app) as live:
        yield live


_clients: list[httpx.AsyncClient] = []


@pytest.fixture(autouse=True)
async def _close_clients() -> AsyncIterator[None]:
    yield
    while _clients:
        await _clients.pop().aclose()


async def users(server: LiveServer, *names: str) -> tuple[GraphQLClient, list[dict]]:
    http = httpx.AsyncClient(base_url=server.url)
    _clients.append(http)
    gql = GraphQLClient(http)
    return gql, [await registered_user(gql, n) for n in names]


async def test_whisper_arrives_live_without_its_anonymous_sender(server: LiveServer) -> None:
    gql, (alice, bob) = await users(server, "alice", "bob")
    async with WsClient.connect(server, bob["accessToken"]) as ws:
        await ws.subscribe("1", RECEIVED)
        await asyncio.sleep(0.2)
        sent = await send_whisper(
            gql, alice["accessToken"], recipientId=bob["me"]["id"], content="悄悄话"
        )
        message = await ws.next()
    assert message["type"] == "next"
    assert message["payload"]["data"]["whisperReceived"] == {
        "id": sent["whisper"]["id"],
        "content": "悄悄话",
        "sender": None,
        "isAnonymous": True,
    }
    assert alice["me"]["id"] not in str(message)


async def test_replay_after_reconnect_has_no_gap_and_no_duplicate(server: LiveServer) -> None:
    gql, (alice, bob) = await users(server, "alice", "bob")
    to_bob = {"recipientId": bob["me"]["id"]}
    for i in range(3):
        await send_whisper(gql, alice["accessToken"], content=f"before {i}", **to_bob)
    edges = (await gql(CURSORS, token=bob["accessToken"])).data["whispersReceived"]["edges"]
    last_seen = edges[0]["cursor"]  # newest first: the client saw all three
    # The mini app went to the background; two whispers came meanwhile.
    for i in range(2):
        await send_whisper(gql, alice["accessToken"], content=f"missed {i}", **to_bob)
    async with WsClient.connect(server, bob["accessToken"]) as ws:
        await ws.subscribe("1", RECEIVED, {"after": last_seen})
        got = [(await ws.next())["payload"]["data"]["whisperReceived"]["content"] for _ in range(2)]
        await send_whisper(gql, alice["accessToken"], content="live", **to_bob)
        got.append((await ws.next())["payload"]["data"]["whisperReceived"]["content"])
        assert await ws.nothing_for(0.7)
    assert got == ["missed 0", "missed 1", "live"]


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled-reads", "orm-reads"])
async def test_block_and_ban_take_effect_mid_subscription(
    settings: Settings, compiled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Events after the first are read by one compiled statement (live_sql), or through the
    ORM when compiled queries are off: the same deliveries and refusals either way."""
    reads = []

    async def counted(*args):  # type: ignore[no-untyped-def]
        reads.append(args)
        return await compiled_read(*args)

    compiled_read = live_sql.received_after
    monkeypatch.setattr(live_sql, "received_after", counted)
    app = create_app(settings.model_copy(update={"compiled_queries": compiled}))
    async with live_server(app) as server:
        await _block_and_ban(app, server)
    assert bool(reads) is compiled


async def _block_and_ban(app: Starlette, server: LiveServer) -> None:
    gql, (alice, bob, carol) = await users(server, "alice", "bob", "carol")
    async with WsClient.connect(server, bob["accessToken"]) as ws:
        await ws.subscribe("1", RECEIVED)
        await asyncio.sleep(0.2)
        await send_whisper(gql, alice["accessToken"], recipientId=bob["me"]["id"], content="1")
        assert (await ws.next())["payload"]["data"]["whisperReceived"]["content"] == "1"
        # A named whisper from Alice is in flight when Bob blocks her: it is not delivered (an
        # anonymous one would be: the block must not tell Bob whose it is).
        await gql(
            "mutation ($id: ID!) { blockUser(userId: $id) { ok } }",
            {"id": alice["me"]["id"]},
            token=bob["accessToken"],
        )
        await sql(
            app,
            "INSERT INTO whispers (id, sender_id, recipient_id, content, is_anonymous)"
            " VALUES (gen_random_uuid(), :a, :b, 'in flight', false)",
            a=alice["me"]["id"],
            b=bob["me"]["id"],
        )
        await sql(
            app,
            "SELECT pg_notify('qq_events', :p)",
            p=json.dumps({"k": "whisper", "u": [bob["me"]["id"]]}),
        )
        await send_whisper(gql, carol["accessToken"], recipientId=bob["me"]["id"], content="2")
        assert (await ws.next())["payload"]["data"]["whisperReceived"]["content"] == "2"
        # Bob is banned (a moderator's ban also wakes his subscriptions): the socket closes.
        await sql(app, "UPDATE users SET status = 'banned' WHERE id = :b", b=bob["me"]["id"])
        await sql(
            app,
            "SELECT pg_notify('qq_events', :p)",
            p=json.dumps({"k": "account", "u": [bob["me"]["id"]]}),
        )
        with pytest.raises(Exception) as closed:
            await ws.next()
    assert "4403" in str(closed.value)


async def test_match_is_reported_once_to_both(server: LiveServer) -> None:
    gql, (alice, bob) = await users(server, "alice", "bob")
    like = "mutation ($id: ID!) { swipe(targetUserId: $id, action: LIKE) { match { id } } }"
    async with (
        WsClient.connect(server, alice["accessToken"]) as wa,
        WsClient.connect(server, bob["accessToken"]) as wb,
    ):
        await wa.subscribe("m", MATCHED)
        await wb.subscribe("m", MATCHED)
        await asyncio.sleep(0.2)
        await gql(like, {"id": bob["me"]["id"]}, token=alice["accessToken"])
        await gql(like, {"id": alice["me"]["id"]}, token=bob["accessToken"])
        to_alice, to_bob = await wa.next(), await wb.next()
        await gql(like, {"id": alice["me"]["id"]}, token=bob["accessToken"])
        assert await wa.nothing_for(0.5) and await wb.nothing_for(0.1)
    assert to_alice["payload"]["data"]["matchCreated"]["user"]["id"] == bob["me"]["id"]
    assert to_bob["payload"]["data"]["matchCreated"]["user"]["id"] == alice["me"]["id"]
    assert (
        to_alice["payload"]["data"]["matchCreated"]["id"]
        == to_bob["payload"]["data"]["matchCreated"]["id"]
    )


async def test_socket_closes_when_its_token_expires(app: Starlette, server: LiveServer) -> None:
    _, (bob,) = await users(server, "bob")
    tokens = app.state.services.tokens
    real = tokens.verify_access(bob["accessToken"])
    now = int(time.time())
    short = jwt.encode(
        {
            "iss": "qiaoqiao",
            "aud": "qiaoqiao-api",
            "sub": str(real.user_id),
            "sid": str(real.session_id),
            "iat": now,
            "exp": now + 2,
            "jti": "short",
            "typ": "access",
        },
        derive_key(app.state.services.settings.secret_key.get_secret_value(), "jwt"),
        algorithm=ALGORITHM,
        headers={"kid": tokens._signing[0]},
    )
    async with WsClient.connect(server, short) as ws:
        await ws.subscribe("1", RECEIVED)
        with pytest.raises(Exception) as closed:
            await ws.next(timeout=6)
    assert "4403" in str(closed.value)


async def test_at_most_ten_subscriptions_per_socket(server: LiveServer) -> None:
    _, (bob,) = await users(server, "bob")
    async with WsClient.connect(server, bob["accessToken"]) as ws:
        for i in range(11):
            await ws.subscribe(str(i), RECEIVED)
        refused = await ws.next(timeout=3)
    assert refused["type"] == "error" and refused["id"] == "10"
    assert refused["payload"][0]["message"] == "Subscription limit reached"


async def test_two_hundred_abrupt_disconnects_leave_nothing_behind(settings: Settings) -> None:
    # One user with 200 sockets: lift the per-user cap for this test only.
    app = create_app(settings.model_copy(update={"ws_max_sockets_per_user": 1000}))
    async with live_server(app) as server:
        await _abrupt_disconnects(app, server)


async def _abrupt_disconnects(app: Starlette, server: LiveServer) -> None:
    _, (bob,) = await users(server, "bob")
    hub = app.state.services.hub
    pool = app.state.services.engine.pool
    tasks_before = len(asyncio.all_tasks())
    for _ in range(4):
        sockets = []
        for _ in range(50):
            cm = WsClient.connect(server, bob["accessToken"])
            ws = await cm.__aenter__()
            await ws.subscribe("1", RECEIVED)
            sockets.append((cm, ws))
        await asyncio.sleep(0.3)
        assert hub.subscriptions >= 50
        for _cm, ws in sockets:
            ws.ws.transport.abort()  # no close frame: the network just went away
        for cm, _ws in sockets:
            with contextlib.suppress(Exception):
                await cm.__aexit__(None, None, None)
    for _ in range(50):
        if hub.subscriptions == 0 and len(asyncio.all_tasks()) <= tasks_before + 2:
            break
        await asyncio.sleep(0.1)
    assert hub.subscriptions == 0
    assert len(asyncio.all_tasks()) <= tasks_before + 2
    assert pool.checkedout() == 0
    assert await sql(app, "SELECT count(*) FROM socket_presence") == 0


async def test_sockets_per_user_are_capped_and_presence_follows_them(
    app: Starlette, server: LiveServer
) -> None:
    _, (bob,) = await users(server, "bob")
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(5):
            await stack.enter_async_context(WsClient.connect(server, bob["accessToken"]))
        assert await sql(app, "SELECT count(*) FROM socket_presence") == 5
        with pytest.raises(Exception) as refused:
            await stack.enter_async_context(WsClient.connect(server, bob["accessToken"]))
        assert "4403" in str(refused.value)
    for _ in range(20):
        if await sql(app, "SELECT count(*) FROM socket_presence") == 0:
            break
        await asyncio.sleep(0.05)
    assert await sql(app, "SELECT count(*) FROM socket_presence") == 0


async def test_delivery_between_two_server_processes(database_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ports = [free_port(), free_port()]
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "LOG_LEVEL": "WARNING",
        "DATA_DIR": str(tmp_path),
    }
    procs = [
        subprocess.Popen(  # noqa: ASYNC220 - started once, awaited below by polling
            [
                sys.executable,
                "-m",
                "uvicorn",
                "src.app:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(p),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for p in ports
    ]
    try:
        servers = [LiveServer(f"http://127.0.0.1:{p}", f"ws://127.0.0.1:{p}", None) for p in ports]  # type: ignore[arg-type]
        for s in servers:
            # A loaded machine took 22 s to start a server: wait up to a minute, then say so.
            async with httpx.AsyncClient(base_url=s.url) as client:
                for _ in range(600):
                    with contextlib.suppress(httpx.TransportError):
                        if (await client.get("/ready")).status_code == 200:
                            break
                    await asyncio.sleep(0.1)
                else:
                    raise AssertionError(f"{s.url} was not ready within 60 s")
        gql_one, (alice, bob) = await users(servers[0], "alice", "bob")
        async with WsClient.connect(servers[1], bob["accessToken"]) as ws:
            await ws.subscribe("1", RECEIVED)
            await asyncio.sleep(0.3)
            await send_whisper(
                gql_one, alice["accessToken"], recipientId=bob["me"]["id"], content="跨进程"
            )
            message = await ws.next()
        assert message["payload"]["data"]["whisperReceived"]["content"] == "跨进程"
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(10)
