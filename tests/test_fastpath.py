"""The compiled feed answers exactly what the interpreter answers, in one statement."""

from __future__ import annotations

import json

import pytest

from src.app import create_app
from src.config import Settings
from src.seeding import seed_demo_users
from tests.helpers import GraphQLClient, count_statements, registered_user, running_app, sql

FULL = """query ($first: Int, $after: String, $pf: Int) {
  users(first: $first, after: $after) {
    edges { cursor node {
      id isPro
      profile { nickname avatarUrl gender age city bio interests lookingFor discoverable
                institution { id name kind city verified } }
      projects(first: $pf) {
        edges { cursor node { id title description role link tags startedOn endedOn } }
        pageInfo { hasNextPage endCursor }
      }
    } }
    pageInfo { hasNextPage endCursor }
  }
}"""
ALIASED = """{ feed: users(first: 3) { pageInfo { more: hasNextPage end: endCursor }
  edges { who: node { key: id p: profile { n: nickname } } } } }"""
# (`__typename` and fragments compile since issue 17: tests/test_fastpath_shapes.py)
NOT_COMPILED = [
    "{ __typename users(first: 2) { edges { node { id } } } }",
    "query ($s: Boolean!) { users(first: 2) { edges { node { id @skip(if: $s) } } } }",
    "{ users(first: 2) { edges { node { id } } } appConfig { minAge } }",
]


@pytest.fixture
async def seeded(settings: Settings) -> tuple[Settings, str, str]:
    # A page of 100 users with 100 projects each costs ~30,700 points: this file is about the
    # compiled answer equalling the interpreted one, not about the budget (see test_cost.py).
    settings = settings.model_copy(update={"max_query_cost": 100_000})
    app = create_app(settings)
    async with running_app(app) as http:
        async with app.state.services.sessionmaker() as session:
            await seed_demo_users(
                session, count=30, seed=3, policy_version="2026-11", now=app.state.services.clock()
            )
        gql = GraphQLClient(http)
        viewer = await registered_user(gql, "viewer")
        other = await registered_user(gql, "blocker")
        # Variety the demo data lacks: a PRO member, a block, a hidden profile.
        await sql(
            app,
            "INSERT INTO memberships (id, user_id, plan, valid_from, valid_until)"
            " SELECT gen_random_uuid(), id, 'PRO', now() - interval '1 day',"
            " now() + interval '1 day' FROM users WHERE wechat_openid = 'dev:demo-000002'",
        )
        await gql(
            "mutation ($id: ID!) { blockUser(userId: $id) { ok } }",
            {"id": viewer["me"]["id"]},
            token=other["accessToken"],
        )
        await sql(
            app,
            "UPDATE user_profiles SET visibility = 'hidden' WHERE user_id ="
            " (SELECT id FROM users WHERE wechat_openid = 'dev:demo-000004')",
        )
    return settings, viewer["accessToken"], viewer["me"]["id"]


async def both(settings: Settings, query: str, variables: dict | None, token: str) -> tuple:
    answers = []
    for compiled in (True, False):
        app = create_app(settings.model_copy(update={"compiled_queries": compiled}))
        async with running_app(app) as http:
            services = app.state.services
            before = services.read_pool.statements
            with count_statements(services.engine) as main:
                response = await http.post(
                    "/graphql",
                    json={"query": query, "variables": variables},
                    headers={"authorization": f"Bearer {token}"},
                )
            read = services.read_pool.statements - before
        # A compiled answer is one statement on the read pool and none on the main engine.
        answers.append((json.loads(response.content), read if not main.count else -1))
    return answers[0], answers[1]


@pytest.mark.parametrize(
    "variables",
    [
        {"first": 20, "pf": 5},
        {"first": 1, "pf": 1},
        {"first": 100, "pf": 100},
        {"first": 7, "pf": 2},
    ],
)
async def test_compiled_feed_equals_interpreted(seeded: tuple, variables: dict) -> None:
    settings, token, _ = seeded
    (fast, fast_statements), (slow, _) = await both(settings, FULL, variables, token)
    assert fast == slow
    assert "errors" not in fast
    assert fast_statements == 1


async def test_pages_follow_cursors_identically(seeded: tuple) -> None:
    settings, token, _ = seeded
    after, inner_after, seen = None, None, []
    for _ in range(5):
        variables = {"first": 4, "after": after, "pf": 2}
        (fast, _), (slow, _) = await both(settings, FULL, variables, token)
        assert fast == slow
        users = fast["data"]["users"]
        seen += [e["node"]["id"] for e in users["edges"]]
        for edge in users["edges"]:
            info = edge["node"]["projects"]["pageInfo"]
            if info["hasNextPage"]:
                inner_after = info["endCursor"]
        after = users["pageInfo"]["endCursor"]
    assert len(seen) == len(set(seen)) == 20
    # A cursor made by one path works in the other (same encoding).
    nested = """query ($a: String) { users(first: 1) { edges { node {
      projects(first: 1, after: $a) { edges { cursor } } } } } }"""
    (fast, _), (slow, _) = await both(settings, nested, {"a": inner_after}, token)
    assert fast == slow


async def test_aliases_and_fallbacks(seeded: tuple) -> None:
    settings, token, _ = seeded
    (fast, statements), (slow, _) = await both(settings, ALIASED, None, token)
    assert fast == slow and statements == 1
    for query in NOT_COMPILED:
        (fast, _), (slow, _) = await both(settings, query, None, token)
        assert fast == slow
    # Errors are the interpreter's: bad page size, bad cursor, no token.
    for variables in ({"first": 101}, {"first": 2, "after": "garbage"}):
        (fast, _), (slow, _) = await both(settings, FULL, variables, token)
        assert fast == slow and fast["errors"]
    (fast, _), (slow, _) = await both(settings, FULL, {"first": 2}, "forged")
    assert fast == slow and fast["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_blocked_and_hidden_users_are_absent(seeded: tuple) -> None:
    settings, token, viewer_id = seeded
    (fast, _), _ = await both(settings, FULL, {"first": 100, "pf": 1}, token)
    names = {e["node"]["profile"]["nickname"] for e in fast["data"]["users"]["edges"]}
    ids = {e["node"]["id"] for e in fast["data"]["users"]["edges"]}
    assert "blocker" not in names
    assert viewer_id not in ids
    assert all(e["node"]["profile"]["discoverable"] for e in fast["data"]["users"]["edges"])
    assert any(e["node"]["isPro"] for e in fast["data"]["users"]["edges"])
