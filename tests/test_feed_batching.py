"""The feed resolves through per-request dataloaders: statements per request do not grow with
the page size (at most one per nesting level)."""

from __future__ import annotations

from starlette.applications import Starlette

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


async def test_statements_are_constant_in_page_size(app: Starlette) -> None:
    async with running_app(app) as http:
        async with app.state.services.sessionmaker() as session:
            await seed_institutions(session)
            await seed_demo_users(session, count=40, seed=7, policy_version="2026-11")
        gql = GraphQLClient(http)
        token = (await registered_user(gql, "viewer"))["accessToken"]
        counts = {}
        for first in (1, 20):
            with count_statements(app.state.services.engine) as counter:
                response = await gql(FEED, {"first": first}, token=token)
            assert response.errors == []
            edges = response.data["users"]["edges"]  # type: ignore[index]
            assert len(edges) == first
            counts[first] = counter.count
        with_projects = [e for e in edges if e["node"]["projects"]["edges"]]
        assert with_projects and all(len(e["node"]["projects"]["edges"]) <= 5 for e in edges)
        assert any(e["node"]["profile"]["institution"] for e in edges)
    # viewer, page, profiles, institutions, projects, memberships (+ BEGIN/COMMIT bookkeeping)
    assert counts[1] == counts[20]
    assert counts[20] <= 8
