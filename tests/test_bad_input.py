"""Bad input of every kind is a 4xx or an error with a clear code, never a 500 or a masked
INTERNAL_SERVER_ERROR (SECURITY.md 7; issue 16, L6)."""

from __future__ import annotations

import json

import httpx
import pytest

from src.resolvers import discovery
from tests.helpers import GraphQLClient, registered_user

CSRF = {"apollo-require-preflight": "1"}
REPORT = (
    'mutation ($proofs: [Upload!]) { reportUser(input: {reportedUserId: "x", reason: SPAM}, '
    "proofs: $proofs) { errors { code } } }"
)


@pytest.mark.parametrize("depth", [40, 2_000, 200_000])
async def test_deeply_nested_json_is_a_400(http: httpx.AsyncClient, depth: int) -> None:
    nested = "[" * depth + "]" * depth
    body = '{"query": "query ($v: [String]) { health }", "variables": {"v": ' + nested + "}}"
    response = await http.post(
        "/graphql", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400


async def test_json_within_the_depth_limit_is_answered(gql: GraphQLClient) -> None:
    nested: object = "x"
    for _ in range(25):
        nested = {"a": nested}
    response = await gql("{ health }", {"extra": nested})
    assert response.status == 200 and response.data == {"health": "ok"}


@pytest.mark.parametrize(
    ("operations", "files_map"),
    [
        ({"query": REPORT, "variables": {"proofs": [None]}}, [["variables.proofs.0"]]),
        ({"query": REPORT, "variables": {"proofs": [None]}}, {"0": "variables.proofs.0"}),
        ({"query": REPORT, "variables": {"proofs": [None]}}, {"0": ["variables.proofs.x"]}),
        ({"query": REPORT, "variables": {"proofs": [None]}}, {"0": ["variables.nope.0.a"]}),
        ({"query": REPORT, "variables": {"proofs": "text"}}, {"0": ["variables.proofs.0"]}),
        ({"query": REPORT, "variables": {"proofs": [None]}}, {"1": ["variables.proofs.0"]}),
    ],
)
async def test_malformed_multipart_maps_are_400(
    http: httpx.AsyncClient, operations: object, files_map: object
) -> None:
    response = await http.post(
        "/graphql",
        headers=CSRF,
        files={
            "operations": (None, json.dumps(operations)),
            "map": (None, json.dumps(files_map)),
            "0": ("a.png", b"\x89PNG\r\n\x1a\n", "image/png"),
        },
    )
    assert response.status_code == 400, response.text


@pytest.mark.parametrize("offset", [-1, -(10**30), 10**30, 1001])
async def test_discover_cursors_out_of_range_are_bad_input(gql: GraphQLClient, offset: int) -> None:
    token = (await registered_user(gql, "ann"))["accessToken"]
    mark = discovery._fingerprint("hiking", discovery.Criteria())
    after = discovery._cursor(mark, offset)
    response = await gql(
        'query ($a: String) { discover(prompt: "hiking", after: $a) { edges { cursor } } }',
        {"a": after},
        token=token,
    )
    assert response.error_codes == ["BAD_USER_INPUT"]
    assert response.errors[0]["message"] == "`after` is not a cursor of this search."
