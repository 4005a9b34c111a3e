"""The `qiaoqiao` command: one subcommand per task (see `build_parser`, or `qiaoqiao --help`).

Expected failures (the settings, an unreachable database, a locked index, an unknown user)
end with one line each on stderr and no traceback: exit 2 for the settings, 1 otherwise.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from src import cli_parser
from src.cli_support import CliFailure, ProgressBar, explain
from src.config import Settings, SettingsInvalid, get_settings

if TYPE_CHECKING:  # imported when a command needs them: alembic is slow to load
    from alembic.config import Config

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("qiaoqiao.cli")


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.attributes["url"] = url
    return config


def migrate(url: str, revision: str = "head") -> None:
    """Bring the database at `url` to `revision`."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def _database_url() -> str:
    """Resolve the URL once (starting the embedded server if needed) and pin it in the
    environment, so uvicorn workers and Alembic use the very same database."""
    from src.db import resolve_database_url

    settings = get_settings()
    try:
        url = resolve_database_url(settings)
    except Exception as exc:
        if settings.database_url:
            raise
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise CliFailure(
            f"the embedded PostgreSQL did not start in {(settings.data_dir / 'pg').resolve()}:"
            f" {reason}. Set DATA_DIR to a folder this user may write, or DATABASE_URL to a"
            " server"
        ) from exc
    os.environ["DATABASE_URL"] = url
    get_settings.cache_clear()
    return url


def prepare_model(settings: Settings, progress: ProgressBar | None = None) -> None:
    """Say whether the embedding model is ready; prepare it (once, ~10 s) when it is not."""
    from src.ai.embeddings import DEFAULT_MODEL, Embedder, is_prepared
    from src.ai.embeddings import prepare_model as prepare

    embedder = Embedder.from_settings(
        settings.embedding_model, settings.model_dir or settings.data_dir
    )
    folder = embedder.local_dir
    if folder is None:
        log.info("embedding model %s: fastembed loads it on first use", embedder.model_name)
        return
    if is_prepared(folder, quantize_int8=embedder.quantize_int8):
        log.info("embedding model ready: %s in %s", DEFAULT_MODEL, folder)
        return
    log.info("embedding model: preparing %s in %s (once, about 10 s)", DEFAULT_MODEL, folder)
    started = time.perf_counter()
    prepare(folder, quantize_int8=embedder.quantize_int8, progress=progress)
    took = time.perf_counter() - started
    log.info("embedding model ready: %s in %s (prepared in %.1f s)", DEFAULT_MODEL, folder, took)


def _require_schema_at_head(url: str) -> None:
    """`serve --no-migrate`: refuse a database another release's `migrate` has not brought to
    this code's schema."""
    import asyncio

    from src.doctor import code_heads, schema_revisions

    _, current = asyncio.run(schema_revisions(url, get_settings().db_connect_timeout_s))
    if current != code_heads():
        raise CliFailure(
            f"the database schema is at {', '.join(sorted(current)) or 'nothing'}, this code"
            f" needs {', '.join(sorted(code_heads()))}: run `qiaoqiao migrate` first (or serve"
            " without --no-migrate)"
        )
    log.info("database schema at %s (migrated by the release step)", ", ".join(current))


def cmd_serve(args: argparse.Namespace) -> None:
    import uvicorn

    from src.resolvers.index_worker import workers_refusal
    from src.serving import uvicorn_options

    if refusal := workers_refusal(get_settings(), args.workers):
        sys.exit(refusal)

    # uvicorn re-raises SIGTERM after its graceful shutdown; exiting through SystemExit instead
    # lets the atexit hook stop the embedded PostgreSQL cleanly.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if args.no_migrate:
        _require_schema_at_head(_database_url())
    else:
        migrate(_database_url())
    prepare_model(get_settings(), ProgressBar())
    uvicorn.run(
        "src.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_config=None,  # our own structured logging, set up by create_app
        **uvicorn_options(get_settings()),  # client IP and slow-client timeouts
    )


def cmd_migrate(args: argparse.Namespace) -> None:
    migrate(_database_url(), args.revision)


def cmd_export_schema(args: argparse.Namespace) -> None:
    from src.schema import schema

    text = schema.as_str() + "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


