"""Swipes and matches: one row per pair, quota once per target and day, exactly one match."""

from __future__ import annotations

import asyncio

from starlette.applications import Starlette

from tests.helpers import GraphQLClient, registered_user, sql

SWIPE = """mutation ($id: ID!, $a: SwipeAction!) {
  swipe(targetUserId: $id, action: $a) { match { id user { id } } errors { code field } }
}"""
MATCHES = "{ matches { edges { node { id user { id } } } } }"
UNMATCH = "mutation ($id: ID!) { unmatch(matchId: $id) { ok errors { code field } } }"
BLOCK = "mutation ($id: ID!) { blockUser(userId: $id) { ok } }"


async def swipe(gql: GraphQLClient, who: dict, whom: dict, action: str = "LIKE") -> dict:
    response = await gql(SWIPE, {"id": whom["me"]["id"], "a": action}, token=who["accessToken"])
    assert response.errors == [], response.errors
    return response.data["swipe"]


async def test_two_likes_make_one_match_for_both(gql: GraphQLClient) -> None:
    alice, bob = await registered_user(gql, "alice"), await registered_user(gql, "bob")
    assert (await swipe(gql, alice, bob))["match"] is None
    made = await swipe(gql, bob, alice, "SUPER_LIKE")
    assert made["match"]["user"] == {"id": alice["me"]["id"]}
    for who, other in ((alice, bob), (bob, alice)):
        edges = (await gql(MATCHES, token=who["accessToken"])).data["matches"]["edges"]
        assert [e["node"]["user"]["id"] for e in edges] == [other["me"]["id"]]
    # Liking again reports nothing new.
    assert (await swipe(gql, alice, bob))["match"] is None


async def test_pass_makes_no_match_and_a_change_of_mind_is_free(app: Starlette, http) -> None:  # type: ignore[no-untyped-def]
    gql = GraphQLClient(http)
    alice, bob = await registered_user(gql, "alice"), await registered_user(gql, "bob")
    await swipe(gql, alice, bob, "PASS")
    await swipe(gql, bob, alice, "LIKE")
    assert (await gql(MATCHES, token=bob["accessToken"])).data["matches"]["edges"] == []
    made = await swipe(gql, alice, bob, "LIKE")
    assert made["match"] is not None
    assert await sql(app, "SELECT count(*) FROM user_swipes") == 2  # one row per ordered pair
    used = await sql(
        app,
        "SELECT used FROM user_quotas WHERE user_id = :u AND kind = 'SWIPE'",
        u=alice["me"]["id"],
    )
    assert used == 1


async def test_simultaneous_mutual_likes_make_exactly_one_match(app: Starlette, http) -> None:  # type: ignore[no-untyped-def]
    gql = GraphQLClient(http)
    pairs = [
        (await registered_user(gql, f"a{i}"), await registered_user(gql, f"b{i}")) for i in range(8)
    ]
    results = await asyncio.gather(
        *(swipe(gql, x, y) for a, b in pairs for x, y in ((a, b), (b, a)))
    )
    made = [r["match"] for r in results if r["match"]]
    assert len(made) == 8
    assert await sql(app, "SELECT count(*) FROM user_matches") == 8


async def test_unmatch_and_block_end_matches(gql: GraphQLClient) -> None:
    alice, bob, carol = [await registered_user(gql, n) for n in ("alice", "bob", "carol")]
    await swipe(gql, alice, bob)
    match_id = (await swipe(gql, bob, alice))["match"]["id"]
    stranger = await gql(UNMATCH, {"id": match_id}, token=carol["accessToken"])
    assert stranger.data["unmatch"]["errors"] == [{"code": "NOT_FOUND", "field": "matchId"}]
    done = await gql(UNMATCH, {"id": match_id}, token=alice["accessToken"])
    assert done.data["unmatch"] == {"ok": True, "errors": []}
    assert (await gql(MATCHES, token=bob["accessToken"])).data["matches"]["edges"] == []

    await swipe(gql, alice, carol)
    await swipe(gql, carol, alice)
    await gql(BLOCK, {"id": alice["me"]["id"]}, token=carol["accessToken"])
    assert (await gql(MATCHES, token=alice["accessToken"])).data["matches"]["edges"] == []


async def test_swiping_hidden_self_or_unknown_users_is_not_found(gql: GraphQLClient) -> None:
    alice = await registered_user(gql, "alice")
    hidden = await registered_user(gql, "hidden")
    await gql(
        "mutation { updateProfile(input: {discoverable: false}) { errors { code } } }",
        token=hidden["accessToken"],
    )
    for target in (hidden, alice, {"me": {"id": "00000000-0000-4000-8000-000000000000"}}):
        payload = await swipe(gql, alice, target)
        assert payload["errors"] == [{"code": "NOT_FOUND", "field": "targetUserId"}]
