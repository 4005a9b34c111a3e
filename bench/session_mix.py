"""Workload B, a session as the mini app's first screens send it (Apollo Client's shape:
`__typename` everywhere, operation names, variables): `me`, two feed pages, the inbox,
the matches and one person by id — each wrk connection sends them in turn. Run on the same
database with the compiled reads on and off (COMPILED_QUERIES=false: Strawberry answers).

    .venv/bin/python -m bench.session_mix [--users 10000] [--duration 15] [--connections 16]
                                          [--no-analyze] [--keep-database]

The database is bench.feed's `qq_bench_feed` (recreated and seeded unless --keep-database);
the viewer gets 30 matches and 60 whispers (anonymous or not, read or not) so every screen
has something to show. Prints a table; the ratio is compiled / interpreted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path

import asyncpg
import httpx

from bench.feed import DATABASE_URL, app_env, prepare_database, token, viewer_id
from bench.harness import (
    BenchError,
    ensure_wrk,
    free_port,
    run_wrk,
    running,
    venv_bin,
    wait_answer,
)

_PAGE = "pageInfo { hasNextPage endCursor __typename } __typename"
ME = f"""query Me {{ me {{ id registered role profile {{ nickname avatarUrl city age
  institution {{ id name __typename }} __typename }} projects(first: 3) {{ edges {{ node {{ id
  title __typename }} __typename }} {_PAGE} }} __typename }} }}"""
FEED = f"""query UsersFeed($first: Int = 20, $after: String) {{ users(first: $first,
  after: $after) {{ edges {{ cursor node {{ id isPro profile {{ nickname city bio
  institution {{ id name city __typename }} __typename }} projects(first: 5) {{ edges {{
  node {{ id title role __typename }} __typename }} __typename }} __typename }} __typename }}
  {_PAGE} }} }}"""
INBOX = f"""query Inbox($first: Int = 20) {{ whispersReceived(first: $first) {{ edges {{ cursor
  node {{ id content createdAt readAt isAnonymous revealedAt isMine sender {{ id profile {{
  nickname avatarUrl __typename }} __typename }} replyTo {{ id content __typename }}
  __typename }} __typename }} {_PAGE} }} }}"""
MATCHES = f"""query Matches($first: Int = 20) {{ matches(first: $first) {{ edges {{ cursor
  node {{ id createdAt user {{ id isPro profile {{ nickname avatarUrl city __typename }}
  __typename }} __typename }} __typename }} {_PAGE} }} }}"""
PERSON = """query Person($id: ID!) { user(id: $id) { id isPro profile { nickname avatarUrl
  gender age city bio interests lookingFor institution { id name kind city __typename }
  __typename } projects(first: 10) { edges { node { id title description role link tags
  startedOn endedOn __typename } __typename } __typename } __typename } }"""


async def _session_data(viewer: str) -> str:
    """Matches and whispers for the viewer; returns the id of a person to look at."""
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        await conn.execute("DELETE FROM whispers WHERE recipient_id = $1", viewer)
        await conn.execute(
            "DELETE FROM user_matches WHERE user_a_id = $1 OR user_b_id = $1", viewer
        )
        others = [
            r["id"]
            for r in await conn.fetch(
                "SELECT id FROM users WHERE id <> $1 AND registered_at IS NOT NULL"
                " ORDER BY registered_at DESC LIMIT 60",
                viewer,
            )
        ]
        for n, other in enumerate(others):
            if n < 30:
                a, b = sorted([str(other), viewer])
                await conn.execute(
                    "INSERT INTO user_matches (id, user_a_id, user_b_id, created_at)"
                    " VALUES (gen_random_uuid(), $1, $2, now() - $3 * interval '1 minute')",
                    a,
                    b,
                    n,
                )
            await conn.execute(
                "INSERT INTO whispers (id, sender_id, recipient_id, content, is_anonymous,"
                " read_at, created_at) VALUES (gen_random_uuid(), $1, $2, $3, $4,"
                " CASE WHEN $5 THEN now() END, now() - $6 * interval '1 minute')",
                other,
                viewer,
                f"hello {n}",
                n % 2 == 0,
                n % 3 == 0,
                n,
            )
        return str(others[5])
    finally:
        await conn.close()


def bodies(person: str, cursor: str | None) -> list[str]:
    def body(query: str, name: str, variables: dict[str, object]) -> str:
        return json.dumps({"query": query, "operationName": name, "variables": variables})

    return [
        body(ME, "Me", {}),
        body(FEED, "UsersFeed", {"first": 20}),
        body(FEED, "UsersFeed", {"first": 20, "after": cursor}),
        body(INBOX, "Inbox", {}),
        body(MATCHES, "Matches", {}),
        body(PERSON, "Person", {"id": person}),
    ]


def measure(compiled: bool, args: argparse.Namespace, logs: Path, person: str) -> dict[str, object]:
    port = free_port()
    env = {**app_env(), "COMPILED_QUERIES": "true" if compiled else "false"}
    argv = [venv_bin("qiaoqiao"), "serve", "--port", str(port), "--workers", "1"]
    jwt = token()
    auth = f"Bearer {jwt}"
    url = f"http://127.0.0.1:{port}/graphql"
    name = "compiled" if compiled else "interpreted"
    with running(name, argv, env, logs / f"{name}.log", Path.cwd()) as server:
        headers = {"content-type": "application/json", "authorization": auth}
        first = json.loads(bodies(person, None)[1])
        wait_answer(server, url, json.dumps(first).encode(), headers)
        page = httpx.post(url, json=first, headers=headers, timeout=10).json()
        cursor = page["data"]["users"]["pageInfo"]["endCursor"]
        session = bodies(person, cursor)
        paths = []
        for one in session:  # every request answers without errors, on the path expected
            doc = httpx.post(url, content=one, headers=headers, timeout=10).json()
            if doc.get("errors"):
                raise BenchError(f"{name}: errors in {one[:60]}: {doc['errors']}")
            paths.append((doc.get("extensions") or {}).get("path"))
        file = logs / "bodies.jsonl"
        file.write_text("\n".join(session) + "\n")
        os.environ["BENCH_BODIES_FILE"] = str(file)
        try:
            if args.warmup:
                run_wrk(url, session[0], auth, args.warmup, args.connections, args.threads)
            result = run_wrk(url, session[0], auth, args.duration, args.connections, args.threads)
        finally:
            os.environ.pop("BENCH_BODIES_FILE", None)
    return {"name": name, "result": result, "paths": paths}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.session_mix", description=__doc__)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--no-analyze", action="store_true")
    parser.add_argument("--keep-database", action="store_true")
    args = parser.parse_args(argv)
    try:
        ensure_wrk()
        if not args.keep_database:
            prepare_database(args.users, analyze=not args.no_analyze)
        person = asyncio.run(_session_data(viewer_id(token())))
        rows = []
        with tempfile.TemporaryDirectory(prefix="bench-session-") as tmp:
            for compiled in (True, False):
                print(f"== {'compiled' if compiled else 'interpreted'}", flush=True)
                rows.append(measure(compiled, args, Path(tmp), person))
    except BenchError as exc:
        print(f"bench.session_mix: {exc}", file=sys.stderr)
        return 1
    print("\nrequests: me, feed page 1, feed page 2, whispersReceived, matches, user(id)")
    print(f"{'path':<12} | {'req/s':>7} | {'p50':>8} | {'p99':>8} | errors | answered by")
    for row in rows:
        r = row["result"]
        print(
            f"{row['name']:<12} | {r.rps:>7,.0f} | {r.p50_ms:>5.1f} ms | {r.p99_ms:>5.1f} ms"
            f" | {r.errors:>6} | {', '.join(str(p) for p in row['paths'])}"
        )
    fast, slow = rows[0]["result"].rps, rows[1]["result"].rps
    print(f"compiled / interpreted: {fast / slow:.1f}x")
    return 0 if all(row["result"].errors == 0 for row in rows) else 2


if __name__ == "__main__":
    sys.exit(main())
