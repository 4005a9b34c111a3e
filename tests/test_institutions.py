"""Institution search in Chinese and English, by kind; proposals stay unverified."""

from __future__ import annotations

from tests.helpers import GraphQLClient, registered_user

SEARCH = """query ($s: String, $kind: InstitutionKind, $first: Int, $after: String) {
  institutions(search: $s, kind: $kind, first: $first, after: $after) {
    edges { node { id name kind city verified } } pageInfo { hasNextPage endCursor }
  }
}"""
PROPOSE = """mutation ($name: String!, $kind: InstitutionKind!, $city: String) {
  proposeInstitution(name: $name, kind: $kind, city: $city) {
    institution { name verified kind city } errors { code field }
  }
}"""


async def names(gql: GraphQLClient, **variables: object) -> list[str]:
    data = (await gql(SEARCH, variables)).data["institutions"]  # type: ignore[index]
    return [e["node"]["name"] for e in data["edges"]]


async def test_chinese_and_english_names_find_the_same_place(gql: GraphQLClient) -> None:
    assert "清华大学" in await names(gql, s="清华")
    assert "清华大学" in await names(gql, s="tsinghua")
    assert "清华大学" in await names(gql, s="THU")
    assert "腾讯" in await names(gql, s="Tencent")
    assert "北京大学" in await names(gql, s="Peking University")


async def test_kind_filter_and_pages(gql: GraphQLClient) -> None:
    companies = await names(gql, kind="COMPANY", first=100)
    assert "腾讯" in companies and "清华大学" not in companies
    first = (await gql(SEARCH, {"kind": "UNIVERSITY", "first": 10})).data["institutions"]  # type: ignore[index]
    second = await names(gql, kind="UNIVERSITY", first=10, after=first["pageInfo"]["endCursor"])
    assert first["pageInfo"]["hasNextPage"] is True
    assert not {e["node"]["name"] for e in first["edges"]} & set(second)


async def test_like_wildcards_are_literal(gql: GraphQLClient) -> None:
    assert await names(gql, s="%") == []
    assert await names(gql, s="_") == []


async def test_proposals_are_unverified_and_not_duplicated(gql: GraphQLClient) -> None:
    token = (await registered_user(gql, "alice"))["accessToken"]
    made = await gql(
        PROPOSE, {"name": " 悄悄  实验室 ", "kind": "ORGANIZATION", "city": "杭州"}, token=token
    )
    assert made.data["proposeInstitution"] == {  # type: ignore[index]
        "institution": {
            "name": "悄悄 实验室",
            "verified": False,
            "kind": "ORGANIZATION",
            "city": "杭州",
        },
        "errors": [],
    }
    for name in ("悄悄 实验室", "清华大学", "Tsinghua University"):
        again = await gql(PROPOSE, {"name": name, "kind": "UNIVERSITY"}, token=token)
        assert again.data["proposeInstitution"]["errors"] == [
            {"code": "ALREADY_EXISTS", "field": "name"}
        ]  # type: ignore[index]
    anonymous = await gql(PROPOSE, {"name": "X Lab", "kind": "OTHER"})
    assert anonymous.error_codes == ["UNAUTHENTICATED"]
