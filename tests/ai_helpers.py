"""A small world of registered people with indexed profiles, for the AI workflow tests."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from starlette.applications import Starlette

from tests.helpers import GraphQLClient, registered_user, sql

UPDATE = "mutation ($i: ProfileInput!) { updateProfile(input: $i) { errors { code field } } }"
CHAT = """mutation ($m: String!, $s: ID) {
  aiChat(message: $m, sessionId: $s) { reply sessionId usedModel errors { code message field } }
}"""
SUGGESTIONS = "{ profileSuggestions { field suggestion reason model } }"
SESSIONS = """query ($first: Int, $after: String) { aiSessions(first: $first, after: $after) {
  edges { cursor node { id kind createdAt latencyMs model promptTokens completionTokens } }
  pageInfo { hasNextPage endCursor } } }"""

PEOPLE: dict[str, dict[str, Any]] = {
    "pm_hiker": {
        "bio": "Product manager at a fintech startup. I love hiking and mountains.",
        "interests": ["hiking", "product"],
        "city": "Shanghai",
    },
    "designer": {
        "bio": "平面设计师，平时喜欢摄影，周末扫街拍照。",
        "interests": ["摄影", "hiking"],
        "city": "北京",
    },
    "climber": {
        "bio": "Rock climber and trail runner; weekends in the hills.",
        "interests": ["Hiking", "climbing", "摄影"],
        "city": "Hangzhou",
    },
}


async def populate(gql: GraphQLClient) -> dict[str, str]:
    """Register `viewer` and PEOPLE (with their profiles); their access tokens by name."""
    tokens = {"viewer": (await registered_user(gql, "viewer"))["accessToken"]}
    for name, profile in PEOPLE.items():
        tokens[name] = (await registered_user(gql, name))["accessToken"]
        response = await gql(UPDATE, {"i": profile}, token=tokens[name])
        assert response.data["updateProfile"]["errors"] == []
    return tokens


async def indexed(app: Starlette, within: float = 60) -> None:
    """Wait until the outbox worker has indexed every change."""
    deadline = time.monotonic() + within
    while await sql(app, "SELECT count(*) FROM vector_outbox"):
        assert time.monotonic() < deadline, "the outbox did not drain"
        await asyncio.sleep(0.1)


async def chat(
    gql: GraphQLClient, token: str, message: str, session_id: str | None = None
) -> dict[str, Any]:
    response = await gql(CHAT, {"m": message, "s": session_id}, token=token)
    assert response.errors == [], response.errors
    return response.data["aiChat"]