async def _dev_token(name: str) -> str:
    from src.db import create_engine
    from src.resolvers.auth import dev_login
    from src.services import build_services, close_services

    settings = get_settings()
    services = build_services(settings, create_engine(_database_url(), settings))
    try:
        async with services.sessionmaker() as session, session.begin():
            login = await dev_login(session, services, name)
        return login.access_token
    finally:
        await close_services(services)


def cmd_token(args: argparse.Namespace) -> None:
    import asyncio

    from src.resolvers.errors import UserFacingError

    if not get_settings().dev_login_enabled:
        raise CliFailure(
            "works only in development without WeChat credentials (APP_ENV=development,"
            " WECHAT_APP_ID unset)"
        )
    migrate(_database_url())
    try:
        sys.stdout.write(asyncio.run(_dev_token(args.name)) + "\n")
    except UserFacingError as exc:
        raise CliFailure(exc.message) from None


async def _serve_mcp_stdio(token: str) -> None:
    from src.auth.tokens import InvalidToken
    from src.db import create_engine
    from src.mcp_server import Identity, build_mcp_server
    from src.observability import configure_logging
    from src.resolvers.index_worker import warm_up
    from src.schema import schema
    from src.schema.role_sdl import sdl_by_role
    from src.services import build_services, close_services

    settings = get_settings()
    configure_logging(settings.log_level, json=settings.json_logs)  # stderr: stdout is MCP's
    services = build_services(settings, create_engine(_database_url(), settings))
    try:
        try:
            claims = services.tokens.verify_access(token)
        except InvalidToken:
            raise CliFailure(
                "the access token is invalid or expired: get a new one (`qiaoqiao token NAME`"
                " in development)"
            ) from None
        identity = Identity(claims.user_id, claims.session_id)
        await warm_up(services)
        server = build_mcp_server(
            lambda: services, sdl=sdl_by_role(schema), stdio_identity=identity
        )
        await server.run_stdio_async()
    finally:
        await close_services(services)


def cmd_mcp(args: argparse.Namespace) -> None:
    """MCP over stdin/stdout for a local client, acting as the user of an access token (from
    --token or QIAOQIAO_TOKEN). The token is checked once; each call then checks that its login
    is still active. Logs go to stderr: stdout is the protocol."""
    import asyncio

    token = args.token or os.environ.get("QIAOQIAO_TOKEN")
    if not token:
        raise CliFailure("needs an access token: --token or QIAOQIAO_TOKEN")
    migrate(_database_url())
    asyncio.run(_serve_mcp_stdio(token.strip()))


async def _seed(args: argparse.Namespace) -> str:
    from sqlalchemy import text

    from src.db import create_engine, create_sessionmaker
    from src.resolvers.institutions import seed_institutions

    settings = get_settings()
    engine = create_engine(_database_url(), settings)
    try:
        async with create_sessionmaker(engine)() as session:
            institutions = await seed_institutions(session)
            await session.commit()
            # The migrations load the starter list: "0 added" alone read like a failure.
            total = await session.scalar(text("SELECT count(*) FROM institutions"))
            report = f"institutions added: {institutions} ({total} in all)"
            if getattr(args, "users", None):
                from src.models import utcnow
                from src.seeding import seed_demo_users

                users = await seed_demo_users(
                    session,
                    count=args.users,
                    seed=args.seed,
                    policy_version=settings.privacy_policy_version,
                    now=utcnow(),  # a command of its own: no services, so no injected clock
                )
                report += (
                    f"; demo users added: {users} of {args.users}"
                    f" ({args.users - users} were there already)"
                )
        return report
    finally:
        await engine.dispose()


def cmd_seed(args: argparse.Namespace) -> None:
    import asyncio

    migrate(_database_url())
    sys.stdout.write(asyncio.run(_seed(args)) + "\n")


