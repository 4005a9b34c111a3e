"""Workload A, the feed: qiaoqiao beside PostGraphile 5 and two ceilings, in one run.

The page is sent in three shapes (bench/shapes.py) to qiaoqiao with 1 worker and to
PostGraphile: the benchmark's own (no `__typename`, no fragments), Apollo Client's
(`__typename` everywhere, variables, an operation name) and Relay's (named fragments); each
qiaoqiao row's ratio is to PostGraphile answering the same shape.

    .venv/bin/python -m bench.feed [--users 10000] [--duration 15] [--connections 16]
                                   [--skip-postgraphile] [--no-analyze]

Steps: recreate the database `qq_bench_feed`, `qiaoqiao migrate`, `qiaoqiao seed-demo`,
VACUUM ANALYZE (not with --no-analyze: statistics missing, as after a bulk load here, where
PostgreSQL runs without autovacuum); then
one server after another on a free 127.0.0.1 port — start, check one answer (20 users with
data, no errors), warm up, load with wrk, stop. Prints a table and writes it as Markdown to
bench/results/feed-<date>-<time>.md. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import asyncpg
import httpx

from bench import report
from bench.harness import (
    BENCH,
    NODE_DIR,
    ROOT,
    BenchError,
    ensure_postgraphile,
    ensure_wrk,
    free_port,
    run_wrk,
    running,
    venv_bin,
    wait_answer,
)
from bench.report import Row
from bench.shapes import APOLLO, BENCHMARK, RELAY, Shape
from src.db import PLANNER_SETTINGS

DB_NAME = "qq_bench_feed"
ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
DATABASE_URL = f"postgresql://postgres@127.0.0.1:5432/{DB_NAME}"
PAGE = 20

QIAOQIAO_QUERY = BENCHMARK.query
# The same page through PostGraphile's generated schema (found by introspection): users by
# primary key (it only orders by indexed columns), profile via the user_profiles FK, the
# institution via user_profiles.institution_id, the 5 latest projects via the
# (user_id, created_at, id) index.
POSTGRAPHILE_QUERY = (
    "{ allUsers(first: 20, orderBy: [PRIMARY_KEY_ASC]) { edges { node { rowId "
    "userProfileByUserId { nickname city bio institutionByInstitutionId { name city } } "
    "userProjectsByUserId(first: 5, orderBy: [CREATED_AT_DESC, PRIMARY_KEY_DESC]) "
    "{ edges { node { title role } } } } } } }"
)
# The same page as Apollo Client sends it to PostGraphile: `__typename` in every selection set,
# the node `id` the cache normalizes by, variables, an operation name.
POSTGRAPHILE_APOLLO = """query UsersFeed($first: Int = 20, $after: Cursor, $projects: Int!) {
  allUsers(first: $first, after: $after, orderBy: [PRIMARY_KEY_ASC]) {
    edges {
      cursor
      node {
        id
        rowId
        userProfileByUserId {
          nickname
          city
          bio
          institutionByInstitutionId {
            id
            name
            city
            __typename
          }
          __typename
        }
        userProjectsByUserId(first: $projects, orderBy: [CREATED_AT_DESC, PRIMARY_KEY_DESC]) {
          edges {
            node {
              id
              title
              role
              __typename
            }
            __typename
          }
          __typename
        }
        __typename
      }
      __typename
    }
    pageInfo {
      hasNextPage
      endCursor
      __typename
    }
    __typename
  }
}"""
# ...and as Relay sends it: a named fragment per component.
POSTGRAPHILE_RELAY = """query FeedPageQuery($count: Int!, $cursor: Cursor) {
  allUsers(first: $count, after: $cursor, orderBy: [PRIMARY_KEY_ASC]) {
    ...FeedList_users
  }
}

fragment FeedList_users on UserConnection {
  edges {
    cursor
    node {
      id
      rowId
      ...UserCard_user
      __typename
    }
  }
  pageInfo {
    endCursor
    hasNextPage
  }
}

fragment UserCard_user on User {
  id
  userProfileByUserId {
    ...ProfileHeader_profile
  }
  userProjectsByUserId(first: 5, orderBy: [CREATED_AT_DESC, PRIMARY_KEY_DESC]) {
    edges {
      node {
        ...ProjectChip_project
        id
      }
    }
  }
}

