"""Portfolio projects: validation, the 30 cap, owner-only edits, keyset pages."""

from __future__ import annotations

import pytest

from tests.helpers import GraphQLClient, registered_user

ADD = """mutation ($input: ProjectInput!) {
  addProject(input: $input) {
    project { id title tags startedOn endedOn link } errors { code field }
  }
}"""
UPDATE = """mutation ($id: ID!, $input: ProjectInput!) {
  updateProject(id: $id, input: $input) { project { id title } errors { code field } }
}"""
DELETE = "mutation ($id: ID!) { deleteProject(id: $id) { ok errors { code field } } }"
MINE = """query ($first: Int, $after: String) {
  me { projects(first: $first, after: $after) {
    edges { cursor node { title } } pageInfo { hasNextPage endCursor } } }
}"""


async def add(gql: GraphQLClient, token: str, **fields: object) -> dict:
    return (await gql(ADD, {"input": {"title": "P", **fields}}, token=token)).data["addProject"]


async def test_add_cleans_and_returns_the_project(gql: GraphQLClient) -> None:
    token = (await registered_user(gql, "alice"))["accessToken"]
    payload = await add(
        gql,
        token,
        title="  校园 二手  ",
        tags=["小程序", "小程序", " Go "],
        startedOn="2024-03",
        endedOn="2024-09-30",
        link="https://github.com/alice/market",
    )
    assert payload["errors"] == []
    assert payload["project"]["title"] == "校园 二手"
    assert payload["project"]["tags"] == ["小程序", "Go"]
    assert payload["project"]["startedOn"] == "2024-03-01"
    assert payload["project"]["endedOn"] == "2024-09-30"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"title": " "}, "title"),
        ({"title": "t" * 101}, "title"),
        ({"description": "d" * 2001}, "description"),
        ({"link": "ftp://x.org"}, "link"),
        ({"tags": [f"t{i}" for i in range(11)]}, "tags"),
        ({"startedOn": "2024-13"}, "startedOn"),
        ({"startedOn": "2024-05", "endedOn": "2024-04"}, "endedOn"),
    ],
)
async def test_project_rules_name_their_field(
    gql: GraphQLClient, fields: dict[str, object], field: str
) -> None:
    token = (await registered_user(gql, "bob"))["accessToken"]
    payload = await add(gql, token, **fields)
    assert payload["project"] is None
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [("INVALID_INPUT", field)]


async def test_only_the_owner_changes_a_project(gql: GraphQLClient) -> None:
    alice = (await registered_user(gql, "alice"))["accessToken"]
    mallory = (await registered_user(gql, "mallory"))["accessToken"]
    project_id = (await add(gql, alice, title="Mine"))["project"]["id"]
    missing = "00000000-0000-4000-8000-000000000000"
    for pid in (project_id, missing, "nonsense"):
        changed = await gql(UPDATE, {"id": pid, "input": {"title": "Stolen"}}, token=mallory)
        assert changed.data["updateProject"]["errors"] == [{"code": "NOT_FOUND", "field": "id"}]
        deleted = await gql(DELETE, {"id": pid}, token=mallory)
        assert deleted.data["deleteProject"] == {
            "ok": False,
            "errors": [{"code": "NOT_FOUND", "field": "id"}],
        }
    ok = await gql(UPDATE, {"id": project_id, "input": {"title": "Renamed"}}, token=alice)
    assert ok.data["updateProject"]["project"]["title"] == "Renamed"
    gone = await gql(DELETE, {"id": project_id}, token=alice)
    assert gone.data["deleteProject"] == {"ok": True, "errors": []}


async def test_at_most_thirty_projects(gql: GraphQLClient) -> None:
    token = (await registered_user(gql, "carol"))["accessToken"]
    for i in range(30):
        assert (await add(gql, token, title=f"P{i}"))["errors"] == []
    assert (await add(gql, token, title="one too many"))["errors"][0]["code"] == "LIMIT_REACHED"


async def test_pages_are_newest_first_without_gaps_or_repeats(gql: GraphQLClient) -> None:
    token = (await registered_user(gql, "dave"))["accessToken"]
    for i in range(7):
        await add(gql, token, title=f"P{i}")
    seen, after = [], None
    while True:
        page = (await gql(MINE, {"first": 3, "after": after}, token=token)).data["me"]["projects"]
        seen += [e["node"]["title"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == [f"P{i}" for i in reversed(range(7))]
