"""Fault injection against real processes on 127.0.0.1 (SECURITY.md 17, 23, 24).

The app runs under uvicorn and is driven over real sockets while its dependencies fail: a
PostgreSQL of the test's own is stopped and started under load, the vector store is a closed
port or a server that never answers, WeChat fails or hangs. (The fake model server belongs to the
AI issue's branch.) Every request must answer within a bound and never with a 5xx or an
unexpected error, and the service recovers without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from src.app import create_app
from src.cli import migrate
from src.config import Settings
from src.db import EmbeddedPostgres, async_url
from tests.fakes.wechat import Behaviour, FakeWechat
from tests.helpers import (
    LOGIN,
    SEND,
    GraphQLClient,
    WsClient,
    free_port,
    live_server,
    registered_user,
)

pytestmark = pytest.mark.faults

BOUND_S = 5.0  # no request may take longer than this, whatever is down


@contextlib.asynccontextmanager
async def client(url: str) -> AsyncIterator[GraphQLClient]:
    async with httpx.AsyncClient(base_url=url, timeout=BOUND_S * 2) as http:
        yield GraphQLClient(http)


def unexpected(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in errors if (e.get("extensions") or {}).get("code") == "INTERNAL_SERVER_ERROR"]


# -- PostgreSQL stopped and restarted under load ------------------------------------------------


@pytest.fixture
async def own_postgres(tmp_path: Path) -> AsyncIterator[tuple[EmbeddedPostgres, str]]:
    """A PostgreSQL of the test's own, migrated: stopping it disturbs nobody else."""
    server = EmbeddedPostgres(tmp_path / "pg")
    url = async_url(server.start())
    await asyncio.to_thread(migrate, url)
    try:
        yield server, url
    finally:
        server.stop()


