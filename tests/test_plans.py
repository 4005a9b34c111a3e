"""The compiled feed's plan does not depend on table statistics (issue 17, item 5).

This PostgreSQL runs without autovacuum: after a bulk load nothing has been ANALYZEd, and a
planner that believes a table tiny would read and sort all of it (the compiled feed once fell
to 276 req/s so). The statement walks the indexes instead, so its plan is the same before and
after ANALYZE: every read of a big table is an index scan, nothing is sorted.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from sqlalchemy import make_url

from bench.feed_plans import explain
from bench.shapes import APOLLO, BENCHMARK, RELAY, Shape
from src.app import create_app
from src.config import Settings
from src.db import PLANNER_SETTINGS
from src.seeding import seed_demo_users
from tests.helpers import running_app, sql

# Every compiled field of the feed, two pages deep in projects.
FULL = Shape(
    "full",
    """query ($after: String) { users(first: 20, after: $after) { edges { cursor node {
      id isPro
      profile { nickname avatarUrl gender age city bio interests lookingFor discoverable
                institution { id name kind city verified } }
      projects(first: 3) { edges { cursor node { id title tags startedOn } }
                           pageInfo { hasNextPage endCursor } } } }
      pageInfo { hasNextPage endCursor } } }""",
    {},
)
# The tables that grow with the users; small fixed ones (institutions) may be read whole.
BIG = {"users", "user_profiles", "user_projects", "memberships"}


def scans(node: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(node type, table, index) of every plan node touching a big table, and every Sort."""
    found = []
    if node.get("Relation Name") in BIG or node["Node Type"] in ("Sort", "Incremental Sort"):
        found.append((node["Node Type"], node.get("Relation Name", ""), node.get("Index Name", "")))
    for child in node.get("Plans", ()):
        found += scans(child)
    return found


@pytest.fixture
async def unanalyzed(settings: Settings) -> str:
    """A database with 3,000 seeded users and 1,000 PRO periods, never ANALYZEd."""
    app = create_app(settings)
    async with running_app(app):
        async with app.state.services.sessionmaker() as session:
            await seed_demo_users(
                session,
                count=3000,
                seed=1,
                policy_version="2026-11",
                now=app.state.services.clock(),
            )
        # PRO periods (the seed has none): one user in three, some past, some current.
        await sql(
            app,
            "INSERT INTO memberships (id, user_id, plan, valid_from, valid_until)"
            " SELECT gen_random_uuid(), id, 'PRO', now() - (n % 60) * interval '1 day',"
            " now() - (n % 60 - 30) * interval '1 day'"
            " FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM users) u"
            " WHERE n % 3 = 0",
        )
    url = make_url(settings.database_url.get_secret_value()).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


@pytest.mark.parametrize("shape", [BENCHMARK, APOLLO, RELAY, FULL], ids=lambda s: s.name)
async def test_feed_plan_is_the_same_without_statistics(unanalyzed: str, shape: Shape) -> None:
    conn = await asyncpg.connect(unanalyzed, server_settings=PLANNER_SETTINGS)
    try:
        never = await conn.fetchval(
            "SELECT count(*) FROM pg_class WHERE relname = ANY($1) AND reltuples < 0", list(BIG)
        )
        assert never == len(BIG), "the seeded tables should have no statistics yet"
        viewer = await conn.fetchval("SELECT id FROM users ORDER BY created_at LIMIT 1")
        before = scans((await explain(conn, shape, viewer))["Plan"])
        await conn.execute("ANALYZE")
        after = scans((await explain(conn, shape, viewer))["Plan"])
    finally:
        await conn.close()
    assert before == after
    assert not [s for s in before if s[0] not in ("Index Scan", "Index Only Scan")], before
    # The page walks the browse index; the viewer is found by primary key.
    assert {s[2] for s in before if s[1] == "users"} == {"ix_users_registered_at_id", "pk_users"}
