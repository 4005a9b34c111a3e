"""Mainstream clients, at their defaults, against a live server: the graphql-http audit, an
Apollo Client 4 session and an urql session (tests/clients/, Node's test runner). Runs when
`node` is on the PATH; QQ_REQUIRE_CLIENTS=1 (set by .ci/run) makes a missing Node or a failed
`npm ci` a failure instead of a skip."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest
from starlette.applications import Starlette

from src.seeding import seed_demo_users
from tests.helpers import live_server

CLIENTS = Path(__file__).resolve().parent / "clients"
REQUIRED = os.environ.get("QQ_REQUIRE_CLIENTS") == "1"


def _unavailable(reason: str) -> None:
    if REQUIRED:
        pytest.fail(reason)
    pytest.skip(reason)


async def _run(
    *command: str, env: dict[str, str] | None = None, limit: float = 300
) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=CLIENTS,
        env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), limit)
    except TimeoutError:
        process.kill()
        output, _ = await process.communicate()
        return -1, output.decode(errors="replace") + f"\n(timed out after {limit} s)"
    return process.returncode or 0, output.decode(errors="replace")


@pytest.fixture(scope="session")
async def node_modules() -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        _unavailable("node/npm not on PATH")
    installed = CLIENTS / "node_modules" / ".package-lock.json"
    lock = CLIENTS / "package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        code, output = await _run("npm", "ci", "--no-audit", "--no-fund", limit=600)
        if code != 0:
            _unavailable(f"npm ci failed:\n{output[-3000:]}")
    return CLIENTS / "node_modules"


async def test_clients_with_their_defaults(app: Starlette, node_modules: Path) -> None:
    async with live_server(app) as server:
        # People to page through in the feed (each session registers two more).
        async with app.state.services.sessionmaker() as session:
            await seed_demo_users(
                session, count=5, seed=7, policy_version="2026-11", now=app.state.services.clock()
            )
        files = sorted(p.name for p in CLIENTS.glob("*.test.mjs"))
        code, output = await _run(
            "node",
            "--test",
            "--test-reporter=tap",
            "--test-concurrency=1",
            *files,
            env={"QQ_URL": server.url},
        )
    print(output)
    assert code == 0, output[-6000:]
    assert "# fail 0" in output
