"""Recourse without identity: `blockWhisperSender` and `reportWhisper` act on the sender of a
whisper the caller received without telling them who it is; moderators see who it was. Both
refuse a whisper not received exactly as an unknown id. Blocks are rate limited."""

from __future__ import annotations

import json

import httpx
import pytest
from starlette.applications import Starlette

from src.app import create_app
from src.config import Settings
from tests.helpers import GraphQLClient, registered_user, running_app, send_whisper, sql
from tests.uploads import moderator, multipart, png

BY_WHISPER = """mutation ($id: ID!) {
  blockWhisperSender(whisperId: $id) { ok errors { code message field } }
}"""
REPORT_WHISPER = """mutation ($input: ReportWhisperInput!, $proofs: [Upload!]) {
  reportWhisper(input: $input, proofs: $proofs) {
    report {
      id status decision details whisperId whisperContent proofUrls note
      reported { id profile { nickname } isPro } reporter { id }
    }
    errors { code message field }
  }
}"""
QUEUE = """{ reports { edges { node {
  id status decision whisperId whisperContent proofUrls
  reported { id profile { nickname } } reporter { id }
} } } }"""
RESOLVE = """mutation ($input: ResolveReportInput!) {
  resolveReport(input: $input) { report { id status decision } errors { code message field } }
}"""
MINE = """{ me { reports { edges { node {
  id status decision whisperId whisperContent note reported { id profile { nickname } }
} } } } }"""
SEES = """query ($a: ID!) {
  user(id: $a) { id profile { nickname } }
  users { edges { node { id } } }
  matches { edges { node { user { id profile { nickname } } } } }
  whispersReceived { edges { node { id content sender { id } } } }
}"""
LIKE = "mutation ($id: ID!) { swipe(targetUserId: $id, action: LIKE) { errors { code } } }"
NOBODY = "00000000-0000-0000-0000-000000000000"
UNKNOWN = "00000000-0000-4000-8000-000000000000"


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "interpreted"])
async def test_block_whisper_sender_stops_them_and_changes_nothing_else(
    settings: Settings, compiled: bool
) -> None:
    app = create_app(settings.model_copy(update={"compiled_queries": compiled}))
    async with running_app(app) as http:
        gql = GraphQLClient(http)
        alice, bob, carol = [await registered_user(gql, n) for n in ("alice", "bob", "carol")]
        a, b = alice["me"]["id"], bob["me"]["id"]
        await gql(LIKE, {"id": a}, token=bob["accessToken"])
        await gql(LIKE, {"id": b}, token=alice["accessToken"])
        wid = (await send_whisper(gql, alice["accessToken"], recipientId=b, content="secret"))[
            "whisper"
        ]["id"]
        before = await gql(SEES, {"a": a}, token=bob["accessToken"])
        assert before.data["user"] and before.data["matches"]["edges"]

        for _ in range(2):  # idempotent
            done = await gql(BY_WHISPER, {"id": wid}, token=bob["accessToken"])
            assert done.data == {"blockWhisperSender": {"ok": True, "errors": []}}
        # Nothing Bob sees changes: the whisper, the match, her profile, the feed.
        assert (await gql(SEES, {"a": a}, token=bob["accessToken"])).data == before.data
        # She can no longer whisper him (compiled send or not), nor reveal herself to him.
        refused = await send_whisper(gql, alice["accessToken"], recipientId=b, content="again")
        assert refused["errors"] == [
            {
                "code": "NOT_FOUND",
                "message": "This person cannot receive whispers.",
                "field": "recipientId",
            }
        ]
        reveal = await gql(
            "mutation ($id: ID!) { revealWhisper(id: $id) { whisper { id } errors { code } } }",
            {"id": wid},
            token=alice["accessToken"],
        )
        assert reveal.data["revealWhisper"]["errors"] == [{"code": "NOT_FOUND"}]
        assert await sql(app, "SELECT revealed_at FROM whispers WHERE id = :w", w=wid) is None
        # Others still can; and Bob can still whisper her.
        assert (await send_whisper(gql, carol["accessToken"], recipientId=b, content="hi"))[
            "errors"
        ] == []
        assert (await send_whisper(gql, bob["accessToken"], recipientId=a, content="hi"))[
            "errors"
        ] == []
        # His export lists the block by whisper, never by person.
        exported = await gql("mutation { exportMyData { json } }", token=bob["accessToken"])
        data = json.loads(exported.data["exportMyData"]["json"])
        assert data["whisperSenderBlocks"] == [
            {"whisperId": wid, "createdAt": data["whisperSenderBlocks"][0]["createdAt"]}
        ]
        assert a not in json.dumps(data["whisperSenderBlocks"]) + json.dumps(data["blocks"])


