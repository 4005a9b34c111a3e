"""aiChat: the model calling tools against the real discovery search, conversations that
continue and expire, the answer without a model, metadata-only records, quota."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from starlette.applications import Starlette

from src.app import create_app
from src.config import Settings
from tests.ai_helpers import CHAT, SESSIONS, UPDATE, chat, indexed, populate
from tests.fakes.openai import FakeOpenAI
from tests.helpers import GraphQLClient, running_app, sql

World = tuple[Starlette, GraphQLClient, dict[str, str]]


async def _world(settings: Settings) -> AsyncIterator[World]:
    app = create_app(settings.model_copy(update={"vector_worker": True}))
    async with running_app(app) as http:
        gql = GraphQLClient(http)
        tokens = await populate(gql)
        await indexed(app)
        yield app, gql, tokens


@pytest.fixture
async def world(llm_settings: Settings) -> AsyncIterator[World]:
    async for w in _world(llm_settings):
        yield w


@pytest.fixture
async def offline(settings: Settings) -> AsyncIterator[World]:
    """No language model configured."""
    async for w in _world(settings):
        yield w


def tool_results(request: dict[str, Any]) -> list[Any]:
    return [orjson.loads(m["content"]) for m in request["messages"] if m["role"] == "tool"]


async def test_the_model_searches_people_through_a_tool(world: World, fake_llm: FakeOpenAI) -> None:
    app, gql, tokens = world
    fake_llm.tool_call("search_users", {"query": "someone who loves hiking in the mountains"})
    fake_llm.reply("pm_hiker loves hiking; you could whisper to them.", prompt_tokens=40)

    answer = await chat(gql, tokens["viewer"], "Who here likes hiking?")

    assert answer["errors"] == []
    assert answer["reply"] == "pm_hiker loves hiking; you could whisper to them."
    assert answer["usedModel"] == "fake-model-1"
    first, second = fake_llm.requests
    assert first["messages"][0]["role"] == "system"
    assert first["messages"][-1] == {"role": "user", "content": "Who here likes hiking?"}
    assert {t["function"]["name"] for t in first["tools"]} == {
        "search_users",
        "get_my_profile",
        "suggest_profile_improvements",
    }
    # The tool ran the real search: the hikers came back to the model, never the viewer.
    (result,) = tool_results(second)
    found = [p["nickname"] for p in result["people"]]
    # Both English hikers fit "hiking in the mountains"; which ranks first is the model's call.
    assert found[0] in ("pm_hiker", "climber") and "viewer" not in found
    assert set(result["people"][0]) >= {"id", "nickname", "city", "bio", "interests"}
    assert "birthDate" not in result["people"][0] and "phone" not in result["people"][0]
    row = await sql(
        app,
        "SELECT row_to_json(s)::text FROM ai_sessions s WHERE id = :id",
        id=uuid.UUID(answer["sessionId"]),
    )
    stored = orjson.loads(row)
    assert stored["kind"] == "chat" and stored["model"] == "fake-model-1"
    assert stored["prompt_tokens"] == 11 + 40 and stored["completion_tokens"] == 7 + 7


async def test_profile_tools_read_the_viewer_only(world: World, fake_llm: FakeOpenAI) -> None:
    _, gql, tokens = world
    fake_llm.tool_call("get_my_profile", {}, ("suggest_profile_improvements", {}))
    fake_llm.reply("Add a city and a longer bio.")
    answer = await chat(gql, tokens["designer"], "How can my profile be better?")
    assert answer["usedModel"] == "fake-model-1"
    profile, advice = tool_results(fake_llm.requests[1])
    assert profile["nickname"] == "designer" and profile["interests"] == ["摄影", "hiking"]
    fields = {s["field"] for s in advice["suggestions"]}
    assert {"lookingFor", "avatarUrl", "projects"} <= fields and "city" not in fields


async def test_a_conversation_continues_with_its_history(
    world: World, fake_llm: FakeOpenAI
) -> None:
    app, gql, tokens = world
    fake_llm.reply("Hello! Whom would you like to meet?")
    first = await chat(gql, tokens["viewer"], "Hi there")
    fake_llm.reply("Try searching for climbers.")
    second = await chat(gql, tokens["viewer"], "Someone outdoorsy", first["sessionId"])

    assert second["sessionId"] == first["sessionId"]
    sent = fake_llm.requests[-1]["messages"]
    assert [m["content"] for m in sent[1:]] == [
        "Hi there",
        "Hello! Whom would you like to meet?",
        "Someone outdoorsy",
    ]
    sessions = (await gql(SESSIONS, token=tokens["viewer"])).data["aiSessions"]
    assert [e["node"]["id"] for e in sessions["edges"]] == [first["sessionId"]]
    assert sessions["edges"][0]["node"]["promptTokens"] == 22
    ttl = await sql(
        app,
        "SELECT extract(epoch FROM expires_at - now()) FROM ai_chat_transcripts WHERE"
        " ai_session_id = :id",
        id=uuid.UUID(first["sessionId"]),
    )
    assert 1700 < ttl <= 1800


async def test_someone_elses_conversation_answers_as_a_missing_one(
    world: World, fake_llm: FakeOpenAI
) -> None:
    _, gql, tokens = world
    mine = await chat(gql, tokens["viewer"], "Hi")
    requests = len(fake_llm.requests)
    theirs = await chat(gql, tokens["climber"], "Hi", mine["sessionId"])
    missing = await chat(gql, tokens["climber"], "Hi", str(uuid.uuid4()))
    garbage = await chat(gql, tokens["climber"], "Hi", "not-an-id")
    assert theirs["errors"] == missing["errors"] == garbage["errors"]
    assert theirs["errors"][0]["code"] == "NOT_FOUND" and theirs["reply"] is None
    assert len(fake_llm.requests) == requests  # the model never saw the stolen history


async def test_an_expired_conversation_ends_and_its_text_is_purged(
    world: World, fake_llm: FakeOpenAI
) -> None:
    app, gql, tokens = world
    first = await chat(gql, tokens["viewer"], "Remember: my cat is called Mochi")
    await sql(app, "UPDATE ai_chat_transcripts SET expires_at = now() - interval '1 second'")
    again = await chat(gql, tokens["viewer"], "What is my cat called?", first["sessionId"])
    assert again["errors"][0]["code"] == "NOT_FOUND"
    assert "ended" in again["errors"][0]["message"]
    fresh = await chat(gql, tokens["viewer"], "Hello again")
    assert fresh["sessionId"] != first["sessionId"]
    left = await sql(
        app, "SELECT count(*) FROM ai_chat_transcripts WHERE messages::text LIKE '%Mochi%'"
    )
    assert left == 0


async def test_tool_rounds_are_bounded_and_bad_calls_go_back_to_the_model(
    llm_settings: Settings, fake_llm: FakeOpenAI
) -> None:
    app = create_app(llm_settings.model_copy(update={"ai_chat_max_rounds": 2}))
    async with running_app(app) as http:
        gql = GraphQLClient(http)
        tokens = await populate(gql)
        fake_llm.tool_call("no_such_tool", {})
        fake_llm.tool_call("search_users", {"wrong": 1})
        fake_llm.reply("Sorry, I could not search just now.")
        answer = await chat(gql, tokens["viewer"], "find someone")
    assert answer["reply"] == "Sorry, I could not search just now."
    assert len(fake_llm.requests) == 3
    assert "tools" not in fake_llm.requests[-1]  # the last round must answer
    errors = tool_results(fake_llm.requests[-1])
    assert errors == [{"error": "no such tool"}, {"error": "query must be a non-empty string"}]


async def test_without_a_model_chat_answers_from_search_and_rules(offline: World) -> None:
    app, gql, tokens = offline
    answer = await chat(gql, tokens["viewer"], "people who love hiking and mountains")
    assert answer["usedModel"] is None and answer["errors"] == []
    reply = answer["reply"]
    assert reply.startswith("No language model is configured, so none was used.")
    lines = reply.splitlines()
    assert lines[2] in (
        "1. pm_hiker (Shanghai — hiking, product)",
        "1. climber (Hangzhou — Hiking, climbing, 摄影)",
    )
    assert "To improve your profile:" in lines
    assert any(line.startswith("- bio: ") for line in lines)
    row = orjson.loads(
        await sql(app, "SELECT row_to_json(s)::text FROM ai_sessions s WHERE kind = 'chat'")
    )
    assert row["model"] is None and row["prompt_tokens"] == 0
    # Nothing to remember without a model; the conversation still continues by id.
    again = await chat(gql, tokens["viewer"], "climbers", answer["sessionId"])
    assert again["sessionId"] == answer["sessionId"]
    assert await sql(app, "SELECT messages::text FROM ai_chat_transcripts") == "[]"


async def test_without_a_model_chat_answers_in_the_language_of_the_message(
    offline: World,
) -> None:
    _, gql, tokens = offline
    await gql(UPDATE, {"i": {"bio": "产品经理，周末爬山"}}, token=tokens["viewer"])
    answer = await chat(gql, tokens["viewer"], "喜欢拍照的人")
    lines = answer["reply"].splitlines()
    assert lines[0] == "没有配置语言模型，所以这次没有用到模型。这条回答只来自搜索和资料规则。"
    assert lines[1] == "和“喜欢拍照的人”相符的人："
    assert lines[2].startswith("1. designer（北京 — 摄影、hiking）"), lines
    assert "完善资料的建议：" in lines
    assert any(line.startswith("- interests: 至少填 3 个兴趣") for line in lines), lines
    # An English message to the same viewer is answered in English.
    english = await chat(gql, tokens["viewer"], "photographers")
    assert english["reply"].startswith("No language model is configured")


async def test_a_failing_model_falls_back_and_says_so(world: World, fake_llm: FakeOpenAI) -> None:
    _, gql, tokens = world
    fake_llm.fail(400)
    answer = await chat(gql, tokens["viewer"], "hiking friends")
    assert answer["usedModel"] is None
    assert answer["reply"].startswith("The language model could not answer just now")
    assert "pm_hiker" in answer["reply"]


async def test_ai_sessions_rows_never_hold_the_text(world: World, fake_llm: FakeOpenAI) -> None:
    app, gql, tokens = world
    fake_llm.tool_call("search_users", {"query": "ZEBRA-QUERY-17"})
    fake_llm.reply("REPLY-SECRET-99 about pm_hiker")
    answer = await chat(gql, tokens["viewer"], "PROMPT-SECRET-42 hiking")
    await gql(
        "mutation ($p: String!) { aiSearch(prompt: $p) { errors { code } } }",
        {"p": "SEARCH-SECRET-7"},
        token=tokens["viewer"],
    )
    assert answer["reply"].startswith("REPLY-SECRET-99")
    columns = await sql(
        app,
        "SELECT string_agg(column_name, ',') FROM information_schema.columns"
        " WHERE table_name = 'ai_sessions'",
    )
    assert set(columns.split(",")) == {
        "id",
        "user_id",
        "kind",
        "latency_ms",
        "prompt_tokens",
        "completion_tokens",
        "model",
        "created_at",
    }
    dump = await sql(app, "SELECT json_agg(s)::text FROM ai_sessions s")
    assert orjson.loads(dump) and len(orjson.loads(dump)) == 2
    for secret in ("PROMPT-SECRET", "REPLY-SECRET", "ZEBRA-QUERY", "SEARCH-SECRET", "pm_hiker"):
        assert secret not in dump
    # The turns live only in the transcript, which keeps words, not tool results.
    kept = await sql(app, "SELECT messages::text FROM ai_chat_transcripts")
    assert "PROMPT-SECRET-42" in kept and "ZEBRA-QUERY" not in kept


async def test_delete_account_erases_chats(world: World, fake_llm: FakeOpenAI) -> None:
    app, gql, tokens = world
    await chat(gql, tokens["viewer"], "hello")
    response = await gql("mutation { deleteAccount { ok } }", token=tokens["viewer"])
    assert response.data["deleteAccount"]["ok"] is True
    assert await sql(app, "SELECT count(*) FROM ai_chat_transcripts") == 0
    assert await sql(app, "SELECT count(*) FROM ai_sessions") == 0


async def test_quota_exhaustion_stops_chat_before_the_model(
    llm_settings: Settings, fake_llm: FakeOpenAI
) -> None:
    limits = {"BASIC": {"AI_REQUEST": 2}, "PRO": {"AI_REQUEST": 2}}
    app = create_app(llm_settings.model_copy(update={"quota_limits": limits}))
    async with running_app(app) as http:
        gql = GraphQLClient(http)
        tokens = await populate(gql)
        for _ in range(2):
            assert (await chat(gql, tokens["viewer"], "hi"))["errors"] == []
        response = await gql(CHAT, {"m": "hi", "s": None}, token=tokens["viewer"])
        payload = response.data["aiChat"]
        assert payload["errors"][0]["code"] == "QUOTA_EXCEEDED" and payload["reply"] is None
        assert len(fake_llm.requests) == 2
        assert await sql(app, "SELECT count(*) FROM ai_sessions") == 2


async def test_a_message_is_validated(world: World, fake_llm: FakeOpenAI) -> None:
    _, gql, tokens = world
    for message in ("   ", "x" * 1001):
        answer = await chat(gql, tokens["viewer"], message)
        assert answer["errors"][0]["code"] == "INVALID_INPUT"
        assert answer["errors"][0]["field"] == "message"
    assert fake_llm.requests == []