fragment ProfileHeader_profile on UserProfile {
  nickname
  city
  bio
  institutionByInstitutionId {
    ...InstitutionBadge_institution
    id
  }
}

fragment InstitutionBadge_institution on Institution {
  name
  city
}

fragment ProjectChip_project on UserProject {
  title
  role
}"""
POSTGRAPHILE_SHAPES = {
    BENCHMARK.name: Shape(BENCHMARK.name, POSTGRAPHILE_QUERY, {}),
    APOLLO.name: Shape(APOLLO.name, POSTGRAPHILE_APOLLO, APOLLO.variables, APOLLO.operation),
    RELAY.name: Shape(RELAY.name, POSTGRAPHILE_RELAY, RELAY.variables, RELAY.operation),
}


@dataclass
class Target:
    """One server to measure: how to start it and what to ask it."""

    name: str
    command: Callable[[int], tuple[list[str], dict[str, str], Path]]
    path: str
    shape: Shape | None  # None: the body is ignored by the server
    root: str  # the field holding the connection in the answer
    peer: str = report.PEER  # the row its ratio is to


def app_env() -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": DATABASE_URL,
        "APP_ENV": "development",
        "LOG_LEVEL": "WARNING",
        # One token browses non-stop: lift the feed's rate limit (30 pages a minute).
        "RATE_LIMITS": '{"feed:user": [1000000000, 60]}',
        # Not measured here: the seeded users would be embedded (minutes of CPU) under load.
        "VECTOR_WORKER": "false",
    }


def qiaoqiao(*args: str, capture: bool = False) -> str:
    done = subprocess.run(
        [venv_bin("qiaoqiao"), *args],
        cwd=ROOT,
        env=app_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"qiaoqiao {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout if capture else ""


async def _analyze() -> None:
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        # Planner statistics now, not whenever autovacuum wakes; VACUUM also sets the freshly
        # seeded rows' hint bits and visibility map, as autovacuum would have by production,
        # instead of leaving those writes to whichever server is measured first.
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


async def _recreate_database() -> str:
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        await conn.execute(f"CREATE DATABASE {DB_NAME}")
        # qiaoqiao's connections plan with src.db.PLANNER_SETTINGS; set on the database, every
        # server measured here (PostGraphile, the ceilings) plans with the same costs.
        for name, value in PLANNER_SETTINGS.items():
            await conn.execute(f"ALTER DATABASE {DB_NAME} SET {name} = {value}")
        return await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()


def prepare_database(users: int, analyze: bool = True) -> str:
    """Fresh database, migrated and seeded; returns the PostgreSQL version."""
    if "seed-demo" not in qiaoqiao("--help", capture=True):
        raise BenchError("`qiaoqiao seed-demo` does not exist yet; nothing to seed the feed with")
    version = asyncio.run(_recreate_database())
    print(f"database {DB_NAME}: migrate, seed-demo --users {users} --seed 1", flush=True)
    qiaoqiao("migrate")
    qiaoqiao("seed-demo", "--users", str(users), "--seed", "1")
    if analyze:
        asyncio.run(_analyze())
    else:
        print("no ANALYZE: planner statistics missing", flush=True)
    return version


def token() -> str:
    """A fresh access token (they live 15 minutes, so one per server)."""
    return qiaoqiao("token", "bench", capture=True).strip().splitlines()[-1]


def viewer_id(jwt: str) -> str:
    """The `sub` (user id) of an access token, read without verifying it."""
    payload = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"]


def summarize(resp: httpx.Response, root: str) -> tuple[str, list[str]]:
    """Check an answer is a full, error-free page; describe it, and list its user ids."""
    if resp.status_code != 200:
        raise BenchError(f"HTTP {resp.status_code}: {resp.text[:500]}")
    doc = resp.json()
    if doc.get("errors"):
        raise BenchError(f"errors in the answer: {json.dumps(doc['errors'])[:500]}")
    try:
        nodes = [edge["node"] for edge in doc["data"][root]["edges"]]
    except (KeyError, TypeError):
        raise BenchError(f"no data.{root}.edges in the answer: {resp.text[:300]}") from None
    profiles = institutions = projects = 0
    for node in nodes:
        for value in node.values():
            if isinstance(value, dict) and "nickname" in value:
                profiles += 1
                institutions += any(isinstance(v, dict) for v in value.values())
            elif isinstance(value, dict) and "edges" in value:
                projects += len(value["edges"])
    if len(nodes) != PAGE or not profiles or not projects:
        raise BenchError(
            f"expected {PAGE} users with profiles and projects, got {len(nodes)} users, "
            f"{profiles} profiles, {projects} projects"
        )
    text = (
        f"{len(nodes)} users, {profiles} profiles, {institutions} institutions, "
        f"{projects} projects, {len(resp.content) / 1024:.1f} kB"
    )
    # qiaoqiao in development says which path answered (compiled SQL or Strawberry).
    path = (doc.get("extensions") or {}).get("path")
    if path:
        text += f", answered by the {path} path"
    return text, [str(node.get("id") or node.get("rowId")) for node in nodes]


def _shaped(name: str, shape: Shape) -> str:
    """Rows for the benchmark's own shape keep their names (earlier reports compare)."""
    return name if shape is BENCHMARK or shape.name == BENCHMARK.name else f"{name}, {shape.name}"


