"""Metered use is recorded whatever the rest of the operation does (SECURITY.md 33; issue 16,
M2). A field that fails rolls the operation's transaction back while GraphQL still returns the
fields that succeeded: quota use and AI audit rows commit on their own, first."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from starlette.applications import Starlette

from src.app import create_app
from src.config import Settings
from tests.ai_helpers import SESSIONS
from tests.fakes.openai import FakeOpenAI
from tests.helpers import GraphQLClient, registered_user, running_app

# The documents: metered fields next to one that fails (a garbage cursor; a moderator
# operation), so that the whole operation rolls back.
QUERY = """{
  discover(prompt: "hiking", first: 3) { edges { node { user { id } } } }
  profileSuggestions { field }
  me { projects(after: "garbage") { edges { cursor } } }
}"""
MUTATION = """mutation {
  aiChat(message: "who likes hiking?") { reply sessionId errors { code } }
  resolveReport(input: {reportId: "00000000-0000-4000-8000-000000000000", status: RESOLVED,
                        action: NONE}) { errors { code } }
}"""
QUOTAS = "{ me { quotas { kind used } } }"


@pytest.fixture
async def gql(llm_settings: Settings) -> AsyncIterator[GraphQLClient]:
    """A language model configured: each metered AI field is a paid call."""
    app: Starlette = create_app(llm_settings)
    async with running_app(app) as http:
        yield GraphQLClient(http)


async def used(gql: GraphQLClient, token: str) -> dict[str, int]:
    response = await gql(QUOTAS, token=token)
    return {q["kind"]: q["used"] for q in response.data["me"]["quotas"]}


async def test_a_failing_field_does_not_undo_the_quota_of_the_others(
    gql: GraphQLClient, fake_llm: FakeOpenAI
) -> None:
    token = (await registered_user(gql, "skipper"))["accessToken"]
    for _ in range(3):
        response = await gql(QUERY, token=token)
        assert response.data is not None and response.data["discover"] is not None
        assert response.data["profileSuggestions"] is not None  # the paid answer went out
        assert response.error_codes == ["BAD_USER_INPUT"]  # the cursor: rolled back
    assert len(fake_llm.requests) == 3
    assert await used(gql, token) == {
        "WHISPER": 0,
        "SWIPE": 0,
        "AI_REQUEST": 3,
        "DISCOVERY": 3,
    }
    sessions = (await gql(SESSIONS, token=token)).data["aiSessions"]["edges"]
    assert [e["node"]["kind"] for e in sessions] == ["suggestions"] * 3


async def test_a_failing_mutation_field_does_not_undo_the_chats_quota(
    gql: GraphQLClient, fake_llm: FakeOpenAI
) -> None:
    token = (await registered_user(gql, "chatter"))["accessToken"]
    for _ in range(2):
        fake_llm.reply("Ask pm_hiker.", prompt_tokens=30, completion_tokens=5)
        response = await gql(MUTATION, token=token)
        assert response.error_codes == ["FORBIDDEN"]  # after the chat ran: rolled back
    assert len(fake_llm.requests) == 2
    assert (await used(gql, token))["AI_REQUEST"] == 2
    sessions = (await gql(SESSIONS, token=token)).data["aiSessions"]["edges"]
    assert [(e["node"]["kind"], e["node"]["promptTokens"]) for e in sessions] == [("chat", 30)] * 2


async def test_the_quota_still_ends_the_metered_work(settings: Settings) -> None:
    """Recorded apart, the limit still holds, rolled-back use included."""
    limits = {"BASIC": {**settings.quota_limits["BASIC"], "AI_REQUEST": 3}}
    async with running_app(
        create_app(settings.model_copy(update={"quota_limits": limits}))
    ) as http:
        gql = GraphQLClient(http)
        token = (await registered_user(gql, "greedy"))["accessToken"]
        rolled_back = await gql(QUERY, token=token)
        codes = []
        for _ in range(3):
            response = await gql("{ profileSuggestions { field } }", token=token)
            codes.append(response.error_codes[0] if response.errors else "OK")
    assert rolled_back.error_codes == ["BAD_USER_INPUT"]
    assert codes == ["OK", "OK", "QUOTA_EXCEEDED"]
