"""Institution search in Chinese and English, by kind; proposals stay unverified and private
until a moderator approves them."""

from __future__ import annotations

from starlette.applications import Starlette

from tests.fakes.wechat import FakeWechat
from tests.helpers import LOGIN, GraphQLClient, registered_user, sql

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
    data = (await gql(SEARCH, variables)).data["institutions"]
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
    first = (await gql(SEARCH, {"kind": "UNIVERSITY", "first": 10})).data["institutions"]
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
    assert made.data["proposeInstitution"] == {
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
        ]
    anonymous = await gql(PROPOSE, {"name": "X Lab", "kind": "OTHER"})
    assert anonymous.error_codes == ["UNAUTHENTICATED"]


# Proposals: private until approved, rate limited, content-checked (issue 16, L3).

MINE = "{ me { profile { institution { id name verified } } } }"
THEIRS = "query ($id: ID!) { user(id: $id) { profile { institution { name } } } }"
SET = "mutation ($id: ID) { updateProfile(input: {institutionId: $id}) { errors { code } } }"
PENDING = "{ pendingInstitutions { edges { node { id name } } } }"
REVIEW = """mutation ($id: ID!, $ok: Boolean!) {
  reviewInstitution(institutionId: $id, approve: $ok) {
    institution { name verified } errors { code }
  }
}"""


async def propose(gql: GraphQLClient, token: str, name: str) -> dict:
    response = await gql(PROPOSE, {"name": name, "kind": "ORGANIZATION"}, token=token)
    return response.data["proposeInstitution"]  # type: ignore[index,no-any-return]


async def found(gql: GraphQLClient, token: str | None, name: str) -> list[dict]:
    response = await gql(SEARCH, {"s": name}, token=token)
    return [e["node"] for e in response.data["institutions"]["edges"]]


async def test_a_proposal_is_private_until_a_moderator_approves_it(
    app: Starlette, gql: GraphQLClient
) -> None:
    alice = await registered_user(gql, "alice")
    bob = await registered_user(gql, "bob")
    mod = await registered_user(gql, "mod")
    await sql(app, "UPDATE users SET role = 'moderator' WHERE id = :id", id=mod["me"]["id"])
    a, b, m = alice["accessToken"], bob["accessToken"], mod["accessToken"]

    mine = await propose(gql, a, "Squat Lab")
    assert mine["errors"] == [] and mine["institution"]["verified"] is False
    [own] = await found(gql, a, "Squat Lab")
    assert (await gql(SET, {"id": own["id"]}, token=a)).data["updateProfile"]["errors"] == []
    # Nobody else sees it: not in search, not on Alice's profile, not to pick.
    assert await found(gql, b, "Squat Lab") == [] and await found(gql, None, "Squat Lab") == []
    on_alice = await gql(THEIRS, {"id": alice["me"]["id"]}, token=b)
    assert on_alice.data == {"user": {"profile": {"institution": None}}}
    compiled = "{ users(first: 10) { edges { node { id profile { institution { name } } } } } }"
    interpreted = compiled.replace("{ name }", "{ ...N }") + " fragment N on Institution { name }"
    for query in (compiled, interpreted):
        shown = (await gql(query, token=b)).data["users"]["edges"]
        assert {e["node"]["id"]: e["node"]["profile"]["institution"] for e in shown} == {
            alice["me"]["id"]: None,  # compiled and interpreted alike
            mod["me"]["id"]: None,
        }
    picked = await gql(SET, {"id": own["id"]}, token=b)
    assert picked.data["updateProfile"]["errors"] == [{"code": "NOT_FOUND"}]
    # Bob may propose the same name (his own, private); Alice may not twice.
    assert (await propose(gql, b, "squat lab"))["errors"] == []
    assert (await propose(gql, a, "Squat Lab"))["errors"] == [
        {"code": "ALREADY_EXISTS", "field": "name"}
    ]
    [bobs] = await found(gql, b, "Squat Lab")
    await gql(SET, {"id": bobs["id"]}, token=b)

    pending = (await gql(PENDING, token=m)).data["pendingInstitutions"]["edges"]
    assert sorted(e["node"]["name"] for e in pending) == ["Squat Lab", "squat lab"]
    assert (await gql(PENDING, token=a)).error_codes == ["FORBIDDEN"]
    refused = await gql(REVIEW, {"id": own["id"], "ok": True}, token=a)
    assert refused.error_codes == ["FORBIDDEN"]
    approved = await gql(REVIEW, {"id": own["id"], "ok": True}, token=m)
    assert approved.data["reviewInstitution"] == {
        "institution": {"name": "Squat Lab", "verified": True},
        "errors": [],
    }
    # Listed for everyone; Bob's duplicate merged into it.
    assert [i["name"] for i in await found(gql, None, "Squat Lab")] == ["Squat Lab"]
    assert (await gql(THEIRS, {"id": alice["me"]["id"]}, token=b)).data == {
        "user": {"profile": {"institution": {"name": "Squat Lab"}}}
    }
    bob_now = (await gql(MINE, token=b)).data["me"]["profile"]["institution"]
    assert bob_now == {"id": own["id"], "name": "Squat Lab", "verified": True}
    assert (await gql(PENDING, token=m)).data["pendingInstitutions"]["edges"] == []
    actions = "SELECT count(*) FROM moderation_actions WHERE action = 'INSTITUTION_APPROVED'"
    assert await sql(app, actions) == 1


