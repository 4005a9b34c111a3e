"""Blocks hide people from each other both ways, and are idempotent."""

from __future__ import annotations

from tests.helpers import GraphQLClient, registered_user

BLOCK = "mutation ($id: ID!) { blockUser(userId: $id) { ok errors { code field } } }"
UNBLOCK = "mutation ($id: ID!) { unblockUser(userId: $id) { ok errors { code field } } }"
USER = "query ($id: ID!) { user(id: $id) { id } }"
USERS = "{ users(first: 50) { edges { node { id } } } }"


async def sees(gql: GraphQLClient, token: str, other: str) -> bool:
    one = (await gql(USER, {"id": other}, token=token)).data["user"] is not None
    listed = {e["node"]["id"] for e in (await gql(USERS, token=token)).data["users"]["edges"]}
    assert one == (other in listed)
    return one


async def test_block_hides_both_ways_until_unblocked(gql: GraphQLClient) -> None:
    alice = await registered_user(gql, "alice")
    bob = await registered_user(gql, "bob")
    carol = await registered_user(gql, "carol")
    a, b, c = (u["accessToken"] for u in (alice, bob, carol))
    a_id, b_id = alice["me"]["id"], bob["me"]["id"]
    assert await sees(gql, a, b_id) and await sees(gql, b, a_id)

    for _ in range(2):  # idempotent
        assert (await gql(BLOCK, {"id": b_id}, token=a)).data["blockUser"] == {
            "ok": True,
            "errors": [],
        }
    assert not await sees(gql, a, b_id)
    assert not await sees(gql, b, a_id)
    assert await sees(gql, c, a_id) and await sees(gql, c, b_id)  # others unaffected

    for _ in range(2):
        assert (await gql(UNBLOCK, {"id": b_id}, token=a)).data["unblockUser"]["ok"] is True
    assert await sees(gql, a, b_id) and await sees(gql, b, a_id)


async def test_block_rejects_self_and_unknown_ids(gql: GraphQLClient) -> None:
    alice = await registered_user(gql, "alice")
    token = alice["accessToken"]
    own = await gql(BLOCK, {"id": alice["me"]["id"]}, token=token)
    assert own.data["blockUser"]["errors"] == [{"code": "INVALID_INPUT", "field": "userId"}]
    for unknown in ("00000000-0000-4000-8000-000000000000", "nope"):
        response = await gql(BLOCK, {"id": unknown}, token=token)
        assert response.data["blockUser"]["errors"] == [{"code": "NOT_FOUND", "field": "userId"}]
