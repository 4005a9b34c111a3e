"""The oracles of issue 15, each closed: what the recipient of an anonymous whisper could learn
about its sender from their own blocks, replies and the sender's state; and the paths that
showed a hidden person's profile. Each test failed before the fix."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from src.app import create_app
from src.config import Settings
from tests.helpers import (
    GraphQLClient,
    LiveServer,
    count_statements,
    live_server,
    registered_user,
    running_app,
    send_whisper,
    sql,
)
from tests.recipient_view import WHISPER_FIELDS, Normaliser, mcp_calls, replay
from tests.uploads import REPORT

VIEW = f"""query ($w: ID!) {{
  whispersReceived(first: 50) {{
    edges {{ cursor node {{ {WHISPER_FIELDS} }} }} pageInfo {{ hasNextPage endCursor }}
  }}
  unread: whispersReceived(unreadOnly: true) {{ edges {{ cursor node {{ id }} }} }}
  whispersSent(first: 50) {{ edges {{ cursor node {{ {WHISPER_FIELDS} }} }} }}
  whisper(id: $w) {{ {WHISPER_FIELDS} }}
}}"""
BLOCK = "mutation ($id: ID!) { blockUser(userId: $id) { ok errors { code message field } } }"
UNBLOCK = "mutation ($id: ID!) { unblockUser(userId: $id) { ok errors { code message field } } }"
BY_WHISPER = "mutation ($id: ID!) { blockWhisperSender(whisperId: $id) { ok errors { code } } }"
EXPORT = "mutation { exportMyData { json errors { code } } }"
REPLY = f"""mutation ($input: SendWhisperInput!) {{
  sendWhisper(input: $input) {{ whisper {{ {WHISPER_FIELDS} }} errors {{ code message field }} }}
}}"""


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The views below read every field on purpose: over the budget meant for clients.
    return settings.model_copy(update={"max_query_cost": 1_000_000})


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[tuple[Starlette, LiveServer, GraphQLClient]]:
    app = create_app(settings)
    async with live_server(app) as live, httpx.AsyncClient(base_url=live.url) as http:
        yield app, live, GraphQLClient(http)


async def everything(server: LiveServer, gql: GraphQLClient, login: dict, wid: str) -> Any:
    """All the recipient can see of their whispers: GraphQL, the replay, MCP, the export."""
    token = login["accessToken"]
    view = await gql(VIEW, {"w": wid}, token=token)
    assert view.errors == [], view.errors
    exported = await gql(EXPORT, token=token)
    data = json.loads(exported.data["exportMyData"]["json"])
    mcp = await mcp_calls(
        server,
        token,
        [("list_whispers", {}), ("list_whispers", {"box": "sent"})],
    )
    return {
        "graphql": view.data,
        "replay": await replay(server, token),
        "mcp": mcp,
        "export": {k: data[k] for k in ("whispers", "blocks", "whisperSenderBlocks")},
    }


async def test_blocking_a_suspect_tells_nothing_about_anonymous_whispers(server: Any) -> None:
    """Blocking the sender, or someone else, leaves the recipient's view of an anonymous whisper
    exactly as it was: inbox, whisper(id), replay, MCP, export, and the answer to a reply."""
    _, live, gql = server
    alice, bob, carol = [await registered_user(gql, n) for n in ("alice", "bob", "carol")]
    a, b, c = (u["me"]["id"] for u in (alice, bob, carol))
    wid = (await send_whisper(gql, alice["accessToken"], recipientId=b, content="guess"))[
        "whisper"
    ]["id"]
    token = bob["accessToken"]

    def norm(value: Any) -> Any:
        return Normaliser([a, b, c, wid])(value)

    async def reply() -> Any:
        answer = await gql(REPLY, {"input": {"replyToId": wid, "content": "who?"}}, token=token)
        return norm(answer.data)

    untouched = norm(await everything(live, gql, bob, wid))
    assert [e["node"]["id"] for e in untouched["graphql"]["whispersReceived"]["edges"]] == [wid]
    replies = [await reply()]

    await gql(BLOCK, {"id": a}, token=token)  # the sender
    sender_blocked = norm(await everything(live, gql, bob, wid))
    replies.append(await reply())
    await gql(UNBLOCK, {"id": a}, token=token)
    await gql(BLOCK, {"id": c}, token=token)  # an innocent
    innocent_blocked = norm(await everything(live, gql, bob, wid))
    replies.append(await reply())

    # The replies themselves now sit in Bob's whispersSent: compare views without them.
    for view in (sender_blocked, innocent_blocked):
        view["graphql"]["whispersSent"] = untouched["graphql"]["whispersSent"]
        view["mcp"][1] = untouched["mcp"][1]
        view["export"]["whispers"] = view["export"]["whispers"][:1]
    innocent_blocked["export"]["blocks"] = sender_blocked["export"]["blocks"]
    assert sender_blocked == innocent_blocked
    sender_blocked["export"]["blocks"] = untouched["export"]["blocks"]
    assert sender_blocked == untouched
    assert replies[0]["sendWhisper"]["errors"] == []
    assert replies[0] == replies[1] == replies[2]


STATES = (
    "reachable",
    "by_whisper",
    "blocks_recipient",
    "blocks_by_whisper",
    "blocked_by_recipient",
    "banned",
    "deleted",
)
DELIVERED = ("reachable", "by_whisper")


async def _put_in_state(app: Starlette, gql: GraphQLClient, state: str, s: dict, r: dict) -> None:
    sid, rid = s["me"]["id"], r["me"]["id"]
    if state == "blocks_recipient":
        await gql(BLOCK, {"id": rid}, token=s["accessToken"])
    elif state == "blocked_by_recipient":
        await gql(BLOCK, {"id": sid}, token=r["accessToken"])
    elif state == "by_whisper":  # the recipient blocked this sender through another whisper:
        # that stops the sender's whispers, not the recipient's replies
        other = await send_whisper(gql, s["accessToken"], recipientId=rid, content="more")
        await gql(BY_WHISPER, {"id": other["whisper"]["id"]}, token=r["accessToken"])
    elif state == "blocks_by_whisper":  # the sender blocked the recipient through a whisper
        other = await send_whisper(gql, r["accessToken"], recipientId=sid, content="hello")
        await gql(BY_WHISPER, {"id": other["whisper"]["id"]}, token=s["accessToken"])
    elif state == "banned":
        await sql(app, "UPDATE users SET status = 'banned' WHERE id = :s", s=sid)
    elif state == "deleted":
        assert (await gql("mutation { deleteAccount { ok } }", token=s["accessToken"])).errors == []


async def test_a_reply_is_answered_the_same_whatever_state_its_hidden_recipient_is_in(
    server: Any,
) -> None:
    """The replier gets one answer, one quota use and one outbox row whoever sent the whisper
    and whatever became of them; the reply reaches the sender only when they may receive it."""
    app, _, gql = server
    bob = await registered_user(gql, "bob")
    senders = {state: await registered_user(gql, f"s_{state}") for state in STATES}
    originals = {}
    for state, login in senders.items():
        sent = await send_whisper(
            gql, login["accessToken"], recipientId=bob["me"]["id"], content=state
        )
        originals[state] = sent["whisper"]["id"]
    for state, login in senders.items():
        await _put_in_state(app, gql, state, login, bob)

    answers, outbox = {}, {}
    for state, wid in originals.items():
        answer = await gql(
            REPLY, {"input": {"replyToId": wid, "content": "hi"}}, token=bob["accessToken"]
        )
        answers[state] = Normaliser([bob["me"]["id"]])(answer.data)
        assert answer.data["sendWhisper"]["errors"] == [], (state, answer.data)
    for state, answer in answers.items():
        assert answer == answers["reachable"], state
    sent = await gql(
        f"{{ whispersSent {{ edges {{ node {{ {WHISPER_FIELDS} }} }} }} }}",
        token=bob["accessToken"],
    )
    for edge in sent.data["whispersSent"]["edges"]:
        node = edge["node"]
        if node["replyTo"] is None:
            continue  # Bob's whisper of the blocks_by_whisper setup
        outbox[node["replyTo"]["id"]] = Normaliser([bob["me"]["id"]])(node)
    assert len(outbox) == len(STATES)
    assert len({json.dumps(v, sort_keys=True) for v in outbox.values()}) == 1
    quota = "{ me { quotas { kind used } } }"
    used = (await gql(quota, token=bob["accessToken"])).data["me"]["quotas"]
    assert {"kind": "WHISPER", "used": len(STATES) + 1} in used

    # Delivered only where the hidden sender may receive it.
    inbox = "{ whispersReceived { edges { node { content } } } }"
    for state in ("reachable", "by_whisper", "blocks_recipient", "blocks_by_whisper"):
        got = (await gql(inbox, token=senders[state]["accessToken"])).data
        contents = [e["node"]["content"] for e in got["whispersReceived"]["edges"]]
        assert ("hi" in contents) is (state in DELIVERED), (state, contents)
    withheld = await sql(app, "SELECT count(*) FROM whispers WHERE withheld")
    assert withheld == len(STATES) - len(DELIVERED)

    # The senders who got it read it: Bob's outbox does not change (a read receipt would tell
    # him which replies were delivered).
    unread = "{ whispersReceived(unreadOnly: true) { edges { node { id content } } } }"
    read = "mutation ($id: ID!) { markWhisperRead(id: $id) { errors { code } } }"
    for state in DELIVERED:
        token = senders[state]["accessToken"]
        for edge in (await gql(unread, token=token)).data["whispersReceived"]["edges"]:
            await gql(read, {"id": edge["node"]["id"]}, token=token)
    assert await sql(app, "SELECT count(*) FROM whispers WHERE read_at IS NOT NULL") >= 2
    again = await gql(
        f"{{ whispersSent {{ edges {{ node {{ {WHISPER_FIELDS} }} }} }} }}",
        token=bob["accessToken"],
    )
    assert again.data == sent.data


async def test_the_hidden_senders_deletion_leaves_the_reply_in_place(server: Any) -> None:
    """Deleting an account unlinks what it received instead of deleting it: the writer of a
    reply to an anonymous whisper would otherwise see it vanish when its hidden sender left."""
    _, _, gql = server
    alice, bob = [await registered_user(gql, n) for n in ("alice", "bob")]
    wid = (
        await send_whisper(gql, alice["accessToken"], recipientId=bob["me"]["id"], content="hi")
    )["whisper"]["id"]
    await send_whisper(gql, bob["accessToken"], replyToId=wid, content="who?")
    outbox = f"{{ whispersSent {{ edges {{ node {{ {WHISPER_FIELDS} }} }} }} }}"
    before = (await gql(outbox, token=bob["accessToken"])).data
    assert (await gql("mutation { deleteAccount { ok } }", token=alice["accessToken"])).errors == []
    assert (await gql(outbox, token=bob["accessToken"])).data == before


HIDDEN_WAYS = ("blocks_viewer", "hidden_profile", "held", "banned")
PATHS = """{
  whispersSent { edges { node { content recipient { id profile { nickname } } } } }
  whispersReceived { edges { node { content sender { id profile { nickname } } } } }
  matches { edges { node { user {
    id isPro profile { nickname } projects { edges { node { id } } }
  } } } }
  me { reports { edges { node { details reported { id profile { nickname } } } } } }
}"""
LIKE = "mutation ($id: ID!) { swipe(targetUserId: $id, action: LIKE) { errors { code } } }"


async def test_hidden_people_stay_hidden_on_every_path(server: Any) -> None:
    """Someone who blocked the viewer, hid their profile, is held or banned shows as `user(id)`
    shows them — as missing — on every path to a person: null where a user may be null, an id
    without profile, projects or membership where one must be given; also over MCP."""
    app, live, gql = server
    viewer = await registered_user(gql, "viewer")
    vid, token = viewer["me"]["id"], viewer["accessToken"]
    people = {way: await registered_user(gql, way) for way in HIDDEN_WAYS}
    for way, login in people.items():
        pid = login["me"]["id"]
        await gql(
            'mutation { addProject(input: {title: "p"}) { errors { code } } }',
            token=login["accessToken"],
        )
        await send_whisper(gql, token, recipientId=pid, content=f"to {way}", anonymous=False)
        await send_whisper(
            gql, login["accessToken"], recipientId=vid, content=f"from {way}", anonymous=False
        )
        await gql(LIKE, {"id": pid}, token=token)
        await gql(LIKE, {"id": vid}, token=login["accessToken"])
        filed = await gql(
            REPORT,
            {"input": {"reportedUserId": pid, "reason": "SPAM", "details": way}},
            token=token,
        )
        assert filed.data["reportUser"]["errors"] == []
    before = (await gql(PATHS, token=token)).data
    assert {
        "content": "to banned",
        "recipient": {"id": people["banned"]["me"]["id"], "profile": {"nickname": "banned"}},
    } in [e["node"] for e in before["whispersSent"]["edges"]]

    await gql(BLOCK, {"id": vid}, token=people["blocks_viewer"]["accessToken"])
    await gql(
        "mutation { updateProfile(input: {discoverable: false}) { errors { code } } }",
        token=people["hidden_profile"]["accessToken"],
    )
    await sql(
        app,
        "UPDATE users SET moderation_hold_at = now() WHERE id = :u",
        u=people["held"]["me"]["id"],
    )
    await sql(
        app, "UPDATE users SET status = 'banned' WHERE id = :u", u=people["banned"]["me"]["id"]
    )

    after = (await gql(PATHS, token=token)).data
    assert after is not None
    sent = {e["node"]["content"]: e["node"]["recipient"] for e in after["whispersSent"]["edges"]}
    assert all(sent[f"to {way}"] is None for way in HIDDEN_WAYS), sent
    got = {e["node"]["content"]: e["node"]["sender"] for e in after["whispersReceived"]["edges"]}
    # A known sender who blocked the viewer disappears with their whispers; the others stay,
    # without a sender.
    assert "from blocks_viewer" not in got
    assert all(got[f"from {way}"] is None for way in HIDDEN_WAYS[1:]), got
    matched = [e["node"]["user"] for e in after["matches"]["edges"]]
    assert matched and all(
        m["profile"] is None and m["projects"]["edges"] == [] and m["isPro"] is False
        for m in matched
    ), matched
    reported = [e["node"]["reported"] for e in after["me"]["reports"]["edges"]]
    assert {r["id"] for r in reported} == {p["me"]["id"] for p in people.values()}
    assert all(r["profile"] is None for r in reported), reported
    # reportUser's own answer, about someone who hides.
    again = await gql(
        REPORT,
        {"input": {"reportedUserId": people["held"]["me"]["id"], "reason": "SPAM"}},
        token=token,
    )
    assert again.data["reportUser"]["report"]["reported"] == {"id": people["held"]["me"]["id"]}
    nick = "{ whispersSent { edges { node { recipient { profile { nickname } } } } } }"
    assert "nickname" not in json.dumps((await gql(nick, token=token)).data)
    # MCP: the same rule.
    (listed,) = await mcp_calls(live, token, [("list_whispers", {"box": "sent"})])
    assert {w["content"]: w["recipientId"] for w in listed["whispers"]} == {
        f"to {way}": None for way in HIDDEN_WAYS
    }


async def test_block_and_report_work_against_someone_hiding(server: Any) -> None:
    """A harassed person can block and report someone who then blocked them, hid or left.
    The answers reveal nothing the caller did not know: every id that ever was an account
    answers ok, ids that never were (random, so never seen) NOT_FOUND."""
    _, _, gql = server
    victim, harasser, gone = [await registered_user(gql, n) for n in ("victim", "harasser", "gone")]
    await gql(BLOCK, {"id": victim["me"]["id"]}, token=harasser["accessToken"])
    await gql(
        "mutation { updateProfile(input: {discoverable: false}) { errors { code } } }",
        token=harasser["accessToken"],
    )
    assert (await gql("mutation { deleteAccount { ok } }", token=gone["accessToken"])).errors == []
    token = victim["accessToken"]
    for target in (harasser["me"]["id"], gone["me"]["id"]):
        blocked = await gql(BLOCK, {"id": target}, token=token)
        assert blocked.data["blockUser"] == {"ok": True, "errors": []}
        reported = await gql(
            REPORT, {"input": {"reportedUserId": target, "reason": "HARASSMENT"}}, token=token
        )
        assert reported.data["reportUser"]["errors"] == []
        assert reported.data["reportUser"]["report"]["reported"]["id"] == target
    for unknown in ("00000000-0000-4000-8000-000000000000", "nonsense"):
        blocked = await gql(BLOCK, {"id": unknown}, token=token)
        assert blocked.data["blockUser"]["errors"] == [
            {"code": "NOT_FOUND", "message": "No such user.", "field": "userId"}
        ]
        reported = await gql(
            REPORT, {"input": {"reportedUserId": unknown, "reason": "SPAM"}}, token=token
        )
        assert [e["code"] for e in reported.data["reportUser"]["errors"]] == ["NOT_FOUND"]


async def test_a_reply_runs_the_same_statements_whether_delivered_or_withheld(
    settings: Settings,
) -> None:
    """The timing class of a reply: the same SQL statements, in the same order, whether its
    hidden recipient may receive it or not (a withheld reply's wake-up names nobody)."""
    app = create_app(settings)
    async with running_app(app) as http:
        gql = GraphQLClient(http)
        bob, open_, closed = [await registered_user(gql, n) for n in ("bob", "open", "closed")]
        originals = {}
        for login in (open_, closed):
            sent = await send_whisper(
                gql, login["accessToken"], recipientId=bob["me"]["id"], content="hi"
            )
            originals[login["me"]["id"]] = sent["whisper"]["id"]
        await gql(BLOCK, {"id": bob["me"]["id"]}, token=closed["accessToken"])
        ran = []
        for login in (open_, closed):
            wid = originals[login["me"]["id"]]
            with count_statements(app.state.services.engine) as counter:
                answer = await gql(
                    REPLY,
                    {"input": {"replyToId": wid, "content": "who?"}},
                    token=bob["accessToken"],
                )
            assert answer.data["sendWhisper"]["errors"] == []
            ran.append(counter.statements)
        assert ran[0] == ran[1]
        assert any("pg_notify" in s for s in ran[0])
        withheld = await sql(app, "SELECT count(*) FROM whispers WHERE withheld")
        assert withheld == 1