async def test_a_rejected_proposal_goes(app: Starlette, gql: GraphQLClient) -> None:
    alice = await registered_user(gql, "alice")
    mod = await registered_user(gql, "mod")
    await sql(app, "UPDATE users SET role = 'moderator' WHERE id = :id", id=mod["me"]["id"])
    made = await propose(gql, alice["accessToken"], "Rude Name Inc")
    [own] = await found(gql, alice["accessToken"], "Rude Name Inc")
    await gql(SET, {"id": own["id"]}, token=alice["accessToken"])
    rejected = await gql(REVIEW, {"id": own["id"], "ok": False}, token=mod["accessToken"])
    assert made["errors"] == []
    assert rejected.data["reviewInstitution"] == {"institution": None, "errors": []}
    assert await found(gql, alice["accessToken"], "Rude Name Inc") == []
    mine = await gql(MINE, token=alice["accessToken"])
    assert mine.data == {"me": {"profile": {"institution": None}}}
    again = await gql(REVIEW, {"id": own["id"], "ok": True}, token=mod["accessToken"])
    assert again.data["reviewInstitution"]["errors"] == [{"code": "NOT_FOUND"}]


async def test_proposals_are_rate_limited(gql: GraphQLClient) -> None:
    token = (await registered_user(gql, "spammer"))["accessToken"]
    codes = []
    for i in range(6):
        errors = (await propose(gql, token, f"Spam Lab {i}"))["errors"]
        codes.append(errors[0]["code"] if errors else "OK")
    assert codes == ["OK"] * 5 + ["RATE_LIMITED"]


async def test_proposed_names_pass_the_content_check(
    wx_gql: GraphQLClient, fake_wechat: FakeWechat
) -> None:
    fake_wechat.add_login("c1", "openid-zoe")
    token = (await wx_gql(LOGIN, {"code": "c1"})).data["wechatLogin"]["accessToken"]
    register = """mutation { register(input: {acceptedPolicyVersion: "2026-11", nickname: "Zoe"})
                  { errors { code } } }"""
    assert (await wx_gql(register, token=token)).data["register"]["errors"] == []
    risky = await propose(wx_gql, token, "赌博 Club")
    assert risky == {"institution": None, "errors": [{"code": "CONTENT_REJECTED", "field": "name"}]}
    assert (await propose(wx_gql, token, "Chess Club"))["errors"] == []