def qiaoqiao_target(workers: int, shape: Shape = BENCHMARK) -> Target:
    def command(port: int) -> tuple[list[str], dict[str, str], Path]:
        argv = [venv_bin("qiaoqiao"), "serve", "--port", str(port), "--workers", str(workers)]
        return argv, app_env(), ROOT

    label = "worker" if workers == 1 else "workers"
    name = _shaped(f"qiaoqiao, {workers} {label}", shape)
    return Target(name, command, "/graphql", shape, "users", _shaped(report.PEER, shape))


def postgraphile_target(node: str, cli: str, shape: Shape = BENCHMARK) -> Target:
    def command(port: int) -> tuple[list[str], dict[str, str], Path]:
        argv = [node, cli, "-P", "postgraphile/presets/amber", "-c", DATABASE_URL]
        argv += ["-s", "public", "-n", "127.0.0.1", "-p", str(port)]
        env = {**os.environ, "NODE_ENV": "production", "GRAPHILE_ENV": "production"}
        return argv, env, NODE_DIR  # the preset is resolved from node_modules here

    name = _shaped(report.PEER, shape)
    return Target(name, command, "/graphql", POSTGRAPHILE_SHAPES[shape.name], "allUsers", name)


def ceiling_target(name: str, path: str) -> Target:
    def command(port: int) -> tuple[list[str], dict[str, str], Path]:
        argv = [sys.executable, "-m", "uvicorn", "bench.ceilings:app", "--host", "127.0.0.1"]
        argv += ["--port", str(port), "--workers", "1", "--log-level", "warning"]
        return [*argv, "--no-access-log"], app_env(), ROOT

    return Target(name, command, path, None, "users")


def measure(target: Target, args: argparse.Namespace, logs: Path) -> Row:
    port = free_port()
    argv, env, cwd = target.command(port)
    jwt = token()
    auth = f"Bearer {jwt}"
    env = {**env, "BENCH_VIEWER_ID": viewer_id(jwt)}
    body = json.dumps((target.shape or BENCHMARK).body())
    headers = {"content-type": "application/json", "authorization": auth}
    url = f"http://127.0.0.1:{port}{target.path}"
    log = logs / (target.name.replace(" ", "_").replace(",", "") + ".log")
    with running(target.name, argv, env, log, cwd) as server:
        print(f"  started pid {server.proc.pid} on port {port}", flush=True)
        try:
            check, ids = summarize(wait_answer(server, url, body.encode(), headers), target.root)
        except BenchError as exc:
            raise BenchError(f"{exc}\n--- server log ---\n{server.log_tail()}") from None
        print(f"  answer ok: {check}", flush=True)
        if args.warmup > 0:
            run_wrk(url, body, auth, args.warmup, args.connections, args.threads)
        result = run_wrk(url, body, auth, args.duration, args.connections, args.threads)
        if not server.alive():
            raise BenchError(f"{target.name} died during the run:\n{server.log_tail()}")
        after = httpx.post(url, content=body, headers=headers, timeout=10)
        if summarize(after, target.root)[1] != ids:
            raise BenchError("the answer changed during the run")
    return Row(target.name, result, check, ids=ids, peer=target.peer)


