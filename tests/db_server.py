"""Where the tests' PostgreSQL comes from: TEST_DATABASE_URL, else 127.0.0.1:5432 when it
answers, else an embedded server in a temporary folder (a laptop with nothing installed)."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from src.db import EmbeddedPostgres

LOCAL_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


async def _answers(url: str) -> bool:
    try:
        conn = await asyncpg.connect(url, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    await conn.close()
    return True


def find_server(tmp: Path) -> tuple[str, EmbeddedPostgres | None]:
    """An admin URL (asyncpg form) of a server the tests may create databases on."""
    if url := os.environ.get("TEST_DATABASE_URL"):
        return url, None
    if _port_open("127.0.0.1", 5432) and asyncio.run(_answers(LOCAL_URL)):
        return LOCAL_URL, None
    server = EmbeddedPostgres(tmp / "pg")
    return server.start(), server


def with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


async def admin_execute(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()
