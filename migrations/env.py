"""Async Alembic environment over the SQLModel metadata.

A caller may pass an open connection in `config.attributes["connection"]` (tests, the CLI);
otherwise the URL comes from `config.attributes["url"]` or the app's settings.

Online runs hold a PostgreSQL advisory lock throughout, so processes that start together
(replicas, workers, a release job) migrate one after the other: the first applies what is
missing, the next ones find the database already at head.
"""

from __future__ import annotations

import asyncio
import logging

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

import src.models  # noqa: F401  (registers every table on the metadata)
from src.config import get_settings
from src.db import MIGRATE_LOCK_ID, resolve_database_url

config = context.config
target_metadata = SQLModel.metadata
log = logging.getLogger("qiaoqiao.migrate")


def _configure(connection: Connection) -> None:
    # A session lock: it outlives the transactions below, and ends with the connection if
    # this process dies. Taken (and committed) before Alembic reads the current revision.
    connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": MIGRATE_LOCK_ID})
    connection.commit()
    try:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            compare_type=True,
            compare_server_default=False,
        )
        migration = context.get_context()
        before = migration.get_current_heads()
        with context.begin_transaction():
            context.run_migrations()
        after = migration.get_current_heads()
        _report(connection, before, after)
    finally:
        connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": MIGRATE_LOCK_ID})
        connection.commit()


def _report(connection: Connection, before: tuple[str, ...], after: tuple[str, ...]) -> None:
    url = connection.engine.url
    host = url.host or url.query.get("host") or "localhost"  # the embedded server: a socket dir
    port = f":{url.port}" if url.port else ""
    version = ".".join(map(str, connection.dialect.server_version_info or ()))
    where = f"database {url.database} on {host}{port} (PostgreSQL {version})"
    old, new = ", ".join(before) or "empty", ", ".join(after) or "empty"
    if before == after:
        log.info("database schema at %s, nothing to migrate: %s", new, where)
    else:
        log.info("database schema migrated %s -> %s: %s", old, new, where)


async def _run_async(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_configure)
            await conn.commit()
    finally:
        await engine.dispose()


def run_migrations_offline() -> None:
    context.configure(
        url=config.attributes.get("url") or resolve_database_url(get_settings()),
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        return
    url = config.attributes.get("url") or resolve_database_url(get_settings())
    asyncio.run(_run_async(url))


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
