"""The `qiaoqiao` command: serve, migrate, export-schema, token, mcp, seed(-demo), grant-role."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from src.config import get_settings

ROOT = Path(__file__).resolve().parent.parent


def alembic_config(url: str):  # type: ignore[no-untyped-def]
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

    url = resolve_database_url(get_settings())
    os.environ["DATABASE_URL"] = url
    get_settings.cache_clear()
    return url


def cmd_serve(args: argparse.Namespace) -> None:
    import uvicorn

    from src.resolvers.index_worker import workers_refusal

    if refusal := workers_refusal(get_settings(), args.workers):
        sys.exit(refusal)

    # uvicorn re-raises SIGTERM after its graceful shutdown; exiting through SystemExit instead
    # lets the atexit hook stop the embedded PostgreSQL cleanly.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    migrate(_database_url())
    uvicorn.run(
        "src.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        proxy_headers=True,
        log_config=None,  # our own structured logging, set up by create_app
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
        sys.exit("qiaoqiao token works only in development without WeChat credentials")
    migrate(_database_url())
    try:
        sys.stdout.write(asyncio.run(_dev_token(args.name)) + "\n")
    except UserFacingError as exc:
        sys.exit(exc.message)


async def _serve_mcp_stdio(token: str) -> None:
    from src.auth.tokens import InvalidToken
    from src.db import create_engine
    from src.mcp_server import Identity, build_mcp_server
    from src.observability import configure_logging
    from src.resolvers.index_worker import warm_up
    from src.schema import schema
    from src.services import build_services, close_services

    settings = get_settings()
    configure_logging(settings.log_level, json=settings.json_logs)  # stderr: stdout is MCP's
    services = build_services(settings, create_engine(_database_url(), settings))
    try:
        try:
            claims = services.tokens.verify_access(token)
        except InvalidToken:
            sys.exit("qiaoqiao mcp: the access token is invalid or expired")
        identity = Identity(claims.user_id, claims.session_id)
        await warm_up(services)
        server = build_mcp_server(lambda: services, sdl=schema.as_str(), stdio_identity=identity)
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
        sys.exit("qiaoqiao mcp needs an access token: --token or QIAOQIAO_TOKEN")
    migrate(_database_url())
    asyncio.run(_serve_mcp_stdio(token.strip()))


async def _seed(args: argparse.Namespace) -> str:
    from src.db import create_engine, create_sessionmaker
    from src.resolvers.institutions import seed_institutions

    settings = get_settings()
    engine = create_engine(_database_url(), settings)
    try:
        async with create_sessionmaker(engine)() as session:
            institutions = await seed_institutions(session)
            await session.commit()
            report = f"institutions added: {institutions}"
            if getattr(args, "users", None):
                from src.seeding import seed_demo_users

                users = await seed_demo_users(
                    session,
                    count=args.users,
                    seed=args.seed,
                    policy_version=settings.privacy_policy_version,
                )
                report += f"; demo users added: {users}"
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


def _progress_bar(label: str):  # type: ignore[no-untyped-def]
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
        sys.exit(f"grant-role: {exc.message}")


def cmd_model_prepare(args: argparse.Namespace) -> None:
    from src.ai.embeddings import Embedder

    settings = get_settings()
    embedder = Embedder.from_settings(
        settings.embedding_model, settings.model_dir or settings.data_dir
    )
    embedder.load_sync()  # prepares the folder on first use, then loads it once to check
    sys.stdout.write(f"model ready: {embedder.local_dir or embedder.model_name}\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="qiaoqiao", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="migrate the database, then serve the API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.set_defaults(func=cmd_serve)

    mig = sub.add_parser("migrate", help="apply database migrations")
    mig.add_argument("revision", nargs="?", default="head")
    mig.set_defaults(func=cmd_migrate)

    export = sub.add_parser("export-schema", help="print the GraphQL schema (SDL)")
    export.add_argument("-o", "--output", help="write to this file instead of stdout")
    export.set_defaults(func=cmd_export_schema)

    token = sub.add_parser("token", help="print an access token for development user NAME")
    token.add_argument("name")
    token.set_defaults(func=cmd_token)

    mcp = sub.add_parser("mcp", help="serve MCP over stdio as the user of an access token")
    mcp.add_argument("--token", help="access token (default: $QIAOQIAO_TOKEN)")
    mcp.set_defaults(func=cmd_mcp)

    reindex = sub.add_parser("reindex", help="rebuild the vector index from PostgreSQL")
    reindex.set_defaults(func=cmd_reindex)

    model = sub.add_parser("model", help="embedding model tasks")
    model_sub = model.add_subparsers(dest="model_command", required=True)
    prepare = model_sub.add_parser("prepare", help="prepare the offline multilingual model")
    prepare.set_defaults(func=cmd_model_prepare)

    seed = sub.add_parser("seed", help="load the starter list of institutions")
    seed.set_defaults(func=cmd_seed)

    demo = sub.add_parser("seed-demo", help="create registered demo users (and institutions)")
    demo.add_argument("--users", type=int, default=100)
    demo.add_argument("--seed", type=int, default=1)
    demo.set_defaults(func=cmd_seed)

    grant = sub.add_parser(
        "grant-role", help="make a user (by id or phone number) a moderator, admin or user"
    )
    grant.add_argument("user", help="the user's id, or their phone number")
    grant.add_argument("role", choices=["moderator", "admin", "user"])
    grant.set_defaults(func=cmd_grant_role)

    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
