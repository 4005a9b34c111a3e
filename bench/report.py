"""Reporting for the benchmarks: the console table and the Markdown file in bench/results/.

Every figure is shown beside its ratio to the peer measured in the same run (PostGraphile),
because absolute numbers on a shared 2-core machine mean little on their own.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from bench.harness import NODE_DIR, WrkResult, tool_version

PEER = "PostGraphile 5"
HEADERS = ["server", "req/s", "p50", "p99", "errors", "× PostGraphile"]


@dataclass
class Row:
    """One server's outcome: a wrk result, or why there is none."""

    name: str
    result: WrkResult | None = None
    check: str = ""
    failure: str = ""
    ids: list[str] = field(default_factory=list)
    peer: str = PEER  # the row its ratio is taken against (PostGraphile for the same shape)


@dataclass
class Context:
    started: datetime
    command: str
    args: argparse.Namespace
    postgres: str
    node: str
    queries: dict[str, str]
    notes: list[str]


def _peer_rps(rows: list[Row], name: str = PEER) -> float | None:
    for row in rows:
        if row.name == name and row.result and row.result.rps > 0:
            return row.result.rps
    return None


def _cells(row: Row, rows: list[Row]) -> list[str]:
    peer = _peer_rps(rows, row.peer)
    if row.result is None:
        return [row.name, "—", "—", "—", "failed" if row.failure else "not run", "—"]
    res = row.result
    errors = str(res.errors)
    if res.errors:
        kinds = ", ".join(f"{k} {v}" for k, v in res.detail.items() if v)
        errors += f" ({kinds})"
    ratio = f"{res.rps / peer:.2f}×" if peer else "n/a"
    return [
        row.name,
        f"{res.rps:,.0f}",
        f"{res.p50_ms:.1f} ms",
        f"{res.p99_ms:.1f} ms",
        errors,
        ratio,
    ]


def console_table(rows: list[Row]) -> str:
    table = [HEADERS] + [_cells(r, rows) for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADERS))]

    def fmt(line: list[str]) -> str:
        first = line[0].ljust(widths[0])
        rest = [cell.rjust(width) for cell, width in zip(line[1:], widths[1:], strict=True)]
        return " | ".join([first, *rest])

    rule = "-+-".join("-" * w for w in widths)
    return "\n".join([fmt(table[0]), rule, *(fmt(line) for line in table[1:])])


def markdown_table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADERS) + " |", "|---|" + "---:|" * (len(HEADERS) - 1)]
    lines += ["| " + " | ".join(_cells(r, rows)) + " |" for r in rows]
    return "\n".join(lines)


def node_versions(node: str) -> str:
    """'Node v22.x, PostGraphile 5.x' for the copies under bench/.node."""
    package = NODE_DIR / "node_modules" / "postgraphile" / "package.json"
    try:
        pg_version = json.loads(package.read_text())["version"]
    except (OSError, ValueError, KeyError):
        pg_version = "?"
    return f"Node {tool_version([node, '--version'])}, PostGraphile {pg_version}"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def machine() -> str:
    return f"{os.cpu_count()} cores ({_cpu_model()}), {platform.system()} {platform.release()}"


def _shorten(text: str, head: int = 600, tail: int = 1400) -> str:
    """The start (what failed) and the end (the traceback's last frames) of a long message."""
    if len(text) <= head + tail:
        return text
    return f"{text[:head]}\n[… {len(text) - head - tail} characters …]\n{text[-tail:]}"


def write_markdown(rows: list[Row], ctx: Context, directory: Path) -> Path:
    """The report as bench/results/feed-<date>-<time>.md; returns its path."""
    args = ctx.args
    wrk = " ".join(tool_version(["wrk", "-v"]).split()[:2])
    lines = [
        f"# Feed benchmark, {ctx.started:%Y-%m-%d %H:%M}",
        "",
        f"- command: `.venv/bin/{ctx.command}`",
        f"- machine: {machine()}",
        f"- software: Python {platform.python_version()}, PostgreSQL {ctx.postgres}, "
        f"{ctx.node}, {wrk}",
        f"- data: `qiaoqiao seed-demo --users {args.users} --seed 1`",
        f"- load: wrk, {min(args.threads, args.connections)} threads, {args.connections} "
        f"connections, {args.duration} s per server after {args.warmup} s of warm-up",
        "",
        markdown_table(rows),
        "",
        "Ratios are req/s over PostGraphile's req/s in this same run, for the same shape of "
        "query (benchmark, Apollo Client, Relay fragments: bench/shapes.py). Errors count non-2xx "
        'answers, 2xx answers containing `"errors"`, socket errors and timeouts.',
        "",
        "## Answer checked before measuring",
        "",
    ]
    lines += [f"- {r.name}: {r.check}" for r in rows if r.check]
    lines += ["", *ctx.notes] if ctx.notes else []
    lines += ["", "## Queries", ""]
    for name, query in ctx.queries.items():
        lines += [f"{name}:", "", "```graphql", query, "```", ""]
    failed = [r for r in rows if r.failure]
    if failed:
        lines += ["## Failures", ""]
        for row in failed:
            lines += [f"{row.name}:", "", "```", _shorten(row.failure), "```", ""]
    lines += ["## wrk output", ""]
    for row in rows:
        if row.result:
            lines += [f"<details><summary>{row.name}</summary>", "", "```"]
            lines += [row.result.output, "```", "", "</details>", ""]
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"feed-{ctx.started:%Y-%m-%d-%H%M%S}.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
