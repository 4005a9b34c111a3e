"""The harness itself: migrations round-trip, live server with a real websocket, SQL counting."""

from __future__ import annotations

import json
import threading

import httpx
import websockets
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.applications import Starlette

from src.cli import alembic_config
from tests.helpers import GraphQLClient, count_statements, dev_login, live_server


def _in_thread(fn) -> None:  # type: ignore[no-untyped-def]
    # Alembic's env runs its own event loop, so keep it off the test's loop.
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


async def test_migrations_downgrade_and_upgrade_without_drift(database_url: str) -> None:
    from alembic import command

    config = alembic_config(database_url)
    _in_thread(lambda: command.downgrade(config, "base"))
    engine = create_async_engine(database_url)
    async with engine.connect() as conn:
        tables = await conn.scalar(
            text(
                "SELECT count(*) FROM pg_tables"
                " WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
            )
        )
    assert tables == 0
    _in_thread(lambda: command.upgrade(config, "head"))
    _in_thread(lambda: command.check(config))  # raises if the models drifted from migrations
    async with engine.connect() as conn:
        names = set(
            (
                await conn.execute(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                )
            ).scalars()
        )
    await engine.dispose()
    core = {
        "users",
        "user_profiles",
        "user_projects",
        "institutions",
        "whispers",
        "user_swipes",
        "memberships",
        "user_quotas",
        "ai_sessions",
        "user_reports",
    }
    assert core <= names


async def test_live_server_speaks_http_and_graphql_transport_ws(app: Starlette) -> None:
    async with live_server(app) as server:
        async with httpx.AsyncClient(base_url=server.url) as client:
            response = await client.post("/graphql", json={"query": "{ health }"})
            assert response.json()["data"] == {"health": "ok"}  # and, in development, its cost
            token = (await dev_login(GraphQLClient(client), "harness"))["accessToken"]
        async with websockets.connect(
            server.ws_url + "/graphql",
            subprotocols=[websockets.Subprotocol("graphql-transport-ws")],
        ) as ws:
            init = {"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}
            await ws.send(json.dumps(init))
            assert json.loads(await ws.recv()) == {"type": "connection_ack"}


async def test_statement_counter_counts_sql(app: Starlette, http: httpx.AsyncClient) -> None:
    engine = app.state.services.engine
    query = {"query": "{ institutions { edges { cursor } } }"}
    with count_statements(engine) as counted:
        await http.post("/graphql", json=query)
    with count_statements(engine) as health_only:
        await http.post("/graphql", json={"query": "{ health }"})
    assert counted.count >= 1
    assert any("FROM institutions" in s for s in counted.statements)
    assert health_only.count == 0