async def test_recourse_refuses_a_whisper_not_received_like_an_unknown_id(
    gql: GraphQLClient,
) -> None:
    alice, bob, carol = [await registered_user(gql, n) for n in ("alice", "bob", "carol")]
    wid = (
        await send_whisper(gql, alice["accessToken"], recipientId=bob["me"]["id"], content="hi")
    )["whisper"]["id"]
    attempts = [
        (carol["accessToken"], wid),  # someone else's
        (alice["accessToken"], wid),  # one she sent
        (bob["accessToken"], UNKNOWN),
        (bob["accessToken"], "nonsense"),
    ]
    blocks, reports = [], []
    for token, target in attempts:
        blocked = await gql(BY_WHISPER, {"id": target}, token=token)
        blocks.append(blocked.data["blockWhisperSender"])
        reported = await gql(
            REPORT_WHISPER, {"input": {"whisperId": target, "reason": "SPAM"}}, token=token
        )
        reports.append(reported.data["reportWhisper"])
    not_found = {"code": "NOT_FOUND", "message": "No such whisper.", "field": "whisperId"}
    assert blocks == [{"ok": False, "errors": [not_found]}] * len(attempts)
    assert reports == [{"report": None, "errors": [not_found]}] * len(attempts)


async def test_report_whisper_names_the_sender_to_moderators_only(
    app: Starlette, http: httpx.AsyncClient, gql: GraphQLClient
) -> None:
    mod = await moderator(gql, app, "mod")
    alice, bob = [await registered_user(gql, n) for n in ("alice", "bob")]
    a = alice["me"]["id"]
    wid = (
        await send_whisper(
            gql, alice["accessToken"], recipientId=bob["me"]["id"], content="you will regret it"
        )
    )["whisper"]["id"]
    variables = {"input": {"whisperId": wid, "reason": "HARASSMENT", "details": "scary"}}
    response = await multipart(
        http, REPORT_WHISPER, variables, [("p.png", png(), "image/png")], token=bob["accessToken"]
    )
    filed = GraphQLClient.parse(response).data["reportWhisper"]
    assert filed["errors"] == []
    report = filed["report"]
    assert report["reported"] == {"id": NOBODY, "profile": None, "isPro": False}
    assert report["whisperId"] == wid and report["whisperContent"] is None
    assert report["status"] == "PENDING" and report["proofUrls"] == []
    assert a not in json.dumps(filed)
    # A second report of the same whisper adds to the first.
    again = await gql(
        REPORT_WHISPER,
        {"input": {"whisperId": wid, "reason": "HARASSMENT"}},
        token=bob["accessToken"],
    )
    assert again.data["reportWhisper"]["report"]["id"] == report["id"]

    # The moderator sees who sent it, and what it said.
    (edge,) = (await gql(QUEUE, token=mod["accessToken"])).data["reports"]["edges"]
    seen = edge["node"]
    assert seen["reported"] == {"id": a, "profile": {"nickname": "alice"}}
    assert seen["reporter"] == {"id": bob["me"]["id"]}
    assert seen["whisperContent"] == "you will regret it" and len(seen["proofUrls"]) == 1
    decided = await gql(
        RESOLVE,
        {"input": {"reportId": report["id"], "status": "RESOLVED", "action": "BAN"}},
        token=mod["accessToken"],
    )
    assert decided.data["resolveReport"]["errors"] == []
    assert await sql(app, "SELECT status FROM users WHERE id = :a", a=a) == "banned"

    # Bob: decided, nothing more — not who, not what was decided.
    mine = (await gql(MINE, token=bob["accessToken"])).data["me"]["reports"]["edges"]
    assert [e["node"] for e in mine] == [
        {
            "id": report["id"],
            "status": "RESOLVED",
            "decision": None,
            "whisperId": wid,
            "whisperContent": None,
            "note": None,
            "reported": {"id": NOBODY, "profile": None},
        }
    ]
    exported = await gql("mutation { exportMyData { json } }", token=bob["accessToken"])
    assert a not in exported.data["exportMyData"]["json"]
    made = json.loads(exported.data["exportMyData"]["json"])["reportsMade"]
    assert [(r["whisperId"], r["reportedUserId"], r["status"], r["decision"]) for r in made] == [
        (wid, None, "RESOLVED", None)
    ]


