"""Static query cost (SECURITY.md 3): over-budget operations are refused before any resolver
runs, with COST_LIMIT; development reports each operation's cost in `extensions.cost`."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import parse
from starlette.applications import Starlette

from src.app import create_app
from src.config import Settings
from src.schema import schema
from src.schema.cost import operation_cost
from tests.helpers import GraphQLClient, count_statements, registered_user, running_app
from tests.test_settings import PRODUCTION

# users: 2 + n × (edges 1 + node 1 + projects), projects: 2 + p × (edges 1 + node 1)
# so the whole document costs 2 + n × (4 + 2p).
NESTED = """query ($n: Int, $p: Int) {
  users(first: $n) { edges { node { projects(first: $p) { edges { node { id } } } } } }
}"""


def nested_cost(n: int, p: int) -> int:
    return 2 + n * (4 + 2 * p)


async def post(app_http: Any, query: str, variables: dict | None = None, token: str = "") -> dict:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = await app_http.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    assert response.status_code == 200
    return response.json()


async def test_just_under_the_budget_is_answered_and_reports_its_cost(http, gql) -> None:  # type: ignore[no-untyped-def]
    token = (await registered_user(gql, "ann"))["accessToken"]
    assert nested_cost(20, 22) == 962
    body = await post(http, NESTED, {"n": 20, "p": 22}, token)
    assert "errors" not in body, body
    assert body["extensions"] == {"cost": 962}


async def test_just_over_the_budget_is_refused_before_any_resolver(  # type: ignore[no-untyped-def]
    app: Starlette, http, gql
) -> None:
    token = (await registered_user(gql, "ann"))["accessToken"]
    assert nested_cost(20, 23) == 1002
    with count_statements(app.state.services.engine) as statements:
        body = await post(http, NESTED, {"n": 20, "p": 23}, token)
    assert statements.count == 0  # not even the viewer was loaded
    assert body.get("data") is None
    [error] = body["errors"]
    assert error["extensions"] == {"code": "COST_LIMIT", "cost": 1002, "budget": 1000}
    assert "1002" in error["message"] and "1000" in error["message"]


async def test_variables_literals_and_defaults_decide_first(http) -> None:  # type: ignore[no-untyped-def]
    page = "{ edges { node { id } } }"  # 2 + first × 2
    assert (await post(http, "{ users " + page + " }"))["extensions"]["cost"] == 42  # default 20
    assert (await post(http, "{ users(first: 5) " + page + " }"))["extensions"]["cost"] == 12
    by_variable = "query ($n: Int) { users(first: $n) " + page + " }"
    assert (await post(http, by_variable, {"n": 5}))["extensions"]["cost"] == 12
    assert (await post(http, by_variable, {"n": 100}))["extensions"]["cost"] == 202
    assert (await post(http, by_variable, {}))["extensions"]["cost"] == 42  # unset: the default
    # Same text, other variables: the validation cache must not keep the first verdict.
    assert (await post(http, NESTED, {"n": 1, "p": 1}))["extensions"]["cost"] == nested_cost(1, 1)
    refused = await post(http, NESTED, {"n": 100, "p": 100})
    assert refused["errors"][0]["extensions"]["code"] == "COST_LIMIT"
    assert refused["errors"][0]["extensions"]["cost"] == nested_cost(100, 100)


async def test_fragments_cost_what_they_expand_to(http) -> None:  # type: ignore[no-untyped-def]
    spread = """query ($n: Int, $p: Int) { users(first: $n) { ...Page } }
      fragment Page on UserConnection { edges { node { ...Person } } }
      fragment Person on User { ... on User { projects(first: $p) { edges { node { id } } } } }"""
    for n, p in ((3, 4), (20, 22)):
        body = await post(http, spread, {"n": n, "p": p})
        assert body["extensions"]["cost"] == nested_cost(n, p)
    refused = await post(http, spread, {"n": 20, "p": 23})
    assert refused["errors"][0]["extensions"] == {
        "code": "COST_LIMIT",
        "cost": 1002,
        "budget": 1000,
    }


async def test_aliases_multiply_the_cost(http) -> None:  # type: ignore[no-untyped-def]
    one = "users(first: 10) { edges { node { projects(first: 23) { edges { node { id } } } } } }"
    assert nested_cost(10, 23) == 502
    assert (await post(http, "{ " + one + " }"))["extensions"]["cost"] == 502
    twice = await post(http, "{ a: " + one + " b: " + one + " }")
    assert twice["errors"][0]["extensions"]["code"] == "COST_LIMIT"
    assert twice["errors"][0]["extensions"]["cost"] == 1004


async def test_mutations_cost_ten_per_root_field(http) -> None:  # type: ignore[no-untyped-def]
    logout = 'logout(refreshToken: "nope") { ok }'
    assert (await post(http, "mutation { " + logout + " }"))["extensions"]["cost"] == 10
    two = "mutation { a: " + logout + " b: " + logout + " errors: " + logout + " }"
    assert (await post(http, two))["extensions"]["cost"] == 30
    # A mutation answering a page: 10 + first × (results 1 + edges 1 + node 1 + user 1).
    search = (
        'mutation { aiSearch(prompt: "x", first: 50)'
        " { results { edges { node { user { id } } } } } }"
    )
    assert (await post(http, search))["extensions"]["cost"] == 210


def test_subscriptions_are_costed_too() -> None:
    document = parse(
        "subscription { whisperReceived { id sender { id"
        " projects(first: 100) { edges { cursor } } } } }"
    )
    # whisperReceived 1 + (sender 1 + projects (2 + 100 × 1))
    assert operation_cost(schema._schema, document, None, None) == 104


async def test_budget_is_a_setting(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"max_query_cost": 962}))
    async with running_app(app) as http:
        assert (await post(http, NESTED, {"n": 20, "p": 22}))["extensions"]["cost"] == 962
        refused = await post(http, NESTED, {"n": 20, "p": 23})
        assert refused["errors"][0]["extensions"]["budget"] == 962


async def test_production_does_not_report_the_cost(settings: Settings) -> None:
    app = create_app(settings.model_copy(update=PRODUCTION))
    async with running_app(app) as http:
        body = await post(http, "{ users(first: 5) { edges { cursor } } }")
        assert "extensions" not in body
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"  # it was answered
        refused = await post(http, NESTED, {"n": 20, "p": 23})
        assert refused["errors"][0]["extensions"]["code"] == "COST_LIMIT"


@pytest.mark.parametrize("compiled", [True, False])
async def test_compiled_feed_keeps_the_budget(settings: Settings, compiled: bool) -> None:
    """The compiled fast path answers the same: refused over budget, cost in development."""
    app = create_app(settings.model_copy(update={"compiled_queries": compiled}))
    feed = (
        "query ($n: Int, $p: Int) { users(first: $n)"
        " { edges { node { id projects(first: $p) { edges { node { title } } } } } } }"
    )
    async with running_app(app) as http:
        token = (await registered_user(GraphQLClient(http), "ann"))["accessToken"]
        before = app.state.services.read_pool.statements
        answered = await post(http, feed, {"n": 20, "p": 22}, token)
        assert answered == {"data": {"users": {"edges": []}}, "extensions": {"cost": 962}}
        assert (app.state.services.read_pool.statements - before == 1) is compiled
        refused = await post(http, feed, {"n": 20, "p": 23}, token)
        assert refused["errors"][0]["extensions"]["code"] == "COST_LIMIT"