def cmd_reindex(args: argparse.Namespace) -> None:
    """Works with a server running (through its outbox) and without; see resolvers/reindex."""
    import asyncio

    from src.db import create_engine
    from src.resolvers.errors import UserFacingError
    from src.resolvers.reindex import reindex
    from src.services import build_services, close_services

    migrate(_database_url())

    async def run() -> str:
        settings = get_settings()
        services = build_services(settings, create_engine(_database_url(), settings))
        try:
            return await reindex(services, _progress_bar("reindex"))
        finally:
            await close_services(services)

    try:
        summary = asyncio.run(run())
    except UserFacingError as exc:
        sys.exit(f"\nqiaoqiao reindex: {exc.message}")
    sys.stdout.write(summary + "\n")


def _progress_bar(label: str) -> Callable[[int, int], None]:
    """`progress(done, total)` drawing one line on stderr (a line per 10% when not a terminal)."""
    shown = {"tenth": -1}

    def progress(done: int, total: int) -> None:
        share = done / total if total else 1.0
        if sys.stderr.isatty():
            bar = "#" * int(share * 30)
            end = "\n" if done >= total else ""
            sys.stderr.write(f"\r{label} [{bar:<30}] {done}/{total}{end}")
        elif int(share * 10) != shown["tenth"]:
            shown["tenth"] = int(share * 10)
            sys.stderr.write(f"{label}: {done}/{total}\n")
        sys.stderr.flush()

    return progress


async def _grant_role(who: str, role: str) -> str:
    from src.db import create_engine, create_sessionmaker
    from src.resolvers.moderation import grant_role

    settings = get_settings()
    engine = create_engine(_database_url(), settings)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            user, old = await grant_role(
                session, who, role, phone_region=settings.default_phone_region
            )
        if old == role:
            return f"user {user.id} already has the role {role}"
        return f"user {user.id}: role {old} -> {role}"
    finally:
        await engine.dispose()


def cmd_grant_role(args: argparse.Namespace) -> None:
    import asyncio

    from src.resolvers.errors import UserFacingError

    migrate(_database_url())
    try:
        sys.stdout.write(asyncio.run(_grant_role(args.user, args.role)) + "\n")
    except UserFacingError as exc:
        raise CliFailure(exc.message) from None


def cmd_model_prepare(args: argparse.Namespace) -> None:
    from src.ai.embeddings import Embedder

    settings = get_settings()
    prepare_model(settings, ProgressBar())
    embedder = Embedder.from_settings(
        settings.embedding_model, settings.model_dir or settings.data_dir
    )
    embedder.load_sync()  # loads it once to check (a fastembed model downloads here)
    sys.stdout.write(f"model ready: {embedder.local_dir or embedder.model_name}\n")


def cmd_doctor(args: argparse.Namespace) -> None:
    from src import doctor

    settings = get_settings()
    url, problem = None, None
    try:
        url = _database_url()
    except CliFailure as exc:
        problem = str(exc)
    text, code = doctor.report(doctor.run(settings, url, problem))
    sys.stdout.write(text)
    sys.exit(code)


HANDLERS = {
    "serve": cmd_serve,
    "migrate": cmd_migrate,
    "doctor": cmd_doctor,
    "export-schema": cmd_export_schema,
    "token": cmd_token,
    "mcp": cmd_mcp,
    "reindex": cmd_reindex,
    "model prepare": cmd_model_prepare,
    "seed": cmd_seed,
    "seed-demo": cmd_seed,
    "grant-role": cmd_grant_role,
}


def build_parser() -> argparse.ArgumentParser:
    return cli_parser.build_parser(HANDLERS)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    where = f"qiaoqiao {args.command}"
    try:
        settings = get_settings()
    except SettingsInvalid as exc:
        sys.stderr.write(f"{where}: {exc}\n")
        sys.exit(2)
    _configure_logging(settings)
    try:
        args.func(args)
    except Exception as exc:
        message = explain(exc, os.environ.get("DATABASE_URL") or _configured_url(settings))
        if message is None:
            raise  # not an expected failure: a bug, whose traceback helps
        sys.stderr.write(f"{where}: {message}\n")
        sys.exit(1)


def _configured_url(settings: Settings) -> str | None:
    return settings.database_url.get_secret_value() if settings.database_url else None


def _configure_logging(settings: Settings) -> None:
    """Log lines to stderr (stdout is for the command's output, or MCP's protocol)."""
    from src.observability import configure_logging

    configure_logging(settings.log_level, json=settings.json_logs)


if __name__ == "__main__":
    main()