async def test_a_dismissed_whisper_report_reads_resolved_to_its_reporter(
    app: Starlette, gql: GraphQLClient
) -> None:
    mod = await moderator(gql, app, "mod")
    alice, bob = [await registered_user(gql, n) for n in ("alice", "bob")]
    wid = (
        await send_whisper(gql, alice["accessToken"], recipientId=bob["me"]["id"], content="hi")
    )["whisper"]["id"]
    filed = await gql(
        REPORT_WHISPER, {"input": {"whisperId": wid, "reason": "SPAM"}}, token=bob["accessToken"]
    )
    report_id = filed.data["reportWhisper"]["report"]["id"]
    await gql(
        RESOLVE,
        {"input": {"reportId": report_id, "status": "DISMISSED", "action": "NONE"}},
        token=mod["accessToken"],
    )
    mine = (await gql(MINE, token=bob["accessToken"])).data["me"]["reports"]["edges"]
    assert (mine[0]["node"]["status"], mine[0]["node"]["decision"]) == ("RESOLVED", None)
    queue = "{ reports { edges { node { status decision } } } }"
    (edge,) = (await gql(queue, token=mod["accessToken"])).data["reports"]["edges"]
    assert edge["node"] == {"status": "DISMISSED", "decision": "NONE"}


async def test_a_deleted_sender_can_still_be_reported_and_blocked_through_the_whisper(
    app: Starlette, gql: GraphQLClient
) -> None:
    """The same answers whoever sent it: a sender who left changes none of them."""
    mod = await moderator(gql, app, "mod")
    alice, bob = [await registered_user(gql, n) for n in ("alice", "bob")]
    wid = (
        await send_whisper(gql, alice["accessToken"], recipientId=bob["me"]["id"], content="hi")
    )["whisper"]["id"]
    assert (await gql("mutation { deleteAccount { ok } }", token=alice["accessToken"])).errors == []
    blocked = await gql(BY_WHISPER, {"id": wid}, token=bob["accessToken"])
    assert blocked.data["blockWhisperSender"] == {"ok": True, "errors": []}
    filed = await gql(
        REPORT_WHISPER, {"input": {"whisperId": wid, "reason": "SPAM"}}, token=bob["accessToken"]
    )
    report = filed.data["reportWhisper"]["report"]
    assert report["reported"]["id"] == NOBODY
    (edge,) = (await gql(QUEUE, token=mod["accessToken"])).data["reports"]["edges"]
    assert edge["node"]["reported"] == {"id": NOBODY, "profile": None}
    ban = await gql(
        RESOLVE,
        {"input": {"reportId": report["id"], "status": "RESOLVED", "action": "BAN"}},
        token=mod["accessToken"],
    )
    assert [e["code"] for e in ban.data["resolveReport"]["errors"]] == ["INVALID_INPUT"]
    warn = await gql(
        RESOLVE,
        {"input": {"reportId": report["id"], "status": "RESOLVED", "action": "WARN"}},
        token=mod["accessToken"],
    )
    assert warn.data["resolveReport"]["errors"] == []


async def test_blocks_are_rate_limited_alias_by_alias(settings: Settings) -> None:
    """blockUser, unblockUser and blockWhisperSender share one budget per account."""
    app = create_app(settings.model_copy(update={"rate_limits": {"block:user": (3, 3600)}}))
    async with running_app(app) as http:
        gql = GraphQLClient(http)
        ann, bob = [await registered_user(gql, n) for n in ("ann", "bob")]
        wid = (
            await send_whisper(gql, bob["accessToken"], recipientId=ann["me"]["id"], content="x")
        )["whisper"]["id"]
        fields = " ".join(
            f'b{i}: blockUser(userId: "{bob["me"]["id"]}") {{ ok errors {{ code }} }}'
            for i in range(2)
        )
        response = await gql("mutation { " + fields + " }", token=ann["accessToken"])
        assert [response.data[f"b{i}"]["ok"] for i in range(2)] == [True, True]
        unblocked = await gql(
            "mutation ($id: ID!) { unblockUser(userId: $id) { ok } }",
            {"id": bob["me"]["id"]},
            token=ann["accessToken"],
        )
        assert unblocked.data == {"unblockUser": {"ok": True}}
        over = await gql(BY_WHISPER, {"id": wid}, token=ann["accessToken"])
        assert [e["code"] for e in over.data["blockWhisperSender"]["errors"]] == ["RATE_LIMITED"]
        late = await gql(
            "mutation ($id: ID!) { blockUser(userId: $id) { errors { code } } }",
            {"id": bob["me"]["id"]},
            token=ann["accessToken"],
        )
        assert late.data == {"blockUser": {"errors": [{"code": "RATE_LIMITED"}]}}
        assert await sql(app, "SELECT count(*) FROM whisper_sender_blocks") == 0
