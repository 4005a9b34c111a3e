"""A request cannot run forever (SECURITY.md 8): the operation timeout and PostgreSQL's
statement_timeout both answer TIMEOUT, roll the operation back and leave no connection behind.

PostgreSQL is made slow for real: another connection holds a lock the operation needs."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url
from starlette.applications import Starlette

from src import events
from src.app import create_app
from src.config import Settings
from tests.helpers import (
    GraphQLClient,
    WsClient,
    live_server,
    registered_user,
    running_app,
    sql,
)

ME = "{ me { id profile { bio } } }"
WRITE_THEN_BLOCK = """mutation {
  a: updateProfile(input: {bio: "written before the stall"}) { errors { code } }
  b: addProject(input: {title: "blocked"}) { errors { code } }
}"""


def plain_url(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(False)


@contextlib.asynccontextmanager
async def locked(database_url: str, table: str) -> AsyncIterator[asyncpg.Connection]:
    """Hold an exclusive lock on `table` from a connection of our own until the block ends."""
    conn = await asyncpg.connect(plain_url(database_url))
    try:
        transaction = conn.transaction()
        await transaction.start()
        await conn.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        try:
            yield conn
        finally:
            await transaction.rollback()
    finally:
        await conn.close()


async def app_connections(database_url: str) -> list[dict[str, Any]]:
    """The app's server-side sessions (application_name qiaoqiao), seen from outside."""
    conn = await asyncpg.connect(plain_url(database_url))
    try:
        rows = await conn.fetch(
            "SELECT state, wait_event_type, left(query, 60) AS query FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = 'qiaoqiao'"
        )
    finally:
        await conn.close()
    return [dict(r) for r in rows]


async def assert_nothing_left(app: Starlette, database_url: str) -> None:
    """Pooled connections are idle: no open transaction, no statement still waiting. (Allow
    a moment for work the test's last step set off, e.g. a closed socket's presence row.)"""
    for _ in range(30):
        rows = await app_connections(database_url)
        idle = all(row["state"] == "idle" for row in rows)
        if idle and app.state.services.engine.pool.checkedout() == 0:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"connections left busy: {rows}")


async def registered(settings: Settings, name: str) -> dict[str, Any]:
    """Register under the default timeouts: a cold app's first requests (pool, caches) can take
    longer than the 0.5 s these tests give the operation they stall."""
    async with running_app(create_app(settings)) as http:
        return await registered_user(GraphQLClient(http), name)


@pytest.mark.parametrize(
    ("timeouts", "message"),
    [
        ({"operation_timeout_s": 0.5}, "The operation took longer than 0.5 s and was stopped."),
        ({"db_statement_timeout_ms": 500}, "The operation took too long and was stopped."),
    ],
    ids=["operation_timeout", "statement_timeout"],
)
async def test_a_stalled_query_answers_timeout_and_leaves_nothing_open(
    settings: Settings, database_url: str, timeouts: dict[str, Any], message: str
) -> None:
    token = (await registered(settings, "ann"))["accessToken"]
    app = create_app(settings.model_copy(update=timeouts))
    async with running_app(app) as http:
        gql = GraphQLClient(http)
        async with locked(database_url, "users"):
            started = time.monotonic()
            response = await gql(ME, token=token)
            took = time.monotonic() - started
            assert response.status == 200
            assert not (response.data or {}).get("me")  # `me` is nullable: null with the error
            assert response.error_codes == ["TIMEOUT"]
            assert response.errors[0]["message"] == message
            assert 0.4 < took < 3
            await assert_nothing_left(app, database_url)
        # The lock is gone: the same pool answers at once.
        again = await gql(ME, token=token)
        assert again.errors == [] and again.data["me"]["id"]
        await assert_nothing_left(app, database_url)


async def test_a_timed_out_mutation_is_rolled_back(settings: Settings, database_url: str) -> None:
    token = (await registered(settings, "ann"))["accessToken"]
    app = create_app(settings.model_copy(update={"operation_timeout_s": 0.5}))
    async with running_app(app) as http:
        gql = GraphQLClient(http)
        await sql(app, "UPDATE user_profiles SET bio = 'before'")
        async with locked(database_url, "user_projects"):
            response = await gql(WRITE_THEN_BLOCK, token=token)
            assert response.error_codes == ["TIMEOUT"]
        # The first field's write was part of the operation's transaction: undone with it.
        assert await sql(app, "SELECT bio FROM user_profiles") == "before"
        assert await sql(app, "SELECT count(*) FROM user_projects") == 0
        await assert_nothing_left(app, database_url)


async def test_a_websocket_operation_times_out_and_the_socket_goes_on(
    settings: Settings, database_url: str
) -> None:
    token = (await registered(settings, "ann"))["accessToken"]
    app = create_app(settings.model_copy(update={"operation_timeout_s": 0.5}))
    async with live_server(app) as server:
        async with WsClient.connect(server, token) as ws:
            async with locked(database_url, "users"):
                await ws.subscribe("1", ME)
                message = await ws.next(timeout=3)
            assert message["type"] == "next", message
            assert [e["extensions"]["code"] for e in message["payload"]["errors"]] == ["TIMEOUT"]
            assert (await ws.next())["type"] == "complete"
            await ws.subscribe("2", ME)
            answer = await ws.next()
            assert answer["payload"]["data"]["me"]["id"], json.dumps(answer)
        await assert_nothing_left(app, database_url)


async def test_a_stalled_subscription_event_times_out(
    settings: Settings, database_url: str
) -> None:
    """A subscription lives for hours, but each event's reads have the operation timeout."""
    bob = await registered(settings, "bob")
    app = create_app(settings.model_copy(update={"operation_timeout_s": 0.5}))
    async with live_server(app) as server:
        async with WsClient.connect(server, bob["accessToken"]) as ws:
            await ws.subscribe("1", "subscription { whisperReceived { id } }")
            await asyncio.sleep(0.3)
            async with locked(database_url, "users"):
                # Wake bob's subscription as a new whisper would; its reads then stall.
                notify = await asyncpg.connect(plain_url(database_url))
                try:
                    payload = json.dumps({"k": events.WHISPER, "u": [bob["me"]["id"]]})
                    await notify.execute(f"NOTIFY {events.CHANNEL}, '{payload}'")
                finally:
                    await notify.close()
                started = time.monotonic()
                message = await ws.next(timeout=3)
                assert time.monotonic() - started < 2
            assert message["type"] == "next", message
            assert message["payload"]["errors"][0]["extensions"] == {"code": "TIMEOUT"}
        await assert_nothing_left(app, database_url)
