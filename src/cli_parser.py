"""The `qiaoqiao` command line: every command, option, help text and default."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping

from src.cli_support import HelpFormatter, TopHelpFormatter, version

DESCRIPTION = """\
qiaoqiao: the GraphQL backend of a WeChat mini program for user discovery and whispers.

Settings come from the environment or .env (see .env.example); `qiaoqiao doctor` checks them
and every service they name. With nothing set, development runs on an embedded PostgreSQL
under ./.qiaoqiao.
"""


def _command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    summary: str,
    description: str | None = None,
) -> argparse.ArgumentParser:
    return sub.add_parser(
        name, help=summary, description=description or summary, formatter_class=HelpFormatter
    )


def build_parser(
    handlers: Mapping[str, Callable[[argparse.Namespace], None]],
) -> argparse.ArgumentParser:
    """The parser; each command's `func` is `handlers[its name]` ("model prepare" for the
    model's task)."""
    parser = argparse.ArgumentParser(
        prog="qiaoqiao", description=DESCRIPTION, formatter_class=TopHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"qiaoqiao {version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", title="commands")

    serve = _command(
        sub,
        "serve",
        "migrate the database, prepare the model, then serve the API",
        description="Migrate the database (under a lock: replicas may start together), prepare"
        " the embedding model if needed, then serve GraphQL, MCP, /health and /ready.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes (more than one needs a Qdrant server: QDRANT_URL)",
    )
    serve.add_argument(
        "--no-migrate",
        action="store_true",
        help="do not migrate: a release step runs `qiaoqiao migrate` once, and serve refuses a"
        " database that is not at this code's schema",
    )
    serve.set_defaults(func=handlers["serve"])

    mig = _command(sub, "migrate", "bring the database schema to this code's (or a revision)")
    mig.add_argument("revision", nargs="?", default="head", help="Alembic revision to reach")
    mig.set_defaults(func=handlers["migrate"])

    doctor = _command(
        sub,
        "doctor",
        "check the configuration and every service it names; print what to fix",
        description="Check the settings, the database (reachable, schema), the vector index,"
        " the embedding model, WeChat (when configured) and Redis (when configured). Changes"
        " nothing. Exit 0 when nothing failed, 1 otherwise, 2 for settings problems.",
    )
    doctor.set_defaults(func=handlers["doctor"])

    export = _command(sub, "export-schema", "print the GraphQL schema (SDL)")
    export.add_argument(
        "-o", "--output", metavar="FILE", help="write to FILE instead of standard output"
    )
    export.set_defaults(func=handlers["export-schema"])

    token = _command(sub, "token", "print an access token for development user NAME")
    token.add_argument("name", help="the development user's name (created on first use)")
    token.set_defaults(func=handlers["token"])

    mcp = _command(sub, "mcp", "serve MCP over stdio as the user of an access token")
    mcp.add_argument("--token", help="access token (unset: $QIAOQIAO_TOKEN)")
    mcp.set_defaults(func=handlers["mcp"])

    reindex = _command(sub, "reindex", "rebuild the vector index from PostgreSQL")
    reindex.set_defaults(func=handlers["reindex"])

    model = _command(sub, "model", "embedding model tasks (model prepare)")
    model_sub = model.add_subparsers(
        dest="model_command", required=True, metavar="TASK", title="tasks"
    )
    prepare = _command(
        model_sub,
        "prepare",
        "prepare the offline multilingual model (in MODEL_DIR, else DATA_DIR)",
    )
    prepare.set_defaults(func=handlers["model prepare"])

    seed = _command(sub, "seed", "load the starter list of institutions (again)")
    seed.set_defaults(func=handlers["seed"])

    demo = _command(sub, "seed-demo", "create registered demo users (log in as dev:demo-000001 …)")
    demo.add_argument("--users", type=int, default=100, help="how many demo users")
    demo.add_argument(
        "--seed", type=int, default=1, help="random seed: the same seed makes the same users"
    )
    demo.set_defaults(func=handlers["seed-demo"])

    grant = _command(
        sub, "grant-role", "make a user (by id or phone number) a moderator, admin or user"
    )
    grant.add_argument("user", help="the user's id, or their phone number")
    grant.add_argument("role", choices=["moderator", "admin", "user"], help="the new role")
    grant.set_defaults(func=handlers["grant-role"])

    names = ", ".join(sub.choices)
    parser.epilog = f"Commands: {names}.\n`qiaoqiao COMMAND --help` tells more about one."
    return parser
