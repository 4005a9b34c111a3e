"""/ready follows PostgreSQL down and back up without an app restart, and nothing hangs."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import text

from src.app import create_app
from src.config import Settings
from src.db import EmbeddedPostgres, async_url
from tests.helpers import GraphQLClient, running_app


async def test_ready_is_503_while_postgres_is_stopped(tmp_path: Path) -> None:
    # A server of the test's own, so stopping it disturbs nobody else.
    server = EmbeddedPostgres(tmp_path / "pg")
    url = async_url(server.start())
    settings = Settings(_env_file=None, database_url=url, ready_timeout_s=2.0)
    try:
        app = create_app(settings)
        async with running_app(app) as http:
            gql = GraphQLClient(http)
            assert (await http.get("/ready")).status_code == 200

            server.stop()
            started = time.monotonic()
            down = await http.get("/ready")
            assert down.status_code == 503
            assert down.json()["status"] == "unavailable"
            assert down.json()["database"] == "unavailable"
            assert time.monotonic() - started < 3
            # The API itself stays alive meanwhile.
            assert (await gql("{ health }")).data == {"health": "ok"}

            server.start()
            assert (await http.get("/ready")).status_code == 200
            # Pooled connections from before the restart are replaced, not handed out dead.
            engine = app.state.services.engine
            async with engine.connect() as conn:
                assert await conn.scalar(text("SELECT 1")) == 1
    finally:
        server.stop()