def compare_pages(rows: list[Row]) -> list[str]:
    """Do the ceilings answer with the same users as the servers they stand for?"""
    pages = {row.name: row.ids for row in rows if row.ids}
    notes = []
    for server, ceiling in [
        ("qiaoqiao, 1 worker", "ceiling: one SQL"),
        ("PostGraphile 5", "ceiling: one SQL, PK order"),
    ]:
        if server in pages and ceiling in pages:
            same = "the same users" if pages[server] == pages[ceiling] else "DIFFERENT users"
            notes.append(f"{server} and {ceiling} answer with {same}.")
    return notes


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.feed", description=__doc__)
    parser.add_argument("--users", type=int, default=10_000, help="users to seed (10000)")
    parser.add_argument("--duration", type=int, default=15, help="seconds of load each (15)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up load (3)")
    parser.add_argument("--skip-postgraphile", action="store_true", help="leave out the peer")
    parser.add_argument(
        "--no-analyze", action="store_true", help="measure with planner statistics missing"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = datetime.now()
    try:
        ensure_wrk()
        pg_version = prepare_database(args.users, analyze=not args.no_analyze)
    except BenchError as exc:
        print(f"bench.feed: {exc}", file=sys.stderr)
        return 1

    shapes = (BENCHMARK, APOLLO, RELAY)
    # No "2 workers" row: since issue 18 several workers need a shared vector store
    # (QDRANT_URL), which this benchmark does not start.
    targets = [qiaoqiao_target(1, shape) for shape in shapes]
    rows: list[Row] = []
    node_info = "skipped (--skip-postgraphile)"
    if not args.skip_postgraphile:
        try:
            node, cli = ensure_postgraphile()
            targets += [postgraphile_target(node, cli, shape) for shape in shapes]
            node_info = report.node_versions(node)
        except BenchError as exc:
            node_info = f"not run: {exc}"
            print(f"PostGraphile 5 {node_info}", flush=True)
            rows.append(Row("PostGraphile 5", failure=str(exc)))
    targets.append(ceiling_target("ceiling: plain JSON", "/json"))
    targets.append(ceiling_target("ceiling: one SQL", "/sql"))
    targets.append(ceiling_target("ceiling: one SQL, PK order", "/sql-pk"))

    with tempfile.TemporaryDirectory(prefix="bench-feed-") as tmp:
        for target in targets:
            print(f"== {target.name}", flush=True)
            try:
                rows.append(measure(target, args, Path(tmp)))
            except (BenchError, httpx.HTTPError, subprocess.SubprocessError, OSError) as exc:
                print(f"  FAILED: {exc}", flush=True)
                rows.append(Row(target.name, failure=str(exc)))

    order = [t.name for t in targets]
    rows.sort(key=lambda r: order.index(r.name) if r.name in order else 2)
    command = "python -m bench.feed " + " ".join(sys.argv[1:] if argv is None else argv)
    context = report.Context(
        started=started,
        command=command.strip(),
        args=args,
        postgres=pg_version,
        node=node_info,
        queries={
            **{f"qiaoqiao, {shape.name}": shape.query for shape in shapes},
            **{f"PostGraphile, {name}": shape.query for name, shape in POSTGRAPHILE_SHAPES.items()},
        },
        notes=compare_pages(rows)
        + (
            ["Planner statistics missing (--no-analyze): the seeded tables were never ANALYZEd."]
            if args.no_analyze
            else []
        )
        + ["No 2-worker row: several workers need a shared vector store (QDRANT_URL)."],
    )
    print()
    print(report.console_table(rows))
    for note in context.notes:
        print(note)
    path = report.write_markdown(rows, context, BENCH / "results")
    print(f"\nwritten to {path.relative_to(ROOT)}")
    return 0 if all(r.result for r in rows if r.name != "PostGraphile 5") else 2


if __name__ == "__main__":
    sys.exit(main())
