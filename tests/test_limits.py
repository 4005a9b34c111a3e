"""GraphQL request limits (SECURITY.md 1, 2, 4, 5, 6, 7): refused before any resolver runs."""

from __future__ import annotations

import httpx
import pytest
from graphql import GraphQLError

from src.schema.extensions import classify_error
from tests.helpers import GraphQLClient, registered_user

INSTITUTIONS = "query ($first: Int) { institutions(first: $first) { edges { node { id } } } }"


def nested(depth: int) -> str:
    """A document `depth` selection sets deep below its root field (graphql-depth-limit's
    measure). Field names need not exist: the depth rule judges the document's shape."""
    query = "id"
    for level in range(depth):
        query = f"f{level} {{ {query} }}"
    return "{ " + query + " }"


async def test_depth_over_ten_is_refused(gql: GraphQLClient) -> None:
    response = await gql(nested(11))
    assert response.data is None
    assert any("exceeds maximum operation depth of 10" in e["message"] for e in response.errors)


async def test_depth_ten_passes_the_depth_rule(gql: GraphQLClient) -> None:
    response = await gql(nested(10))
    assert not any("depth" in e["message"] for e in response.errors)


async def test_sixteen_aliases_are_refused(gql: GraphQLClient) -> None:
    query = "{ " + " ".join(f"a{i}: health" for i in range(16)) + " }"
    response = await gql(query)
    assert response.data is None
    assert [e["message"] for e in response.errors] == ["16 aliases found. Allowed: 15"]
    assert response.error_codes == ["GRAPHQL_VALIDATION_FAILED"]


async def test_fifteen_aliases_are_answered(gql: GraphQLClient) -> None:
    query = "{ " + " ".join(f"a{i}: health" for i in range(15)) + " }"
    response = await gql(query)
    assert response.errors == []
    assert len(response.data or {}) == 15


async def test_document_over_2000_tokens_is_refused(gql: GraphQLClient) -> None:
    # "{", "}" and 1,999 field names: 2,001 tokens.
    query = "{ " + " ".join(["health"] * 1999) + " }"
    response = await gql(query)
    assert response.data is None
    assert len(response.errors) == 1
    assert "more than 2000 tokens" in response.errors[0]["message"]
    within = await gql("{ " + " ".join(["health"] * 1998) + " }")
    assert not any("tokens" in e["message"] for e in within.errors)


@pytest.mark.parametrize("first", [0, 101, -1])
async def test_first_outside_bounds_is_refused(gql: GraphQLClient, first: int) -> None:
    literal = await gql(f"{{ institutions(first: {first}) {{ edges {{ cursor }} }} }}")
    variable = await gql(INSTITUTIONS, {"first": first})
    for response in (literal, variable):
        assert response.data is None
        assert response.errors[0]["message"] == f"`first` must be between 1 and 100, got {first}."
        assert response.error_codes == ["BAD_USER_INPUT"]


async def test_first_100_and_default_are_accepted(gql: GraphQLClient) -> None:
    assert (await gql(INSTITUTIONS, {"first": 100})).errors == []
    assert (await gql("{ institutions { pageInfo { hasNextPage } } }")).errors == []


async def test_batched_array_is_refused(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/graphql",
        json=[{"query": "{ health }"}, {"query": "{ health }"}],
        headers={"accept": "application/graphql-response+json"},
    )
    assert response.status_code == 400
    assert "batch" in response.json()["errors"][0]["message"].lower()


async def test_mutations_over_get_are_refused(http: httpx.AsyncClient) -> None:
    # Queries may come over GET (tests/test_graphql_http.py); mutations never (SECURITY.md 6).
    mutation = await http.get("/graphql", params={"query": "mutation { health }"})
    assert mutation.status_code == 405


async def test_multipart_is_refused(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/graphql",
        files={"operations": (None, '{"query": "{ health }"}'), "map": (None, "{}")},
    )
    assert response.status_code in (400, 415)


async def test_syntax_errors_stay_readable(gql: GraphQLClient) -> None:
    response = await gql("{ health ")
    assert response.data is None
    assert "Syntax Error" in response.errors[0]["message"]


async def test_field_suggestions_on_in_development(gql: GraphQLClient) -> None:
    response = await gql("{ healt }")
    assert "Did you mean" in response.errors[0]["message"]


def test_unexpected_errors_are_masked() -> None:
    error = GraphQLError("secret detail", original_error=RuntimeError("password=hunter2"))
    masked = classify_error(error)
    assert masked.message == "Internal server error."
    assert masked.extensions == {"code": "INTERNAL_SERVER_ERROR"}


async def test_nul_characters_are_refused_before_any_resolver(gql: GraphQLClient) -> None:
    """Found by the fuzzer: PostgreSQL text cannot hold U+0000, and a mutation storing it
    failed as a masked internal error. Literals and variables, anywhere in the input."""
    token = (await registered_user(gql, "ann"))["accessToken"]
    propose = "proposeInstitution(name: $n, kind: UNIVERSITY) { errors { code } }"
    literal = await gql(
        'mutation { proposeInstitution(name: "a\\u0000b", kind: UNIVERSITY) { errors { code } } }',
        token=token,
    )
    variable = await gql("mutation ($n: String!) { " + propose + " }", {"n": "a\x00"}, token=token)
    nested = await gql(
        "mutation ($i: ProfileInput!) { updateProfile(input: $i) { errors { code } } }",
        {"i": {"interests": ["ok", "\x00"]}},
        token=token,
    )
    for response in (literal, variable, nested):
        assert response.data is None
        assert response.error_codes == ["BAD_USER_INPUT"]
        assert response.errors[0]["message"] == "Text may not contain NUL (U+0000) characters."
