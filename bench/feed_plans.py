"""What plan PostgreSQL picks for the compiled feed: the statement a query compiles to,
EXPLAINed with a viewer's parameters. Used by bench.feed (printed beside the figures) and by
tests/test_plans.py (the plan's shape must not depend on table statistics).

    .venv/bin/python -m bench.feed_plans postgresql://…/qq_bench_feed  # ANALYZEs nothing

It connects with the planner settings the server uses (src.db.PLANNER_SETTINGS).
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
from graphql import parse

from bench.shapes import APOLLO, BENCHMARK, RELAY, Shape
from src.db import PLANNER_SETTINGS
from src.resolvers.calendar import local_day
from src.resolvers.readplan import bind_args, compile_read
from src.schema import schema
from src.schema.compiled_reads import CATALOG
from src.schema.selections import selections, shape_of


async def explain(
    conn: asyncpg.Connection, shape: Shape, viewer: uuid.UUID, *, analyze: bool = False
) -> dict[str, Any]:
    """EXPLAIN (FORMAT JSON) of the statement `shape` compiles to, for `viewer` (their
    session is not checked here: the answer is read the same either way)."""
    checked = shape_of(schema._schema, parse(shape.query), shape.operation)
    values = {**checked.defaults, **shape.variables}
    plan = compile_read(CATALOG, selections(schema._schema, checked, values), count_hit=False)
    now = datetime.now(UTC)
    params = bind_args(plan, values) | {
        "viewer_id": viewer,
        "session_id": uuid.uuid4(),
        "now": now,
        "today": local_day(now),
    }
    options = "ANALYZE, BUFFERS, FORMAT JSON" if analyze else "FORMAT JSON"
    text = await conn.fetchval(
        f"EXPLAIN ({options}) {plan.sql}", *(params[name] for name in plan.order)
    )
    return dict(orjson.loads(text)[0])


def outline(node: dict[str, Any], depth: int = 0) -> list[str]:
    """The plan's shape: each node's type, relation and index, indented — no costs or rows."""
    parts = [node["Node Type"]]
    for key in ("Relation Name", "Index Name", "Join Type", "Subplan Name"):
        if key in node:
            parts.append(f"{key.split()[0].lower()}={node[key]}")
    lines = ["  " * depth + " ".join(parts)]
    for child in node.get("Plans", ()):
        lines += outline(child, depth + 1)
    return lines


def seq_scans(node: dict[str, Any]) -> list[str]:
    """Tables the plan reads whole."""
    found = [node["Relation Name"]] if node["Node Type"] == "Seq Scan" else []
    for child in node.get("Plans", ()):
        found += seq_scans(child)
    return found


async def _main(dsn: str) -> None:
    conn = await asyncpg.connect(dsn, server_settings=PLANNER_SETTINGS)
    try:
        viewer = await conn.fetchval("SELECT id FROM users ORDER BY created_at DESC LIMIT 1")
        for shape in (BENCHMARK, APOLLO, RELAY):
            found = await explain(conn, shape, viewer, analyze=True)
            print(f"== {shape.name}: {found['Execution Time']:.2f} ms")
            print("\n".join(outline(found["Plan"])))
    finally:
        await conn.close()


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1]))
