"""Migrations run once: `migrate` holds a PostgreSQL advisory lock, so processes that start
together (replicas, a release job and a server) migrate one after the other."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import asyncpg

from src.db import MIGRATE_LOCK_ID
from src.doctor import code_heads, plain_dsn
from tests.cli_helpers import cli_env, run_cli
from tests.db_server import admin_execute, with_database


async def _waiting_for_the_lock(conn: asyncpg.Connection, expected: int) -> None:
    """Until `expected` other sessions wait for an advisory lock in this database."""
    for _ in range(600):
        waiting = await conn.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
        if waiting >= expected:
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{expected} migrations never queued on the advisory lock")


async def test_two_migrations_at_once_run_one_after_the_other(
    pg_admin_url: str, tmp_path: Path
) -> None:
    name = f"qq_lock_{os.getpid()}"
    await admin_execute(pg_admin_url, f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}")
    url = with_database(pg_admin_url, name)
    env = cli_env(DATABASE_URL=url, DATA_DIR=tmp_path / "data")
    holder = await asyncpg.connect(plain_dsn(url))
    try:
        # Hold the lock ourselves so that both processes are surely running at once, then
        # let them go together.
        await holder.execute("SELECT pg_advisory_lock($1)", MIGRATE_LOCK_ID)
        runs = [asyncio.create_task(run_cli("migrate", env=env, cwd=tmp_path)) for _ in range(2)]
        await _waiting_for_the_lock(holder, 2)
        await holder.execute("SELECT pg_advisory_unlock($1)", MIGRATE_LOCK_ID)
        first, second = await asyncio.gather(*runs)
        heads = await holder.fetch("SELECT version_num FROM alembic_version")
    finally:
        await holder.close()
        await admin_execute(pg_admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    assert (first.code, second.code) == (0, 0), first.err + second.err
    said = sorted(
        line.split("qiaoqiao.migrate: ", 1)[1]
        for line in (first.err + second.err).splitlines()
        if "qiaoqiao.migrate: " in line
    )
    head = ", ".join(sorted(code_heads()))
    assert len(said) == 2, said
    assert said[0].startswith(f"database schema at {head}, nothing to migrate: ")
    assert said[1].startswith(f"database schema migrated empty -> {head}: ")
    assert {row["version_num"] for row in heads} == code_heads()
