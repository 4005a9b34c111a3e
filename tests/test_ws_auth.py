"""Websocket authentication in `connection_init`, and its time limit (SECURITY.md 19)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
import websockets
from starlette.applications import Starlette

from src.app import create_app
from src.config import Settings
from tests.helpers import GraphQLClient, LiveServer, dev_login, live_server, running_app

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
