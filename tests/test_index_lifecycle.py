"""The profile index is always complete, or says it is not: seed-demo reaches it, a server
catches up with rows that bypassed the outbox (a restore), a version change rebuilds it in the
background, `qiaoqiao reindex` works beside a running server and without one, a second process
on the same embedded index says it is degraded (and logs it once), `serve --workers 2` without
QDRANT_URL refuses, and MCP over stdio beside a server flags its degraded answers."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import time
from typing import Any

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from sqlalchemy import text
from starlette.applications import Starlette

from src.ai import neutral
from src.ai.vector_store import list_collections
from src.app import create_app
from src.config import Settings, reveal
from src.db import create_engine, create_sessionmaker
from src.models import utcnow
from src.seeding import seed_demo_users
from tests.ai_helpers import indexed, populate
from tests.helpers import GraphQLClient, dev_login, running_app, sql

DISCOVER = """query ($p: String, $f: DiscoveryFilter) {
  discover(prompt: $p, filter: $f, first: 20) {
    edges { node { user { profile { nickname } } } } degraded } }"""


def worker(settings: Settings, **changes: Any) -> Settings:
    """The vector worker on; discovery may be asked often (the tests poll it)."""
    limits = {plan: {**kinds, "DISCOVERY": 10_000} for plan, kinds in settings.quota_limits.items()}
    return settings.model_copy(
        update={
            "vector_worker": True,
            "quota_limits": limits,
            "rate_limits": {"discover:user": (10_000, 60)},
            **changes,
        }
    )


async def seed(settings: Settings, count: int, *, bypass_outbox: bool = False) -> None:
    """`qiaoqiao seed-demo`; `bypass_outbox`: then forget the queue (a restore, an import)."""
    engine = create_engine(reveal(settings.database_url), settings)
    try:
        async with create_sessionmaker(engine)() as session:
            await seed_demo_users(
                session, count=count, seed=5, policy_version="2026-11", now=utcnow()
            )
            if bypass_outbox:
                await session.exec(text("DELETE FROM vector_outbox"))  # type: ignore[call-overload]
                await session.commit()
    finally:
        await engine.dispose()


async def discover(gql: GraphQLClient, token: str, prompt: str = "朋友") -> dict[str, Any]:
    response = await gql(DISCOVER, {"p": prompt}, token=token)
    assert response.errors == [], response.errors
    return response.data["discover"]


async def until(check: Any, within: float = 120, what: str = "the condition") -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


async def complete(app: Starlette) -> None:
    index = app.state.services.vectors

    async def done() -> bool:
        return (
            index.complete
            and index.building is None
            and not await sql(app, "SELECT count(*) FROM vector_outbox")
        )

    await until(done, what="a complete index")


async def test_seed_demo_users_are_found_by_discovery(settings: Settings) -> None:
    app = create_app(worker(settings))
    async with running_app(app) as http:
        gql = GraphQLClient(http)
        await complete(app)
        await seed(settings, 40)
        assert await sql(app, "SELECT count(*) FROM vector_outbox") == 40  # queued, as the API does
        await complete(app)
        token = (await dev_login(gql, "demo-000003"))["accessToken"]
        result = await discover(gql, token)
        assert result["degraded"] is False
        assert len(result["edges"]) == 20
        indexed_count = await app.state.services.vectors.count()
        assert indexed_count == await sql(
            app, "SELECT count(*) FROM user_profiles WHERE visibility = 'discoverable'"
        )


async def test_a_server_backfills_what_bypassed_the_outbox_and_says_so_meanwhile(
    settings: Settings,
) -> None:
    app = create_app(worker(settings))
    async with running_app(app):
        await complete(app)  # an index of the current version exists, empty
    # A restore or an import: people in PostgreSQL that nothing queued.
    await seed(settings, 30, bypass_outbox=True)
    app = create_app(worker(settings))
    async with running_app(app) as http:
        gql = GraphQLClient(http)
        token = (await dev_login(gql, "demo-000001"))["accessToken"]
        seen_degraded = False
        deadline = time.monotonic() + 120
        while True:
            result = await discover(gql, token)
            # Never an empty answer that claims to be complete.
            assert result["edges"] or result["degraded"], result
            seen_degraded |= result["degraded"]
            if not result["degraded"] and len(result["edges"]) >= 20:
                break
            assert time.monotonic() < deadline, "the backfill did not finish"
            await asyncio.sleep(0.2)
        assert seen_degraded, "the answers before the backfill was done must say degraded"
        assert await app.state.services.vectors.count() == await sql(
            app, "SELECT count(*) FROM user_profiles WHERE visibility = 'discoverable'"
        )


async def test_a_version_change_rebuilds_in_the_background(settings: Settings) -> None:
    before = worker(settings, vector_transform=neutral.IDENTITY)
    app = create_app(before)
    async with running_app(app) as http:
        gql = GraphQLClient(http)
        tokens = await populate(gql)
        await indexed(app)
        await complete(app)
        old = app.state.services.vectors.serving.name
    assert await list_collections(qdrant_url=None, data_dir=settings.data_dir) == [old]

    app = create_app(worker(settings))  # the language-neutral transform: another version
    async with running_app(app) as http:
        gql = GraphQLClient(http)
        index = app.state.services.vectors
        await index.ensure_open()
        # The old collection serves (its own transform applied to queries) while the new
        # one is built: discovery is not degraded meanwhile.
        assert index.serving.name == old and index.serving.version.transform == neutral.IDENTITY
        first = await discover(gql, tokens["viewer"], "hiking")
        assert first["degraded"] is False and first["edges"]

        async def rebuilt() -> bool:
            return index.serving.version.transform == neutral.NEUTRAL

        await until(rebuilt, what="the rebuild")
        new = index.serving.name
        assert new != old

        async def dropped() -> bool:  # the switch drops the replaced collection after it
            return await list_collections(qdrant_url=None, data_dir=settings.data_dir) == [new]

        await until(dropped, what="the old collection to go")
        result = await discover(gql, tokens["viewer"], "hiking")
        assert result["degraded"] is False
        assert len(result["edges"]) == 3  # everyone but the viewer
    assert await list_collections(qdrant_url=None, data_dir=settings.data_dir) == [new]
    meta = json.loads((settings.data_dir / "vectors" / f"{new}.meta.json").read_text())
    assert meta["transform"] == neutral.NEUTRAL and meta["state"] == "ready"


def cli_env(settings: Settings) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if k not in ("APP_ENV", "QDRANT_URL")},
        "DATABASE_URL": reveal(settings.database_url),
        "DATA_DIR": str(settings.data_dir),
        "MODEL_DIR": str(settings.model_dir),
    }


async def qiaoqiao(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "src.cli", *args],
        env=cli_env(settings),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


async def test_reindex_with_and_without_a_running_server(settings: Settings) -> None:
    app = create_app(worker(settings))
    async with running_app(app) as http:
        gql = GraphQLClient(http)
        await populate(gql)
        await indexed(app)
        await complete(app)
        served = app.state.services.vectors.serving.name
        done = await qiaoqiao(settings, "reindex")
        assert done.returncode == 0, done.stderr
        # The server holds the embedded index: the command went through its outbox.
        assert "reindexed 4 users through the running server's outbox" in done.stdout
        assert "reindex: 4/4" in done.stderr  # progress
        assert app.state.services.vectors.serving.name == served
        assert not await sql(app, "SELECT count(*) FROM vector_outbox")
    done = await qiaoqiao(settings, "reindex")  # no server: a fresh full build
    assert done.returncode == 0, done.stderr
    assert "indexed users: 4" in done.stdout
    names = await list_collections(qdrant_url=None, data_dir=settings.data_dir)
    assert len(names) == 1 and names[0] != served


async def test_serve_with_two_workers_needs_qdrant(settings: Settings) -> None:
    done = await qiaoqiao(settings, "serve", "--workers", "2", "--port", "1")
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [
        "qiaoqiao serve: --workers 2 needs QDRANT_URL (a Qdrant server all workers share); "
        "the embedded vector index serves one process"
    ]


class Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


async def test_a_second_process_on_the_same_index_says_degraded_once(settings: Settings) -> None:
    first = create_app(worker(settings))
    async with running_app(first) as http:
        gql = GraphQLClient(http)
        tokens = await populate(gql)
        await indexed(first)
        await complete(first)
        second = create_app(worker(settings))  # another process, in effect: its own store
        recorder = Recorder()  # the app configures the root logger: listen on the module's
        logging.getLogger("src.resolvers.index_worker").addHandler(recorder)
        try:
            async with running_app(second) as other:
                await asyncio.sleep(3)  # ten rounds of the worker's old 0.3 s pause
                answer = await discover(GraphQLClient(other), tokens["viewer"], "hiking")
        finally:
            logging.getLogger("src.resolvers.index_worker").removeHandler(recorder)
        assert answer["degraded"] is True and answer["edges"]
        paused = [m for m in recorder.messages if "indexing paused" in m]
        assert len(paused) == 1 and "open in another process" in paused[0], recorder.messages
        assert (await discover(gql, tokens["viewer"], "hiking"))["degraded"] is False


async def test_stdio_mcp_beside_a_server_flags_degraded_answers(settings: Settings) -> None:
    app = create_app(worker(settings))
    async with running_app(app) as http:
        gql = GraphQLClient(http)
        tokens = await populate(gql)
        await indexed(app)
        await complete(app)
        over_http = await discover(gql, tokens["viewer"], "hiking")
        assert over_http["degraded"] is False
        env = {**cli_env(settings), "QIAOQIAO_TOKEN": tokens["viewer"]}
        params = StdioServerParameters(
            command=sys.executable, args=["-m", "src.cli", "mcp"], env=env
        )
        async with stdio_client(params) as (read, write), ClientSession(read, write) as mcp:
            await mcp.initialize()
            result = await mcp.call_tool("search_users", {"query": "hiking"})
            found = json.loads(result.content[0].text)  # type: ignore[union-attr]
    # The server holds the embedded index: stdio ranked from PostgreSQL, and says so.
    assert found["degraded"] is True
    assert {p["nickname"] for p in found["people"]} <= {"pm_hiker", "designer", "climber"}

    # Alone, stdio opens the index itself and answers like the server did.
    env = {**cli_env(settings), "QIAOQIAO_TOKEN": tokens["viewer"]}
    params = StdioServerParameters(command=sys.executable, args=["-m", "src.cli", "mcp"], env=env)
    async with stdio_client(params) as (read, write), ClientSession(read, write) as mcp:
        await mcp.initialize()
        result = await mcp.call_tool("search_users", {"query": "hiking"})
        alone = json.loads(result.content[0].text)  # type: ignore[union-attr]
    assert alone["degraded"] is False
    assert [p["nickname"] for p in alone["people"]] == [
        e["node"]["user"]["profile"]["nickname"] for e in over_http["edges"]
    ]


async def test_an_index_from_before_versions_serves_until_replaced(settings: Settings) -> None:
    app = create_app(worker(settings, vector_transform=neutral.IDENTITY))
    async with running_app(app) as http:
        gql = GraphQLClient(http)
        tokens = await populate(gql)
        await indexed(app)
        await complete(app)
        built = app.state.services.vectors.serving.name
    # What the code before versions left: the same vectors in `profiles`, without meta.
    vectors = settings.data_dir / "vectors"
    (vectors / built).rename(vectors / "profiles")
    (vectors / f"{built}.meta.json").unlink()

    app = create_app(worker(settings))
    async with running_app(app) as http:
        gql = GraphQLClient(http)
        index = app.state.services.vectors
        await index.ensure_open()
        assert index.serving.name == "profiles"
        assert (await discover(gql, tokens["viewer"], "hiking"))["degraded"] is False

        async def rebuilt() -> bool:
            return index.serving.name != "profiles"

        await until(rebuilt, what="the rebuild")
        new = index.serving.name

        async def dropped() -> bool:  # the switch drops the replaced collection after it
            return await list_collections(qdrant_url=None, data_dir=settings.data_dir) == [new]

        await until(dropped, what="the old collection to go")
