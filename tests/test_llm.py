"""The language-model client against a fake OpenAI-compatible server on 127.0.0.1: answers,
tool calls, token counts, streaming, bounded retries, timeouts, and the key kept secret."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

import orjson
import pytest

from src.ai.llm import LLMClient, LLMError, StreamEvent
from src.config import Settings
from tests.fakes.openai import FakeOpenAI
from tests.helpers import free_port, live_server

HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    fake = FakeOpenAI()
    async with live_server(fake.app()) as server:
        fake.url = server.url
        yield fake


@pytest.fixture
async def llm(fake: FakeOpenAI) -> AsyncIterator[LLMClient]:
    client = LLMClient(
        base_url=fake.base_url,
        model="fake-model-1",
        api_key=fake.api_key,
        timeout_s=1.0,
        retries=2,
        backoff_s=0.01,
    )
    yield client
    await client.aclose()


async def test_answer_with_token_counts(fake: FakeOpenAI, llm: LLMClient) -> None:
    fake.reply("你好！", prompt_tokens=21, completion_tokens=3)
    answer = await llm.complete(HELLO, temperature=0.2)
    assert answer.content == "你好！"
    assert answer.tool_calls == []
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (21, 3)
    assert answer.model == "fake-model-1"
    sent = fake.requests[-1]
    assert sent["model"] == "fake-model-1"
    assert sent["messages"] == HELLO
    assert sent["temperature"] == 0.2
    assert "tools" not in sent and "stream" not in sent


async def test_tool_calls_are_offered_and_returned(fake: FakeOpenAI, llm: LLMClient) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "search_users",
                "description": "Find people.",
                "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
            },
        }
    ]
    fake.tool_call("search_users", {"query": "hikers"})
    answer = await llm.complete(HELLO, tools=tools)
    assert [(c.name, orjson.loads(c.arguments)) for c in answer.tool_calls] == [
        ("search_users", {"query": "hikers"})
    ]
    assert fake.requests[-1]["tools"] == tools
    assert answer.as_message()["tool_calls"][0]["function"]["name"] == "search_users"


async def test_streaming_text_and_tool_calls(fake: FakeOpenAI, llm: LLMClient) -> None:
    fake.reply("streamed answer text", prompt_tokens=5, completion_tokens=4)
    events: list[StreamEvent] = [e async for e in llm.stream(HELLO)]
    pieces = [e.text for e in events if e.text]
    assert len(pieces) > 1 and "".join(pieces) == "streamed answer text"
    done = events[-1].done
    assert done is not None and done.content == "streamed answer text"
    assert (done.usage.prompt_tokens, done.usage.completion_tokens) == (5, 4)
    assert fake.requests[-1]["stream"] is True

    fake.tool_call("get_my_profile", {}, ("search_users", {"query": "摄影"}))
    events = [e async for e in llm.stream(HELLO)]
    done = events[-1].done
    assert done is not None
    assert [(c.name, orjson.loads(c.arguments)) for c in done.tool_calls] == [
        ("get_my_profile", {}),
        ("search_users", {"query": "摄影"}),
    ]


async def test_server_errors_are_retried_then_succeed(fake: FakeOpenAI, llm: LLMClient) -> None:
    fake.fail(500)
    fake.fail(503)
    fake.reply("third time lucky")
    assert (await llm.complete(HELLO)).content == "third time lucky"
    assert len(fake.requests) == 3


async def test_rate_limited_is_retried_after_retry_after(fake: FakeOpenAI, llm: LLMClient) -> None:
    fake.fail(429, retry_after="0.2")
    fake.reply("ok")
    started = time.monotonic()
    assert (await llm.complete(HELLO)).content == "ok"
    assert time.monotonic() - started >= 0.2
    assert len(fake.requests) == 2


async def test_retries_are_bounded(fake: FakeOpenAI, llm: LLMClient) -> None:
    for _ in range(5):
        fake.fail(502)
    with pytest.raises(LLMError) as caught:
        await llm.complete(HELLO)
    assert caught.value.status == 502
    assert len(fake.requests) == 3  # one try and two retries


async def test_a_long_retry_after_is_not_waited_for(fake: FakeOpenAI, llm: LLMClient) -> None:
    fake.fail(429, retry_after="120")
    with pytest.raises(LLMError):
        await llm.complete(HELLO)
    assert len(fake.requests) == 1


async def test_client_errors_are_not_retried(fake: FakeOpenAI, llm: LLMClient) -> None:
    fake.fail(400)
    with pytest.raises(LLMError) as caught:
        await llm.complete(HELLO)
    assert caught.value.status == 400
    assert len(fake.requests) == 1


async def test_a_wrong_key_is_refused_and_not_retried(fake: FakeOpenAI) -> None:
    client = LLMClient(base_url=fake.base_url, model="m", api_key="sk-wrong", backoff_s=0)
    try:
        with pytest.raises(LLMError) as caught:
            await client.complete(HELLO)
        assert caught.value.status == 401
        assert fake.requests == []
    finally:
        await client.aclose()


async def test_a_hanging_model_times_out_without_retry(fake: FakeOpenAI, llm: LLMClient) -> None:
    fake.hang()
    started = time.monotonic()
    with pytest.raises(LLMError, match="in time"):
        await llm.complete(HELLO)
    assert time.monotonic() - started < 2.5
    assert len(fake.requests) == 1


async def test_an_unreachable_endpoint_fails_after_bounded_retries() -> None:
    client = LLMClient(
        base_url=f"http://127.0.0.1:{free_port()}/v1", model="m", retries=1, backoff_s=0.01
    )
    try:
        with pytest.raises(LLMError, match="cannot reach"):
            await client.complete(HELLO)
    finally:
        await client.aclose()


async def test_the_key_never_reaches_logs_or_reprs(
    fake: FakeOpenAI, llm: LLMClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.fail(500)
    fake.fail(400)
    with pytest.raises(LLMError) as caught:
        await llm.complete(HELLO)
    assert fake.api_key not in caplog.text
    assert fake.api_key not in str(caught.value) and fake.api_key not in repr(llm)
    settings = Settings(
        _env_file=None, llm_base_url=fake.base_url, llm_model="m", llm_api_key=fake.api_key
    )
    assert fake.api_key not in repr(settings) and fake.api_key not in str(settings.model_dump())


def test_base_url_and_model_come_together() -> None:
    with pytest.raises(ValueError, match="LLM_MODEL"):
        Settings(_env_file=None, llm_base_url="http://127.0.0.1:9/v1")
