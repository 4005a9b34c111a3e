"""graphql-transport-ws: every refused `subscribe` is an `error` message with GraphQL errors
(not a bare `complete`, not a closed socket), and nothing reaches the log as a traceback."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from tests.helpers import GraphQLClient, WsClient, dev_login, live_server, send_whisper

RECEIVED = "subscription { whisperReceived { id content } }"
LONG = "subscription { " + " ".join(["__typename"] * 2100) + " }"

REFUSED: list[tuple[str, dict[str, Any], str]] = [
    ("syntax", {"query": "subscription { whisperReceived { id "}, "GRAPHQL_PARSE_FAILED"),
    ("token limit", {"query": LONG}, "GRAPHQL_PARSE_FAILED"),
    ("validation", {"query": "subscription { nope }"}, "GRAPHQL_VALIDATION_FAILED"),
    (
        "two operations, no name",
        {"query": RECEIVED + " subscription B { matchCreated { id } }"},
        "OPERATION_NAME_REQUIRED",
    ),
    ("unknown name", {"query": RECEIVED, "operationName": "X"}, "OPERATION_NOT_FOUND"),
    ("variables a list", {"query": RECEIVED, "variables": [1]}, "BAD_REQUEST"),
    ("variables a string", {"query": RECEIVED, "variables": "{}"}, "BAD_REQUEST"),
    ("query not a string", {"query": 7}, "BAD_REQUEST"),
    ("operationName not a string", {"query": RECEIVED, "operationName": 1}, "BAD_REQUEST"),
    (
        "variable of the wrong type",
        {
            "query": "subscription ($a: String) { whisperReceived(after: $a) { id } }",
            "variables": {"a": 5},
        },
        "GRAPHQL_VALIDATION_FAILED",
    ),
]


async def test_refused_subscribes_get_error_messages(
    app: Starlette, caplog: pytest.LogCaptureFixture
) -> None:
    async with live_server(app) as server, httpx.AsyncClient(base_url=server.url) as http:
        gql = GraphQLClient(http)
        bob = await dev_login(gql, "bob")
        alice = await dev_login(gql, "alice")
        with caplog.at_level(logging.INFO):
            async with WsClient.connect(server, bob["accessToken"]) as ws:
                for index, (name, payload, code) in enumerate(REFUSED):
                    op = f"r{index}"
                    await ws.ws.send(
                        json.dumps({"id": op, "type": "subscribe", "payload": payload})
                    )
                    message = await ws.next()
                    assert message["type"] == "error", (name, message)
                    assert message["id"] == op
                    errors = message["payload"]
                    assert isinstance(errors, list) and errors, (name, message)
                    assert errors[0]["extensions"]["code"] == code, (name, errors)
                    assert errors[0]["message"]
                # The socket is still open and serves a good subscription afterwards.
                await ws.subscribe("ok", RECEIVED)
                await send_registered_whisper(gql, alice, bob)
                event = await ws.next()
                assert event["type"] == "next" and event["id"] == "ok", event
        noisy = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
        assert noisy == [], [r.getMessage() for r in noisy]


async def send_registered_whisper(
    gql: GraphQLClient, sender: dict[str, Any], recipient: dict[str, Any]
) -> None:
    for who in (sender, recipient):
        response = await gql(
            'mutation { register(input: {acceptedPolicyVersion: "2026-11", nickname: "x"}) '
            "{ errors { code } } }",
            token=who["accessToken"],
        )
        assert response.errors == []
    await send_whisper(gql, sender["accessToken"], recipientId=recipient["me"]["id"], content="hi")
