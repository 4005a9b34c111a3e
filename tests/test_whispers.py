"""Whispers: validation, replies, reveal, read, quotas, idempotency, and blocks."""

from __future__ import annotations

import asyncio

import pytest
from starlette.applications import Starlette

from src.app import create_app
from src.config import Settings
from tests.helpers import GraphQLClient, dev_login, registered_user, running_app, send_whisper, sql

INBOX = """query ($unread: Boolean) { whispersReceived(unreadOnly: $unread) {
  edges { cursor node { id content sender { id } isMine readAt } } } }"""
OUTBOX = "{ whispersSent { edges { node { id recipient { id } isMine } } } }"
ONE = "query ($id: ID!) { whisper(id: $id) { id content sender { id } } }"
REVEAL = """mutation ($id: ID!) {
  revealWhisper(id: $id) { whisper { sender { id } revealedAt } errors { code field } }
}"""
READ = (
    "mutation ($id: ID!) { markWhisperRead(id: $id) { whisper { readAt } errors { code field } } }"
)


def codes(payload: dict) -> list[tuple[str, str | None]]:
    return [(e["code"], e["field"]) for e in payload["errors"]]


async def three(gql: GraphQLClient) -> tuple[dict, dict, dict]:
    return (
        await registered_user(gql, "alice"),
        await registered_user(gql, "bob"),
        await registered_user(gql, "carol"),
    )


async def test_anonymous_whisper_hides_its_sender_from_the_recipient(gql: GraphQLClient) -> None:
    alice, bob, _ = await three(gql)
    sent = await send_whisper(
        gql, alice["accessToken"], recipientId=bob["me"]["id"], content=" 你好 "
    )
    assert sent["errors"] == []
    assert sent["whisper"]["content"] == "你好"
    assert sent["whisper"]["isAnonymous"] is True
    assert sent["whisper"]["sender"] == {"id": alice["me"]["id"]}  # the sender sees themselves
    inbox = (await gql(INBOX, token=bob["accessToken"])).data["whispersReceived"]["edges"]
    assert [e["node"]["sender"] for e in inbox] == [None]
    assert inbox[0]["node"]["isMine"] is False
    outbox = (await gql(OUTBOX, token=alice["accessToken"])).data["whispersSent"]["edges"]
    assert outbox[0]["node"]["recipient"] == {"id": bob["me"]["id"]}


@pytest.mark.parametrize(
    ("content", "field"), [("", "content"), ("   ", "content"), ("x" * 501, "content")]
)
async def test_content_rules(gql: GraphQLClient, content: str, field: str) -> None:
    alice, bob, _ = await three(gql)
    sent = await send_whisper(
        gql, alice["accessToken"], recipientId=bob["me"]["id"], content=content
    )
    assert codes(sent) == [("INVALID_INPUT", field)]


async def test_unreachable_recipients_get_one_answer(app: Starlette, http) -> None:  # type: ignore[no-untyped-def]
    gql = GraphQLClient(http)
    alice, bob, carol = await three(gql)
    banned = await registered_user(gql, "banned")
    await sql(app, "UPDATE users SET status = 'banned' WHERE id = :i", i=banned["me"]["id"])
    unregistered = await dev_login(gql, "unregistered")
    await gql(
        "mutation ($id: ID!) { blockUser(userId: $id) { ok } }",
        {"id": alice["me"]["id"]},
        token=carol["accessToken"],
    )
    targets = [
        alice["me"]["id"],
        carol["me"]["id"],
        banned["me"]["id"],
        unregistered["me"]["id"],
        "00000000-0000-4000-8000-000000000000",
        "nonsense",
    ]
    answers = [
        (await send_whisper(gql, alice["accessToken"], recipientId=t, content="hi"))["errors"]
        for t in targets
    ]
    assert all(a == answers[-2] for a in answers[:-1])  # same code, message and field
    assert answers[-2] == [
        {"code": "NOT_FOUND", "message": answers[-2][0]["message"], "field": "recipientId"}
    ]
    newcomer = await send_whisper(
        gql, unregistered["accessToken"], recipientId=bob["me"]["id"], content="hi"
    )
    assert codes(newcomer) == [("REGISTRATION_REQUIRED", None)]


async def test_reply_reaches_the_anonymous_sender_without_revealing_them(
    gql: GraphQLClient,
) -> None:
    alice, bob, carol = await three(gql)
    first = await send_whisper(
        gql, alice["accessToken"], recipientId=bob["me"]["id"], content="猜猜我是谁"
    )
    reply = await send_whisper(
        gql, bob["accessToken"], replyToId=first["whisper"]["id"], content="谁呀？"
    )
    assert reply["errors"] == []
    assert reply["whisper"]["recipient"] is None  # replying never reveals who it goes to
    alice_inbox = (await gql(INBOX, token=alice["accessToken"])).data["whispersReceived"]["edges"]
    assert [e["node"]["content"] for e in alice_inbox] == ["谁呀？"]
    # Replying to a whisper one did not receive, or naming a recipient too, fails plainly.
    stolen = await send_whisper(
        gql, carol["accessToken"], replyToId=first["whisper"]["id"], content="x"
    )
    assert codes(stolen) == [("NOT_FOUND", "replyToId")]
    both = await send_whisper(
        gql,
        bob["accessToken"],
        replyToId=first["whisper"]["id"],
        recipientId=alice["me"]["id"],
        content="x",
    )
    wrong_guess = await send_whisper(
        gql,
        bob["accessToken"],
        replyToId=first["whisper"]["id"],
        recipientId=carol["me"]["id"],
        content="x",
    )
    assert both["errors"] == wrong_guess["errors"]  # naming a guess tells nothing
    assert codes(both) == [("INVALID_INPUT", "recipientId")]


