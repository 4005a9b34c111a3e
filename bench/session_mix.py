"""Workload D, the session mix: what the mini app reads on opening, compiled vs interpreted.

    .venv/bin/python -m bench.session_mix [--users 2000] [--duration 15] [--connections 16]

One session is six requests, as Apollo Client sends them (`__typename` in every selection set,
fragments, operation names, variables): `me`, the feed's first page and the page after it,
`whispersReceived`, `matches`, and `user(id)` of someone on the first page. The same sessions
go to qiaoqiao with 1 worker twice in one run, COMPILED_QUERIES=true then false; the table
gives sessions/s (requests/s ÷ 6) side by side and the compiled row's ratio to the interpreter
(issue 17's target: ≥ 10×).

Steps: recreate the database (bench/feed.py's: migrate, seed-demo, ANALYZE), give the viewer
(`demo-000000`) whispers and matches through SQL, then per server: start, send each request
once and check it (no errors, nothing empty, the answering path in `extensions.path`, and the
same data on both servers), warm up, load with wrk rotating the six bodies (bench/session.lua),
stop. Prints the table and writes it to bench/results/session-mix-<date>-<time>.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench import feed
from bench.harness import (
    BENCH,
    ROOT,
    BenchError,
    WrkResult,
    ensure_wrk,
    free_port,
    run_wrk,
    running,
    venv_bin,
    wait_answer,
)
from bench.report import machine
from bench.shapes import APOLLO

VIEWER = "demo-000000"
TARGET_RATIO = 10.0

ME = """query Me($projects: Int = 3) {
  me {
    id
    registered
    hasWechat
    role
    birthDate
    profile {
      ...ProfileCard
      __typename
    }
    projects(first: $projects) {
      edges {
        cursor
        node {
          id
          title
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
    __typename
  }
}

fragment ProfileCard on Profile {
  nickname
  age
  discoverable
  institution {
    id
    name
    verified
    __typename
  }
}"""

INBOX = """query Inbox($first: Int = 20, $after: String) {
  whispersReceived(first: $first, after: $after) {
    edges {
      cursor
      node {
        ...WhisperItem
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
}

fragment WhisperItem on Whisper {
  id
  content
  createdAt
  readAt
  isAnonymous
  revealedAt
  isMine
  sender {
    id
    profile {
      nickname
      __typename
    }
    __typename
  }
}"""

MATCHES = """query Matches($first: Int = 20, $after: String) {
  matches(first: $first, after: $after) {
    edges {
      cursor
      node {
        id
        createdAt
        user {
          id
          isPro
          profile {
            nickname
            institution {
              id
              name
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

PERSON = """query Person($id: ID!, $projects: Int = 3) {
  user(id: $id) {
    id
    isPro
    profile {
      nickname
      gender
      age
      city
      bio
      interests
      lookingFor
      institution {
        id
        name
        kind
        city
        verified
        __typename
      }
      __typename
    }
    projects(first: $projects) {
      edges {
        cursor
        node {
          id
          title
          description
          role
          tags
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
    __typename
  }
}"""

# The viewer's inbox and matches: 40 whispers from other demo users (anonymous or signed, some
# read), 10 of the viewer's own, 25 matches (one ended), spread over the last hours.
SEED_SQL = [
    """INSERT INTO whispers (id, sender_id, recipient_id, content, is_anonymous, read_at,
                             created_at)
       SELECT gen_random_uuid(), u.id, $1, 'bench whisper ' || n, n % 3 <> 0,
              CASE WHEN n % 4 = 0 THEN now() END, now() - n * interval '7 minutes'
       FROM (SELECT id, row_number() OVER (ORDER BY wechat_openid) AS n FROM users
             WHERE id <> $1 AND wechat_openid LIKE 'dev:demo-%' ORDER BY wechat_openid
             LIMIT 40) u""",
    """INSERT INTO whispers (id, sender_id, recipient_id, content, is_anonymous, created_at)
       SELECT gen_random_uuid(), $1, u.id, 'bench reply ' || n, n % 2 = 0,
              now() - n * interval '11 minutes'
       FROM (SELECT id, row_number() OVER (ORDER BY wechat_openid DESC) AS n FROM users
             WHERE id <> $1 AND wechat_openid LIKE 'dev:demo-%' ORDER BY wechat_openid DESC
             LIMIT 10) u""",
    """INSERT INTO user_matches (id, user_a_id, user_b_id, ended_at, created_at)
       SELECT gen_random_uuid(), least(u.id, $1), greatest(u.id, $1),
              CASE WHEN n = 5 THEN now() END, now() - n * interval '13 minutes'
       FROM (SELECT id, row_number() OVER (ORDER BY wechat_openid) AS n FROM users
             WHERE id <> $1 AND wechat_openid LIKE 'dev:demo-%' ORDER BY wechat_openid
             OFFSET 40 LIMIT 25) u""",
]


@dataclass(frozen=True)
class Request:
    name: str
    query: str
    variables: dict[str, Any]
    operation: str
    root: str  # the answer's field that must not be empty

    def body(self) -> str:
        return json.dumps(
            {"query": self.query, "variables": self.variables, "operationName": self.operation},
            separators=(",", ":"),
        )


@dataclass
class Run:
    name: str
    compiled: bool
    result: WrkResult | None = None
    paths: dict[str, str] | None = None
    failure: str = ""


def session(first_page: dict[str, Any] | None) -> list[Request]:
    """The six requests; the second feed page and the person come from the first page."""
    page = {"first": 20, **APOLLO.variables}
    after, person = "", ""
    if first_page is not None:
        after = first_page["pageInfo"]["endCursor"]
        person = first_page["edges"][0]["node"]["id"]
    return [
        Request("me", ME, {}, "Me", "me"),
        Request("feed page 1", APOLLO.query, page, "UsersFeed", "users"),
        Request("feed page 2", APOLLO.query, {**page, "after": after}, "UsersFeed", "users"),
        Request("whispersReceived", INBOX, {}, "Inbox", "whispersReceived"),
        Request("matches", MATCHES, {}, "Matches", "matches"),
        Request("user(id)", PERSON, {"id": person}, "Person", "user"),
    ]


def _server_env(compiled: bool) -> dict[str, str]:
    return {**feed.app_env(), "COMPILED_QUERIES": "true" if compiled else "false"}


async def _seed_viewer(viewer_id: str) -> None:
    conn = await asyncpg.connect(feed.DATABASE_URL)
    try:
        async with conn.transaction():
            for statement in SEED_SQL:
                await conn.execute(statement, viewer_id)
        await conn.execute("ANALYZE whispers; ANALYZE user_matches")
    finally:
        await conn.close()


def _check(name: str, resp: httpx.Response, root: str) -> tuple[Any, str]:
    """The answer's data and the path that answered; raises on errors or an empty answer."""
    if resp.status_code != 200:
        raise BenchError(f"{name}: HTTP {resp.status_code}: {resp.text[:300]}")
    doc = resp.json()
    if doc.get("errors"):
        raise BenchError(f"{name}: errors: {json.dumps(doc['errors'])[:400]}")
    value = (doc.get("data") or {}).get(root)
    if not value or (isinstance(value, dict) and "edges" in value and not value["edges"]):
        raise BenchError(f"{name}: empty answer: {resp.text[:300]}")
    return doc["data"], str((doc.get("extensions") or {}).get("path", "not reported"))


def measure(run: Run, token: str, args: argparse.Namespace, logs: Path) -> dict[str, Any]:
    """Check each request once, then load; returns each request's data."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/graphql"
    auth = f"Bearer {token}"
    headers = {"content-type": "application/json", "authorization": auth}
    argv = [venv_bin("qiaoqiao"), "serve", "--port", str(port), "--workers", "1"]
    log = logs / f"{run.name.replace(' ', '_')}.log"
    with running(run.name, argv, _server_env(run.compiled), log, ROOT) as server:
        print(f"  started pid {server.proc.pid} on port {port}", flush=True)
        first = session(None)[1]
        data, _ = _check(
            first.name, wait_answer(server, url, first.body().encode(), headers), "users"
        )
        requests = session(data["users"])
        answers, run.paths = {}, {}
        with httpx.Client(timeout=10, headers=headers) as client:
            for req in requests:
                answer = client.post(url, content=req.body())
                answers[req.name], run.paths[req.name] = _check(req.name, answer, req.root)
        print(f"  answers ok, paths: {run.paths}", flush=True)
        expected = "compiled" if run.compiled else "interpreted"
        if wrong := {k: v for k, v in run.paths.items() if v != expected}:
            raise BenchError(f"expected every request {expected}, got {wrong}")
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", dir=logs, delete=False) as f:
            f.write("\n".join(req.body() for req in requests) + "\n")
        script = {"script": BENCH / "session.lua", "script_env": {"BENCH_BODIES": f.name}}
        if args.warmup > 0:
            run_wrk(url, "", auth, args.warmup, args.connections, args.threads, **script)
        run.result = run_wrk(url, "", auth, args.duration, args.connections, args.threads, **script)
        if not server.alive():
            raise BenchError(f"{run.name} died during the run:\n{server.log_tail()}")
    return answers


def _row(run: Run, peer: Run | None) -> list[str]:
    res = run.result
    if res is None:
        return [run.name, "FAILED", "", "", "", "", ""]
    ratio = f"{res.rps / peer.result.rps:.1f}×" if peer and peer.result else "n/a"
    return [
        run.name,
        f"{res.rps / 6:,.0f}",
        f"{res.rps:,.0f}",
        f"{res.p50_ms:.1f} ms",
        f"{res.p99_ms:.1f} ms",
        str(res.errors),
        ratio,
    ]


HEADER = ["server", "sessions/s", "req/s", "p50", "p99", "errors", "× interpreter"]


def table(runs: list[Run]) -> list[list[str]]:
    peer = next((r for r in runs if not r.compiled), None)
    return [_row(run, peer) for run in runs]


def console_table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [HEADER, *rows]) for i in range(len(HEADER))]
    fmt = lambda cells: " | ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True))  # noqa: E731
    return "\n".join([fmt(HEADER), "-+-".join("-" * w for w in widths), *map(fmt, rows)])


def verdict(runs: list[Run]) -> str:
    fast = next((r for r in runs if r.compiled and r.result), None)
    slow = next((r for r in runs if not r.compiled and r.result), None)
    if fast is None or slow is None or fast.result is None or slow.result is None:
        return "target: not measured (a run failed)"
    ratio = fast.result.rps / slow.result.rps
    met = "met" if ratio >= TARGET_RATIO else "NOT met"
    return f"target ≥ {TARGET_RATIO:g}× the interpreter: {met} ({ratio:.1f}×)"


def write_markdown(runs: list[Run], notes: list[str], args: argparse.Namespace, head: str) -> Path:
    rows = table(runs)
    lines = [
        f"# Session mix (workload D), {head}",
        "",
        *[f"- {note}" for note in notes],
        "",
        "| " + " | ".join(HEADER) + " |",
        "|---|" + "---:|" * (len(HEADER) - 1),
        *["| " + " | ".join(r) + " |" for r in rows],
        "",
        f"- {verdict(runs)}",
        "",
        "Each request of a session is sent equally often (bench/session.lua rotates them per wrk "
        "thread); sessions/s = requests/s ÷ 6.",
        "",
    ]
    for run in runs:
        if run.failure:
            lines += [f"## {run.name}: failed", "", "```", run.failure[-3000:], "```", ""]
        elif run.result is not None:
            lines += [f"- {run.name}: wrk detail {run.result.detail}, paths {run.paths}"]
    lines += ["", "## The requests (Apollo Client's shape)", ""]
    for req in session(None):
        lines += [f"### {req.name}", "", "```graphql", req.query, "```", ""]
    path = BENCH / "results" / f"session-mix-{datetime.now():%Y-%m-%d-%H%M%S}.md"
    path.parent.mkdir(exist_ok=True)
    path.write_text("\n".join(lines))
    return path


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.session_mix", description=__doc__)
    parser.add_argument("--users", type=int, default=2000, help="users to seed (2000)")
    parser.add_argument("--duration", type=int, default=15, help="seconds of load each (15)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up load (3)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = datetime.now()
    loadavg = os.getloadavg()
    try:
        ensure_wrk()
        postgres = feed.prepare_database(args.users)
        token = feed.qiaoqiao("token", VIEWER, capture=True).strip().splitlines()[-1]
        asyncio.run(_seed_viewer(feed.viewer_id(token)))
    except (BenchError, OSError, asyncpg.PostgresError) as exc:
        print(f"bench.session_mix: {exc}", file=sys.stderr)
        return 1
    runs = [
        Run("qiaoqiao, 1 worker, compiled", True),
        Run("qiaoqiao, 1 worker, interpreted", False),
    ]
    answers: dict[str, Any] = {}
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-session-") as tmp:
        for run in runs:
            print(f"== {run.name}", flush=True)
            try:
                answers[run.name] = measure(run, token, args, Path(tmp))
            except (BenchError, httpx.HTTPError, OSError) as exc:
                print(f"  FAILED: {exc}", flush=True)
                run.failure = str(exc)
    if len(answers) == 2:
        first, second = answers.values()
        differ = [name for name in first if first[name] != second[name]]
        notes.append(
            "both servers gave the same data for every request"
            if not differ
            else f"the servers' data DIFFER for: {', '.join(differ)}"
        )
    command = "python -m bench.session_mix " + " ".join(sys.argv[1:] if argv is None else argv)
    notes = [
        f"command: `{command.strip()}`",
        f"machine: {machine()}; load average before the run "
        + " / ".join(f"{x:.2f}" for x in loadavg),
        f"PostgreSQL {postgres}; {args.users} seeded users, ANALYZEd; viewer {VIEWER} with 40 "
        "whispers received, 10 sent and 25 matches",
        f"wrk: {args.connections} connections, {args.threads} threads, {args.duration} s per "
        f"server after {args.warmup} s of warm-up",
        *notes,
    ]
    rows = table(runs)
    print()
    print(console_table(rows))
    print(verdict(runs))
    for note in notes[4:]:
        print(note)
    path = write_markdown(runs, notes, args, f"{started:%Y-%m-%d %H:%M}")
    print(f"\nwritten to {path.relative_to(ROOT)}")
    return 0 if all(r.result for r in runs) else 2


if __name__ == "__main__":
    sys.exit(main())
