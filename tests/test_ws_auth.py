"""Websocket authentication in `connection_init`, its time limit, and logins that expire on an
open socket (SECURITY.md 19, 35)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import jwt
import pytest
import websockets
from starlette.applications import Starlette

from src.app import create_app
from src.auth.tokens import ALGORITHM, derive_key
from src.config import Settings
from src.schema import context as context_module
from tests.helpers import (
    GraphQLClient,
    LiveServer,
    WsClient,
    dev_login,
    live_server,
    registered_user,
    running_app,
)

PROTOCOL = [websockets.Subprotocol("graphql-transport-ws")]


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[LiveServer]:
    quick = settings.model_copy(update={"ws_init_timeout_s": 0.5})
    async with live_server(create_app(quick)) as live:
        yield live


async def token_for(app: Starlette, name: str) -> str:
    async with running_app(app) as http:
        return str((await dev_login(GraphQLClient(http), name))["accessToken"])


async def close_code(
    server: LiveServer, payload: dict | None, headers: dict | None = None
) -> int | None:
    async with websockets.connect(
        server.ws_url + "/graphql", subprotocols=PROTOCOL, additional_headers=headers
    ) as ws:
        if payload is not None:
            await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        try:
            message = json.loads(await ws.recv())
        except websockets.ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None
        assert message == {"type": "connection_ack"}
        return None


async def test_token_in_connection_init_is_acknowledged(server: LiveServer) -> None:
    token = await token_for(server.server.config.app, "alice")  # type: ignore[arg-type]
    assert await close_code(server, {"authorization": f"Bearer {token}"}) is None


async def test_token_in_handshake_header_is_acknowledged(server: LiveServer) -> None:
    token = await token_for(server.server.config.app, "bob")  # type: ignore[arg-type]
    assert await close_code(server, {}, headers={"Authorization": f"Bearer {token}"}) is None


@pytest.mark.parametrize("payload", [{}, {"authorization": "Bearer forged"}, {"authorization": 42}])
async def test_missing_or_bad_token_closes_4403(server: LiveServer, payload: dict) -> None:
    assert await close_code(server, payload) == 4403


async def test_no_connection_init_closes_4408(server: LiveServer) -> None:
    assert await close_code(server, None) == 4408


# An expiring login on an open socket (SECURITY.md 35; issue 16, M4).

ME = "{ me { id } }"
GUARDED = "{ aiSessions { edges { cursor } } }"


def token_expiring_in(app: Starlette, token: str, seconds: int) -> str:
    """The same login as `token`, expiring in `seconds`."""
    tokens = app.state.services.tokens
    real = tokens.verify_access(token)
    now = int(time.time())
    claims = {
        "iss": "qiaoqiao",
        "aud": "qiaoqiao-api",
        "sub": str(real.user_id),
        "sid": str(real.session_id),
        "iat": now,
        "exp": now + seconds,
        "jti": f"short-{now}-{seconds}",
        "typ": "access",
    }
    key = derive_key(app.state.services.settings.secret_key.get_secret_value(), "jwt")
    return jwt.encode(claims, key, algorithm=ALGORITHM, headers={"kid": tokens._signing[0]})


async def ask(ws: WsClient, op_id: str, query: str) -> dict:
    """A query over the socket: its `next` message (its `complete` is read too)."""
    await ws.subscribe(op_id, query)
    message = await ws.next()
    assert message["id"] == op_id and message["type"] == "next", message
    assert await ws.next() == {"id": op_id, "type": "complete"}
    return message


async def test_a_socket_closes_4403_at_expiry_without_a_subscription(server: LiveServer) -> None:
    """The issue's finding: `{ me { id } }` was still answered 40 s after `exp`."""
    app = server.server.config.app
    async with running_app(app) as http:  # type: ignore[arg-type]
        login = await registered_user(GraphQLClient(http), "erin")
    short = token_expiring_in(app, login["accessToken"], 2)  # type: ignore[arg-type]
    async with WsClient.connect(server, short) as ws:
        answered = await ask(ws, "1", ME)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.next(timeout=5)
    assert answered["payload"]["data"]["me"]["id"] == login["me"]["id"]
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


async def test_every_operation_checks_expiry_and_revocation(
    server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = server.server.config.app
    async with running_app(app) as http:  # type: ignore[arg-type]
        gql = GraphQLClient(http)
        login = await registered_user(gql, "fay")
        async with WsClient.connect(server, login["accessToken"]) as ws:
            assert (await ask(ws, "1", GUARDED))["payload"].get("errors") is None
            # Past the token's expiry for operations (the socket's own timer is not moved):
            # the operation is refused as over HTTP.
            later = time.time() + 3600
            monkeypatch.setattr(context_module, "now", lambda: later)
            expired = await ask(ws, "2", GUARDED)
            monkeypatch.undo()
            assert expired["payload"]["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
            assert "expired" in expired["payload"]["errors"][0]["message"]
            # Logged out over HTTP: the socket's next operation has no login either.
            logout = await gql(
                "mutation ($t: String!) { logout(refreshToken: $t) { ok } }",
                {"t": login["refreshToken"]},
                token=login["accessToken"],
            )
            assert logout.data == {"logout": {"ok": True}}
            revoked = await ask(ws, "3", GUARDED)
    assert revoked["payload"]["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_ping_with_a_fresh_token_keeps_the_socket_open(server: LiveServer) -> None:
    app = server.server.config.app
    async with running_app(app) as http:  # type: ignore[arg-type]
        login = await registered_user(GraphQLClient(http), "gus")
    short = token_expiring_in(app, login["accessToken"], 2)  # type: ignore[arg-type]
    fresh = token_expiring_in(app, login["accessToken"], 600)  # type: ignore[arg-type]
    async with WsClient.connect(server, short) as ws:
        await ws.subscribe("live", "subscription { whisperReceived { id } }")
        await ws.ws.send(
            json.dumps({"type": "ping", "payload": {"authorization": f"Bearer {fresh}"}})
        )
        pong = json.loads(await ws.ws.recv())
        await asyncio.sleep(3)  # past the first token's expiry
        after = await ask(ws, "1", ME)
    assert pong == {"type": "pong"}
    assert after["payload"]["data"]["me"]["id"] == login["me"]["id"]


@pytest.mark.parametrize("whose", ["another user", "forged", "expired"])
async def test_a_ping_with_a_bad_token_closes_4403(server: LiveServer, whose: str) -> None:
    app = server.server.config.app
    async with running_app(app) as http:  # type: ignore[arg-type]
        gql = GraphQLClient(http)
        login = await registered_user(gql, "hal")
        other = await registered_user(gql, "ida")
    bad = {
        "another user": other["accessToken"],
        "forged": "not-a-token",
        "expired": token_expiring_in(app, login["accessToken"], -10),  # type: ignore[arg-type]
    }[whose]
    async with WsClient.connect(server, login["accessToken"]) as ws:
        await ws.ws.send(
            json.dumps({"type": "ping", "payload": {"authorization": f"Bearer {bad}"}})
        )
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.next(timeout=5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