async def test_reveal_and_read_belong_to_sender_and_recipient(gql: GraphQLClient) -> None:
    alice, bob, carol = await three(gql)
    wid = (
        await send_whisper(gql, alice["accessToken"], recipientId=bob["me"]["id"], content="hi")
    )["whisper"]["id"]
    for token in (bob["accessToken"], carol["accessToken"]):
        assert (await gql(REVEAL, {"id": wid}, token=token)).data["revealWhisper"]["errors"] == [
            {"code": "NOT_FOUND", "field": "id"}
        ]
    for token in (alice["accessToken"], carol["accessToken"]):
        assert (await gql(READ, {"id": wid}, token=token)).data["markWhisperRead"]["errors"] == [
            {"code": "NOT_FOUND", "field": "id"}
        ]
    assert (await gql(ONE, {"id": wid}, token=carol["accessToken"])).data == {"whisper": None}
    unread = (await gql(INBOX, {"unread": True}, token=bob["accessToken"])).data[
        "whispersReceived"
    ]["edges"]
    assert len(unread) == 1
    read = (await gql(READ, {"id": wid}, token=bob["accessToken"])).data["markWhisperRead"]
    assert read["whisper"]["readAt"]
    assert (await gql(INBOX, {"unread": True}, token=bob["accessToken"])).data["whispersReceived"][
        "edges"
    ] == []
    revealed = (await gql(REVEAL, {"id": wid}, token=alice["accessToken"])).data["revealWhisper"]
    assert revealed["errors"] == [] and revealed["whisper"]["revealedAt"]
    seen = (await gql(ONE, {"id": wid}, token=bob["accessToken"])).data["whisper"]
    assert seen["sender"] == {"id": alice["me"]["id"]}


async def test_blocking_stops_new_whispers_and_hides_only_known_senders(
    gql: GraphQLClient,
) -> None:
    """A block acts when a whisper is sent. Of what Bob already received, it hides what he
    knows to be Alice's; her anonymous whisper stays — hiding it would tell him it was hers."""
    alice, bob, _ = await three(gql)
    await send_whisper(gql, alice["accessToken"], recipientId=bob["me"]["id"], content="anon")
    await send_whisper(
        gql, alice["accessToken"], recipientId=bob["me"]["id"], content="named", anonymous=False
    )
    await gql(
        "mutation ($id: ID!) { blockUser(userId: $id) { ok } }",
        {"id": alice["me"]["id"]},
        token=bob["accessToken"],
    )
    inbox = (await gql(INBOX, token=bob["accessToken"])).data["whispersReceived"]["edges"]
    assert [e["node"]["content"] for e in inbox] == ["anon"]
    again = await send_whisper(gql, alice["accessToken"], recipientId=bob["me"]["id"], content="hi")
    assert codes(again) == [("NOT_FOUND", "recipientId")]


async def test_daily_quota_and_the_fifty_way_race(settings: Settings) -> None:
    roomy = settings.model_copy(update={"rate_limits": {"whisper:user": (1000, 60)}})
    app = create_app(roomy)
    async with running_app(app) as http:
        gql = GraphQLClient(http)
        alice, bob, _ = await three(gql)
        results = await asyncio.gather(
            *(
                send_whisper(
                    gql, alice["accessToken"], recipientId=bob["me"]["id"], content=f"#{i}"
                )
                for i in range(50)
            )
        )
        stored = await sql(app, "SELECT count(*) FROM whispers")
        used = await sql(app, "SELECT used FROM user_quotas WHERE kind = 'WHISPER'")
    outcomes = [r["errors"][0]["code"] if r["errors"] else "OK" for r in results]
    assert outcomes.count("OK") == 10
    assert outcomes.count("QUOTA_EXCEEDED") == 40
    assert (stored, used) == (10, 10)


async def test_same_idempotency_key_twenty_times_at_once(app: Starlette, http) -> None:  # type: ignore[no-untyped-def]
    gql = GraphQLClient(http)
    alice, bob, _ = await three(gql)
    results = await asyncio.gather(
        *(
            send_whisper(
                gql,
                alice["accessToken"],
                recipientId=bob["me"]["id"],
                content="once",
                idempotencyKey="client-key-1",
            )
            for _ in range(20)
        )
    )
    assert all(r == results[0] for r in results)
    assert results[0]["errors"] == []
    assert await sql(app, "SELECT count(*) FROM whispers") == 1
    assert await sql(app, "SELECT used FROM user_quotas WHERE kind = 'WHISPER'") == 1
