"""Anonymity: no path leads from an anonymous, unrevealed whisper to its sender (SECURITY.md 11).

The query below is generated from the schema: every field of every type reachable from
`Whisper`, a few levels deep, so a field added later is tried automatically."""

from __future__ import annotations

import json

import pytest
from graphql import GraphQLList, GraphQLNonNull, GraphQLObjectType

from src.config import Settings
from src.schema import schema
from tests.helpers import GraphQLClient, registered_user, send_whisper


def selection(type_name: str, depth: int) -> str:
    graphql_type = schema._schema.type_map[type_name]
    assert isinstance(graphql_type, GraphQLObjectType)
    parts = []
    for name, field in graphql_type.fields.items():
        inner = field.type
        while isinstance(inner, GraphQLNonNull | GraphQLList):
            inner = inner.of_type
        args = "(first: 2)" if "first" in field.args else ""
        if isinstance(inner, GraphQLObjectType):
            if depth > 0:
                parts.append(f"{name}{args} {{ {selection(inner.name, depth - 1)} }}")
        else:
            parts.append(name)
    parts.append("__typename")
    return " ".join(parts)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The query below asks for everything reachable from a whisper, on purpose: far over the
    # cost budget meant for clients (SECURITY.md 3), which is not what this file is about.
    return settings.model_copy(update={"max_query_cost": 1_000_000})


WHISPER = selection("Whisper", 5)
EVERYWHERE = f"""query ($id: ID!) {{
  whispersReceived(first: 50) {{ edges {{ cursor node {{ {WHISPER} }} }} pageInfo {{ endCursor }} }}
  whispersSent(first: 50) {{ edges {{ cursor node {{ {WHISPER} }} }} }}
  whisper(id: $id) {{ {WHISPER} }}
}}"""


async def test_no_surface_reveals_an_anonymous_sender(gql: GraphQLClient) -> None:
    alice = await registered_user(gql, "alice", birthDate="1995-01-01")  # the secret sender
    bob = await registered_user(gql, "bob")
    a, b = alice["accessToken"], bob["accessToken"]
    secret_id = alice["me"]["id"]

    first = await send_whisper(gql, a, recipientId=bob["me"]["id"], content="guess who")
    reply = await send_whisper(gql, b, replyToId=first["whisper"]["id"], content="who?")
    again = await send_whisper(gql, a, replyToId=reply["whisper"]["id"], content="not telling")
    assert [first["errors"], reply["errors"], again["errors"]] == [[], [], []]

    for wid in (first["whisper"]["id"], reply["whisper"]["id"], again["whisper"]["id"]):
        seen = await gql(EVERYWHERE, {"id": wid}, token=b)
        assert seen.errors == []
        text = json.dumps(seen.data, ensure_ascii=False)
        assert secret_id not in text
        assert "alice" not in text  # nickname

    # Replies say nothing about who is behind the whisper, blocked or not: after Alice blocks
    # Bob, his reply is answered exactly as before (and withheld from her, unknown to him).
    before = await send_whisper(gql, b, replyToId=first["whisper"]["id"], content="hello?")
    await gql(
        "mutation ($id: ID!) { blockUser(userId: $id) { ok } }", {"id": bob["me"]["id"]}, token=a
    )
    blocked = await send_whisper(gql, b, replyToId=first["whisper"]["id"], content="hello?")
    assert secret_id not in json.dumps(before) + json.dumps(blocked)
    assert "alice" not in json.dumps(blocked, ensure_ascii=False)
    assert blocked["errors"] == before["errors"] == []
    assert {**blocked["whisper"], "id": None} == {**before["whisper"], "id": None}

    # Bob's own export holds no trace of her either.
    exported = await gql("mutation { exportMyData { json } }", token=b)
    assert secret_id not in exported.data["exportMyData"]["json"]


async def test_revealing_makes_the_sender_visible_only_then(gql: GraphQLClient) -> None:
    alice = await registered_user(gql, "alice")
    bob = await registered_user(gql, "bob")
    sent = await send_whisper(gql, alice["accessToken"], recipientId=bob["me"]["id"], content="hi")
    query = "query ($id: ID!) { whisper(id: $id) { sender { id profile { nickname } } } }"
    hidden = await gql(query, {"id": sent["whisper"]["id"]}, token=bob["accessToken"])
    assert hidden.data == {"whisper": {"sender": None}}
    await gql(
        "mutation ($id: ID!) { revealWhisper(id: $id) { errors { code } } }",
        {"id": sent["whisper"]["id"]},
        token=alice["accessToken"],
    )
    shown = await gql(query, {"id": sent["whisper"]["id"]}, token=bob["accessToken"])
    assert shown.data == {
        "whisper": {"sender": {"id": alice["me"]["id"], "profile": {"nickname": "alice"}}}
    }
