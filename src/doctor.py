"""`qiaoqiao doctor`: check the configuration and every service it names, and say what to fix.

Each check gives one line: `ok`, `warn` (works, but worth a look), `FAIL` (something will not
work: the line says what to do) or `skip` (not configured). Nothing is changed: no migration,
no collection created, no token fetched. Settings problems never get this far: the command
reports them like every other command does.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncpg
import httpx
from sqlalchemy.engine import make_url

from src.cli_support import connect_reason, show_url
from src.config import Settings, reveal

if TYPE_CHECKING:  # imported when the check runs: alembic is slow to load
    from alembic.script import ScriptDirectory

OK, WARN, FAIL, SKIP = "ok", "warn", "FAIL", "skip"


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str

    def line(self) -> str:
        return f"  {self.status:<5} {self.name:<13} {self.detail}"


def _scripts() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    from src.cli import alembic_config

    return ScriptDirectory.from_config(alembic_config(""))


def code_heads() -> set[str]:
    """The revisions this code's migrations end at."""
    return set(_scripts().get_heads())


def known_revisions() -> set[str]:
    return {rev.revision for rev in _scripts().walk_revisions()}


def plain_dsn(url: str) -> str:
    """asyncpg's own form of a (SQLAlchemy) database URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def schema_revisions(url: str, connect_timeout_s: float) -> tuple[str, set[str]]:
    """(server version, revisions recorded in the database) at `url`."""
    conn = await asyncpg.connect(plain_dsn(url), timeout=connect_timeout_s)
    try:
        server = str(await conn.fetchval("SHOW server_version")).split(" ")[0]
        try:
            rows = await conn.fetch("SELECT version_num FROM alembic_version")
        except asyncpg.UndefinedTableError:
            rows = []
        return server, {row["version_num"] for row in rows}
    finally:
        await conn.close()


async def check_database(settings: Settings, url: str) -> Check:
    try:
        version, current = await schema_revisions(url, settings.db_connect_timeout_s)
    except Exception as exc:
        return Check(
            "database",
            FAIL,
            f"cannot connect to {show_url(url)}: {connect_reason(exc)}. Check DATABASE_URL"
            " (unset, the embedded PostgreSQL under DATA_DIR is used)",
        )
    where = f"PostgreSQL {version} at {show_url(url).split('://', 1)[-1]}"
    heads = code_heads()
    if current == heads:
        return Check("database", OK, f"{where}; schema at {', '.join(sorted(heads))} (latest)")
    unknown = current - known_revisions()
    if unknown:
        return Check(
            "database",
            FAIL,
            f"{where}; schema at {', '.join(sorted(unknown))}, newer than this code: run the"
            " release that migrated it",
        )
    at = ", ".join(sorted(current)) or "empty"
    return Check(
        "database",
        WARN,
        f"{where}; schema at {at}, this code needs {', '.join(sorted(heads))}: run"
        " `qiaoqiao migrate` (`serve` migrates at start unless given --no-migrate)",
    )


async def _qdrant_version(url: str) -> str | None:
    """The server's version from its root endpoint, or None when it does not answer."""
    try:
        async with httpx.AsyncClient(timeout=httpx.Timeout(3.0, connect=2.0)) as http:
            return str((await http.get(url.rstrip("/") + "/")).json()["version"])
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None


async def check_vectors(settings: Settings, dim: int) -> Check:
    from importlib import metadata

    from src.ai.vector_store import VectorIndexLocked, open_vector_store

    if settings.qdrant_url:
        server = await _qdrant_version(settings.qdrant_url)
        client = metadata.version("qdrant-client")
        where = f"Qdrant server {server} at {settings.qdrant_url} (client {client})"
        if server is None:
            return Check(
                "vectors",
                FAIL,
                f"no Qdrant answers at {settings.qdrant_url}: start it, or fix QDRANT_URL",
            )
    else:
        where = f"Qdrant Edge in {(settings.data_dir / 'vectors').resolve()}"
        if not (settings.data_dir / "vectors").exists():
            return Check("vectors", OK, f"{where}: not created yet (serve creates it)")
    store = open_vector_store(qdrant_url=settings.qdrant_url, data_dir=settings.data_dir, dim=dim)
    try:
        async with asyncio.timeout(settings.ready_timeout_s * 2):
            if not settings.qdrant_url:
                await store.ensure_collection()  # opens the shard (it takes the directory lock)
            points = await store.count()
    except VectorIndexLocked:
        return Check(
            "vectors",
            WARN,
            f"{where}: open in another process (a running `qiaoqiao serve`?); fine if it is"
            " yours, but `reindex` needs it closed",
        )
    except Exception as exc:
        if settings.qdrant_url:  # it answered above: the collection is what is missing
            return Check(
                "vectors",
                WARN,
                f"{where}: no collection 'profiles' yet; serve creates it, `qiaoqiao reindex`"
                " fills it",
            )
        return Check("vectors", FAIL, f"{where}: {type(exc).__name__}: {str(exc)[:200]}")
    finally:
        await store.close()
    if settings.qdrant_url and not _compatible(client, server or ""):
        return Check(
            "vectors",
            WARN,
            f"{where}: {points} points; server and client differ by more than one minor version:"
            " use the server version the compose file names",
        )
    if settings.is_production and not settings.qdrant_url:
        return Check(
            "vectors",
            WARN,
            f"{where}: {points} points; several processes or machines need a Qdrant server"
            " (QDRANT_URL)",
        )
    return Check("vectors", OK, f"{where}: {points} points")