async def test_postgres_stopped_and_restarted_under_load(
    own_postgres: tuple[EmbeddedPostgres, str], tmp_path: Path, model_dir: Path
) -> None:
    server, url = own_postgres
    settings = Settings(
        _env_file=None,
        database_url=url,
        data_dir=tmp_path / "data",
        model_dir=model_dir,
        vector_worker=False,
        db_connect_timeout_s=2.0,
        ready_timeout_s=1.0,
        rate_limits={"feed:user": (100_000, 60)},  # six clients browse non-stop
    )
    app = create_app(settings)
    async with live_server(app) as live, client(live.url) as gql:
        alice = await registered_user(gql, "alice")
        bob = await registered_user(gql, "bob")
        phase = "up"
        seen: dict[str, Counter[str]] = {"up": Counter(), "down": Counter(), "again": Counter()}
        slowest = 0.0
        stop = asyncio.Event()

        async def load(worker: int) -> None:
            nonlocal slowest
            queries = [
                ("{ me { id profile { nickname } } }", alice["accessToken"]),
                ("{ institutions(first: 5) { edges { node { name } } } }", None),
                ("{ users(first: 5) { edges { node { id } } } }", bob["accessToken"]),
            ]
            i = worker
            while not stop.is_set():
                query, token = queries[i % len(queries)]
                i += 1
                started = time.monotonic()
                response = await gql(query, token=token)
                slowest = max(slowest, time.monotonic() - started)
                assert response.status == 200, response
                assert not unexpected(response.errors), response.errors
                codes = response.error_codes or ["ok"]
                seen[phase].update(str(c) for c in codes)
                await asyncio.sleep(0.02)

        workers = [asyncio.create_task(load(n)) for n in range(6)]
        try:
            await asyncio.sleep(1.0)
            assert (await gql.http.get("/ready")).status_code == 200

            server.stop()
            phase = "down"
            started = time.monotonic()
            ready = await gql.http.get("/ready")
            assert ready.status_code == 503 and ready.json()["database"] == "unavailable"
            assert time.monotonic() - started < 3
            assert (await gql("{ health }")).data == {"health": "ok"}  # the process is alive
            await asyncio.sleep(2.0)

            await asyncio.to_thread(server.start)
            phase = "again"
            for _ in range(40):  # PostgreSQL accepts connections a moment after it starts
                if (await gql.http.get("/ready")).status_code == 200:
                    break
                await asyncio.sleep(0.25)
            assert (await gql.http.get("/ready")).status_code == 200
            seen["again"].clear()
            await asyncio.sleep(1.5)
        finally:
            stop.set()
            results = await asyncio.gather(*workers, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        assert slowest < BOUND_S, slowest
        assert set(seen["up"]) == {"ok"}, seen
        # Meanwhile the API answered a clear, retryable error instead of hanging or failing.
        assert seen["down"]["SERVICE_UNAVAILABLE"] > 0, seen
        assert set(seen["down"]) <= {"ok", "SERVICE_UNAVAILABLE"}, seen
        # Back without a restart of the app: every request answers again.
        assert set(seen["again"]) == {"ok"} and seen["again"]["ok"] > 10, seen

        # Real time recovered too: the event listener reconnected and delivery works.
        hub = app.state.services.hub
        for _ in range(50):
            if hub.connected.is_set():
                break
            await asyncio.sleep(0.1)
        async with WsClient.connect(live, bob["accessToken"]) as ws:
            await ws.subscribe("1", "subscription { whisperReceived { content } }")
            await asyncio.sleep(0.3)
            sent = await gql(
                SEND,
                {"input": {"recipientId": bob["me"]["id"], "content": "still here"}},
                token=alice["accessToken"],
            )
            assert sent.errors == [] and sent.data["sendWhisper"]["errors"] == [], sent
            message = await ws.next()
            assert message["payload"]["data"]["whisperReceived"]["content"] == "still here"


# -- The vector store unreachable or hanging, over the network ----------------------------------

DISCOVER = """query ($p: String) { discover(prompt: $p, first: 5) {
  degraded edges { node { user { id } } } } }"""


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[int]:
    """A TCP server that accepts connections and never answers: a hung Qdrant."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("failure", ["unreachable", "hanging"])
async def test_vector_store_down_degrades_discovery_within_two_seconds(
    settings: Settings, failure: str
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        if failure == "hanging":
            port = await stack.enter_async_context(silent_server())
        else:
            port = free_port()  # nothing listens there
        app = create_app(
            settings.model_copy(
                update={"qdrant_url": f"http://127.0.0.1:{port}", "vector_worker": True}
            )
        )
        live = await stack.enter_async_context(live_server(app))
        gql = await stack.enter_async_context(client(live.url))
        viewer = await registered_user(gql, "viewer")
        other = await registered_user(gql, "other")
        update = "mutation ($i: ProfileInput!) { updateProfile(input: $i) { errors { code } } }"
        changed = await gql(update, {"i": {"bio": "摄影 and hiking"}}, token=other["accessToken"])
        assert changed.data["updateProfile"]["errors"] == []
        # The first search loads the embedding model (a cold start, not an outage): warm it.
        await app.state.services.embedder.embed_queries(["warm up"])
        for prompt in ("摄影", None):
            started = time.monotonic()
            response = await gql(DISCOVER, {"p": prompt}, token=viewer["accessToken"])
            assert time.monotonic() - started < 2.0
            assert response.status == 200 and response.errors == [], response.errors
            assert response.data["discover"]["degraded"] is True
        ids = [e["node"]["user"]["id"] for e in response.data["discover"]["edges"]]
        assert other["me"]["id"] in ids  # the fallback ranking from PostgreSQL
        ready = await gql.http.get("/ready")
        assert ready.status_code == 200 and ready.json()["vectors"] == "unavailable"
        # Changes wait in the outbox for the index to come back; none is lost.
        backlog = ready.json()["outboxBacklog"]
        assert backlog >= 1


# -- WeChat failing and hanging, many logins at once --------------------------------------------


@pytest.mark.parametrize(
    "behaviour", [Behaviour(status=503), Behaviour(delay=30)], ids=["failing", "hanging"]
)
async def test_wechat_failing_or_hanging_under_load(
    wx_settings: Settings, fake_wechat: FakeWechat, behaviour: Behaviour
) -> None:
    fake_wechat.fail_next(*[behaviour] * 100)
    app: Starlette = create_app(wx_settings)
    async with live_server(app) as live, client(live.url) as gql:

        async def login(n: int) -> tuple[float, Any]:
            started = time.monotonic()
            response = await gql(LOGIN, {"code": f"code-{n}"})
            return time.monotonic() - started, response

        answers = await asyncio.gather(*(login(n) for n in range(10)))
        # Bounded by the client's own timeouts (a hanging WeChat holds its 30 s), with room
        # for a cold app's first requests on a loaded machine (5.03 s was seen in CI).
        bound = wx_settings.wechat_connect_timeout_s + wx_settings.wechat_read_timeout_s + 5
        for took, response in answers:
            assert took < bound
            assert response.status == 200
            payload = response.data["wechatLogin"]
            assert [e["code"] for e in payload["errors"]] == ["WECHAT_UNAVAILABLE"]
            assert payload["accessToken"] is None
        assert (await gql("{ health }")).data == {"health": "ok"}
