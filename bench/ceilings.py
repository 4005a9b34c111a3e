"""Ceiling servers for the feed benchmark: what this machine can do without GraphQL.

Run with `uvicorn bench.ceilings:app --port P --workers 1`, DATABASE_URL set and, optionally,
BENCH_VIEWER_ID (the uuid of the user whose feed it is; bench/feed.py passes the token's).

- POST /json — a constant JSON document shaped and sized like the feed answer (HTTP ceiling:
  Starlette + uvicorn, no database, no GraphQL).
- POST /sql — the feed answered by ONE SQL statement (`LATERAL` subqueries + `json_agg` build
  the exact GraphQL response shape inside PostgreSQL) through an asyncpg pool (data ceiling),
  for the same page of users as the API's `users` field (its filters, its order).
- POST /sql-pk — the same statement for PostGraphile's page: users in primary-key order.

All read the request body, like a GraphQL server must, and ignore it.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import AsyncIterator

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

PAGE = 20
PROJECTS = 5

# The feed in one statement: the page of users (PAGE_*, below) joined LATERALly to each user's
# profile + institution and latest 5 projects, the whole GraphQL answer built by json_agg.
FEED_TEMPLATE = """
SELECT json_build_object('data', json_build_object('users', json_build_object(
         'edges', coalesce(json_agg(json_build_object('node', json_build_object(
             'id', u.id,
             'profile', prof.doc,
             'projects', json_build_object('edges', proj.edges)
         )) ORDER BY {order}), '[]'::json))))::text
FROM ({page}) AS u
LEFT JOIN LATERAL (
    SELECT json_build_object(
               'nickname', p.nickname, 'city', p.city, 'bio', p.bio,
               'institution', CASE WHEN i.id IS NULL THEN NULL
                                   ELSE json_build_object('name', i.name, 'city', i.city) END
           ) AS doc
    FROM user_profiles AS p
    LEFT JOIN institutions AS i ON i.id = p.institution_id
    WHERE p.user_id = u.id
    LIMIT 1  -- keeps the planner from hashing every profile: one index probe per user
) AS prof ON true
LEFT JOIN LATERAL (
    SELECT coalesce(json_agg(json_build_object('node', json_build_object(
               'title', x.title, 'role', x.role)) ORDER BY x.created_at DESC, x.id DESC),
               '[]'::json) AS edges
    FROM (
        SELECT title, role, created_at, id FROM user_projects
        WHERE user_id = u.id ORDER BY created_at DESC, id DESC LIMIT $2
    ) AS x
) AS proj ON true
"""

# The API's `users` page: people the viewer ($3) may see (active, registered, discoverable, no
# block either way), most recently registered first — the same rows the API answers with.
PAGE_API = """
    SELECT v.id, v.registered_at
    FROM users AS v JOIN user_profiles AS vp ON vp.user_id = v.id
    WHERE v.id <> $3 AND v.status = 'active' AND v.registered_at IS NOT NULL
      AND vp.visibility = 'discoverable'
      AND NOT EXISTS (
          SELECT 1 FROM user_blocks AS b
          WHERE (b.blocker_id = $3 AND b.blocked_id = v.id)
             OR (b.blocker_id = v.id AND b.blocked_id = $3))
    ORDER BY v.registered_at DESC, v.id DESC
    LIMIT $1
"""
# PostGraphile's page: the first users in primary-key order, unfiltered (it can only order by
# indexed columns and filter on indexed ones).
PAGE_PK = "SELECT v.id FROM users AS v ORDER BY v.id LIMIT $1"

SQL_API = FEED_TEMPLATE.replace("{page}", PAGE_API).replace(
    "{order}", "u.registered_at DESC, u.id DESC"
)
SQL_PK = FEED_TEMPLATE.replace("{page}", PAGE_PK).replace("{order}", "u.id")


def constant_feed() -> bytes:
    """A feed-shaped document of roughly the size of a real 20-user page (~10 kB)."""
    edges = []
    for n in range(PAGE):
        projects = [
            {"node": {"title": f"Project {n}-{k} 校园项目", "role": "member"}}
            for k in range(PROJECTS)
        ]
        edges.append(
            {
                "node": {
                    "id": f"00000000-0000-4000-8000-{n:012d}",
                    "profile": {
                        "nickname": f"用户{n:04d}",
                        "city": "上海",
                        "bio": "喜欢徒步、摄影和开源软件。" * 4,
                        "institution": {"name": "复旦大学", "city": "上海"},
                    },
                    "projects": {"edges": projects},
                }
            }
        )
    doc = {"data": {"users": {"edges": edges}}}
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


CONSTANT = constant_feed()
JSON_TYPE = "application/json"


async def plain_json(request: Request) -> Response:
    await request.body()
    return Response(CONSTANT, media_type=JSON_TYPE)


async def one_sql(request: Request) -> Response:
    """The API's page (its filters and order) in one statement."""
    await request.body()
    pool: asyncpg.Pool = request.app.state.pool
    async with pool.acquire() as conn:
        text = await conn.fetchval(SQL_API, PAGE, PROJECTS, request.app.state.viewer)
    return Response(text, media_type=JSON_TYPE)


async def one_sql_pk(request: Request) -> Response:
    """PostGraphile's page (primary-key order, no filter) in one statement."""
    await request.body()
    pool: asyncpg.Pool = request.app.state.pool
    async with pool.acquire() as conn:
        text = await conn.fetchval(SQL_PK, PAGE, PROJECTS)
    return Response(text, media_type=JSON_TYPE)


def _dsn() -> str:
    url = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/qq_bench_feed")
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    app.state.viewer = uuid.UUID(os.environ.get("BENCH_VIEWER_ID") or str(uuid.UUID(int=0)))
    app.state.pool = await asyncpg.create_pool(_dsn(), min_size=2, max_size=10)
    try:
        yield
    finally:
        await app.state.pool.close()


app = Starlette(
    routes=[
        Route("/json", plain_json, methods=["POST"]),
        Route("/sql", one_sql, methods=["POST"]),
        Route("/sql-pk", one_sql_pk, methods=["POST"]),
    ],
    lifespan=lifespan,
)
