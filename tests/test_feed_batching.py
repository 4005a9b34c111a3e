"""The feed's statements per request do not grow with the page size, on each path, counted
where that path runs them:

- interpreted (`COMPILED_QUERIES=false`): per-request dataloaders on the main engine, at most
  one statement per nesting level, and nothing on the compiled pool;
- compiled: one statement on the compiled pool (`services.read_pool`), none on the main engine.

Each run pins its path with `extensions.path` (development reports it), so a compiled run that
silently fell back to the interpreter fails instead of counting the wrong engine."""

from __future__ import annotations

import pytest

from src.app import create_app
from src.config import Settings
from src.resolvers.institutions import seed_institutions
from src.seeding import seed_demo_users
from tests.helpers import GraphQLClient, count_statements, registered_user, running_app

FEED = """query ($first: Int!) {
  users(first: $first) {
    edges { cursor node {
      id isPro
      profile { nickname age city bio interests institution { name city } }
      projects(first: 5) { edges { node { title role tags } } pageInfo { hasNextPage } }
    } }
    pageInfo { hasNextPage endCursor }
  }
}"""


@pytest.mark.parametrize("compiled", [False, True], ids=["interpreted", "compiled"])
async def test_statements_are_constant_in_page_size(settings: Settings, compiled: bool) -> None:
    pinned = {"compiled_queries": compiled, "report_path": True}
    app = create_app(settings.model_copy(update=pinned))
    async with running_app(app) as http:
        services = app.state.services
        async with services.sessionmaker() as session:
            await seed_institutions(session)
            await seed_demo_users(
                session, count=40, seed=7, policy_version="2026-11", now=app.state.services.clock()
            )
        gql = GraphQLClient(http)
        token = (await registered_user(gql, "viewer"))["accessToken"]
        counts = {}
        for first in (1, 20):
            pool_before = services.read_pool.statements
            with count_statements(services.engine) as main:
                answer = await http.post(
                    "/graphql",
                    json={"query": FEED, "variables": {"first": first}},
                    headers={"authorization": f"Bearer {token}"},
                )
            body = answer.json()
            assert "errors" not in body
            assert body["extensions"]["path"] == ("compiled" if compiled else "interpreted")
            edges = body["data"]["users"]["edges"]
            assert len(edges) == first
            counts[first] = (main.count, services.read_pool.statements - pool_before)
        with_projects = [e for e in edges if e["node"]["projects"]["edges"]]
        assert with_projects and all(len(e["node"]["projects"]["edges"]) <= 5 for e in edges)
        assert any(e["node"]["profile"]["institution"] for e in edges)
    assert counts[1] == counts[20]
    main_count, pool_count = counts[20]
    if compiled:
        assert (main_count, pool_count) == (0, 1)
    else:
        # viewer, page, profiles, institutions, projects, memberships (+ BEGIN/COMMIT)
        assert pool_count == 0
        assert main_count <= 8