def _compatible(client: str, server: str) -> bool:
    """qdrant-client's own rule: same major version, minor versions at most one apart."""
    try:
        c_major, c_minor = (int(x) for x in client.split(".")[:2])
        s_major, s_minor = (int(x) for x in server.lstrip("v").split(".")[:2])
    except ValueError:
        return False
    return c_major == s_major and abs(c_minor - s_minor) <= 1


def check_model(settings: Settings) -> Check:
    from src.ai.embeddings import DEFAULT_MODEL, Embedder, is_prepared

    embedder = Embedder.from_settings(
        settings.embedding_model, settings.model_dir or settings.data_dir
    )
    if embedder.local_dir is not None and not is_prepared(embedder.local_dir):
        return Check(
            "model",
            WARN,
            f"{DEFAULT_MODEL} not prepared in {embedder.local_dir}: run `qiaoqiao model prepare`"
            " (serve prepares it at start, once, in about 10 s)",
        )
    name = DEFAULT_MODEL if embedder.local_dir is not None else embedder.model_name
    started = time.perf_counter()
    try:
        vector = embedder.embed_sync(["passage: doctor"])[0]
    except Exception as exc:
        return Check(
            "model",
            FAIL,
            f"{name} does not load: {type(exc).__name__}: {str(exc)[:200]}; check"
            " EMBEDDING_MODEL and MODEL_DIR",
        )
    finally:
        embedder.close()
    where = f" in {embedder.local_dir}" if embedder.local_dir is not None else ""
    took = time.perf_counter() - started
    return Check("model", OK, f"{name}{where}: loads and embeds ({len(vector)} dims, {took:.1f} s)")


async def check_wechat(settings: Settings) -> Check:
    """Reachability and credentials in one call that changes nothing: `jscode2session` with
    a code that cannot exist answers 40029 (invalid code) only to the right app id and secret."""
    if not settings.wechat_configured:
        mode = "development login (dev:<name>)" if settings.dev_login_enabled else "no login"
        return Check("wechat", SKIP, f"WECHAT_APP_ID/WECHAT_APP_SECRET unset: {mode}")
    base = settings.wechat_api_base.rstrip("/")
    params = {
        "appid": settings.wechat_app_id or "",
        "secret": reveal(settings.wechat_app_secret),
        "js_code": "qiaoqiao-doctor",
        "grant_type": "authorization_code",
    }
    try:
        async with httpx.AsyncClient(
            timeout=httpx.Timeout(
                settings.wechat_deadline_s, connect=settings.wechat_connect_timeout_s
            )
        ) as http:
            answer = await http.get(f"{base}/sns/jscode2session", params=params)
        code = answer.json().get("errcode") if answer.status_code == 200 else None
    except (httpx.HTTPError, ValueError) as exc:
        return Check(
            "wechat",
            FAIL,
            f"cannot reach {base}: {type(exc).__name__}; check the network or WECHAT_API_BASE",
        )
    if answer.status_code != 200:
        return Check("wechat", FAIL, f"{base} answered HTTP {answer.status_code}; try again later")
    if code in (40029, 40163):
        return Check("wechat", OK, f"{base} reachable; app id and secret accepted")
    if code == -1:
        return Check("wechat", WARN, f"{base} reachable but busy (errcode -1); try again")
    return Check(
        "wechat",
        FAIL,
        f"{base} refused the credentials (errcode {code}): check WECHAT_APP_ID and"
        " WECHAT_APP_SECRET in the mini program console",
    )


async def check_redis(settings: Settings) -> Check:
    if not reveal(settings.redis_url):
        return Check("redis", SKIP, "REDIS_URL unset: rate limits count in PostgreSQL")
    from redis.asyncio import Redis

    client = Redis.from_url(reveal(settings.redis_url), socket_connect_timeout=2, socket_timeout=2)
    where = show_url(reveal(settings.redis_url))
    try:
        await client.ping()
    except Exception as exc:
        return Check("redis", FAIL, f"cannot reach {where}: {type(exc).__name__}; check REDIS_URL")
    finally:
        await client.aclose()
    return Check("redis", OK, f"{where} answers")


def run(settings: Settings, database_url: str | None, database_problem: str | None) -> list[Check]:
    """Every check, in order. `database_url` is None when it could not be had (the embedded
    server did not start, say): `database_problem` says why."""
    mode = "production" if settings.is_production else "development"
    checks = [Check("configuration", OK, f"{mode} (APP_ENV); every setting is valid")]
    if database_url is None:
        checks.append(Check("database", FAIL, database_problem or "no database"))
    else:
        checks.append(asyncio.run(check_database(settings, database_url)))
    from src.ai.embeddings import Embedder

    base = settings.model_dir or settings.data_dir
    dim = Embedder.from_settings(settings.embedding_model, base).dim
    checks.append(asyncio.run(check_vectors(settings, dim)))
    checks.append(check_model(settings))
    checks.append(asyncio.run(check_wechat(settings)))
    checks.append(asyncio.run(check_redis(settings)))
    return checks


def report(checks: list[Check]) -> tuple[str, int]:
    """The text to print and the exit code (1 when anything failed)."""
    failed = [c for c in checks if c.status == FAIL]
    lines = [c.line() for c in checks]
    if failed:
        plural = "s" if len(failed) > 1 else ""
        lines.append(f"{len(failed)} check{plural} failed: fix what the FAIL lines say")
    else:
        lines.append("everything checked works")
    return "\n".join(lines) + "\n", 1 if failed else 0
