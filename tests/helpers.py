"""Test helpers: a GraphQL client over ASGI, a live uvicorn server, SQL statement counting."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette


@dataclass
class GQLResponse:
    status: int
    # The answer's `data`: a dict, or None when the request failed. Typed Any so that tests
    # index it directly; a None there fails the test at once, which is what a test wants.
    data: Any
    errors: list[dict[str, Any]] = field(default_factory=list)
    headers: httpx.Headers | None = None

    @property
    def error_codes(self) -> list[str | None]:
        return [(e.get("extensions") or {}).get("code") for e in self.errors]


class GraphQLClient:
    """POSTs GraphQL documents to an app; `token` sends `Authorization: Bearer …`."""

    def __init__(self, http: httpx.AsyncClient, path: str = "/graphql"):
        self.http = http
        self.path = path

    async def __call__(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> GQLResponse:
        sent = {"content-type": "application/json", **(headers or {})}
        if token:
            sent["authorization"] = f"Bearer {token}"
        body: dict[str, Any] = {"query": query}
        if variables is not None:
            body["variables"] = variables
        response = await self.http.post(self.path, json=body, headers=sent)
        return self.parse(response)

    @staticmethod
    def parse(response: httpx.Response) -> GQLResponse:
        try:
            payload = response.json()
        except ValueError:
            payload = {}
        if not isinstance(payload, dict):
            payload = {}
        return GQLResponse(
            status=response.status_code,
            data=payload.get("data"),
            errors=payload.get("errors") or [],
            headers=response.headers,
        )


@contextlib.asynccontextmanager
async def running_app(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan and give an httpx client that talks to it in-process."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    ws_url: str
    server: uvicorn.Server


@contextlib.asynccontextmanager
async def live_server(app: Starlette) -> AsyncIterator[LiveServer]:
    """Serve the app with a real uvicorn on a free 127.0.0.1 port, in this event loop."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, lifespan="on", ws="websockets-sansio"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(200):
            if server.started:
                break
            if task.done():
                task.result()
            await asyncio.sleep(0.025)
        else:
            raise TimeoutError("uvicorn did not start")
        yield LiveServer(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", server)
    finally:
        server.should_exit = True
        done, _ = await asyncio.wait({task}, timeout=3)
        if not done:  # a handler still hangs on purpose (fault tests): stop without waiting
            server.force_exit = True
            await asyncio.wait_for(task, timeout=10)


class StatementCounter:
    def __init__(self) -> None:
        self.statements: list[str] = []

    @property
    def count(self) -> int:
        return len(self.statements)


@contextlib.contextmanager
def count_statements(engine: AsyncEngine) -> Iterator[StatementCounter]:
    """Count the SQL statements sent through `engine` inside the block."""
    counter = StatementCounter()

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        counter.statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", before)
    try:
        yield counter
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", before)


LOGIN = """
mutation ($code: String!) {
  wechatLogin(code: $code) {
    accessToken refreshToken expiresIn isNewUser me { id registered }
    errors { code message field retryAfterSeconds }
  }
}
"""

REGISTER = """
mutation ($input: RegisterInput!) {
  register(input: $input) { me { id registered } errors { code message field } }
}
"""


async def dev_login(gql: GraphQLClient, name: str) -> dict[str, Any]:
    """Log in as development user `name`; returns the AuthPayload."""
    response = await gql(LOGIN, {"code": f"dev:{name}"})
    payload = (response.data or {})["wechatLogin"]
    assert payload["errors"] == [], payload
    return payload


async def registered_user(gql: GraphQLClient, name: str, **profile: Any) -> dict[str, Any]:
    """A development user who has completed `register`; returns the login payload."""
    login = await dev_login(gql, name)
    data = {"acceptedPolicyVersion": "2026-11", "nickname": name, **profile}
    response = await gql(REGISTER, {"input": data}, token=login["accessToken"])
    assert (response.data or {})["register"]["errors"] == [], response
    return login


async def sql(app: Starlette, statement: str, **params: Any) -> Any:
    """Run one statement on the app's database in its own transaction; its scalar, if any."""
    async with app.state.services.engine.begin() as conn:
        result = await conn.execute(text(statement), params)
        return result.scalar() if result.returns_rows else None


class WsClient:
    """A graphql-transport-ws client on a real websocket."""

    def __init__(self, ws: Any):
        self.ws = ws

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(cls, server: LiveServer, token: str) -> AsyncIterator[WsClient]:
        import json

        import websockets

        async with websockets.connect(
            server.ws_url + "/graphql",
            subprotocols=[websockets.Subprotocol("graphql-transport-ws")],
        ) as ws:
            await ws.send(
                json.dumps(
                    {"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}
                )
            )
            ack = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert ack == {"type": "connection_ack"}, ack
            yield cls(ws)

    async def subscribe(
        self, op_id: str, query: str, variables: dict[str, Any] | None = None
    ) -> None:
        import json

        payload: dict[str, Any] = {"query": query}
        if variables:
            payload["variables"] = variables
        await self.ws.send(json.dumps({"id": op_id, "type": "subscribe", "payload": payload}))

    async def next(self, timeout: float = 5) -> dict[str, Any]:  # noqa: ASYNC109
        """The next `next` message's payload (pings are answered, others returned)."""
        import json

        while True:
            raw = await asyncio.wait_for(self.ws.recv(), timeout)
            assert isinstance(raw, str), "graphql-transport-ws messages are text frames"
            message = json.loads(raw)
            if message["type"] == "ping":
                await self.ws.send(json.dumps({"type": "pong"}))
                continue
            return message

    async def nothing_for(self, seconds: float) -> bool:
        try:
            await self.next(seconds)
        except TimeoutError:
            return True
        return False


SEND = """mutation ($input: SendWhisperInput!) {
  sendWhisper(input: $input) {
    whisper { id content isAnonymous sender { id } recipient { id } isMine }
    errors { code message field }
  }
}"""


async def send_whisper(gql: GraphQLClient, token: str, **fields: Any) -> dict[str, Any]:
    response = await gql(SEND, {"input": fields}, token=token)
    assert response.errors == [], response.errors
    return response.data["sendWhisper"]
