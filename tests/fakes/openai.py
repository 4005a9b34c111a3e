"""A scriptable fake of an OpenAI-compatible `/v1/chat/completions` endpoint, on 127.0.0.1.

Tests queue what it answers next with `reply(...)`, `tool_call(...)`, `fail(...)` or `hang()`;
with nothing queued it answers a plain reply naming how many messages it got. It checks the
bearer key, records every request body, and streams (server-sent events ending in `[DONE]`)
when asked to.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


@dataclass
class Step:
    content: str | None = None
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    status: int | None = None
    retry_after: str | None = None
    hang: bool = False
    prompt_tokens: int = 11
    completion_tokens: int = 7


@dataclass
class FakeOpenAI:
    url: str = ""
    api_key: str = "sk-fake-key-must-never-leak"
    model: str = "fake-model-1"
    script: list[Step] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    _ids: itertools.count = field(default_factory=itertools.count)

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def reply(self, content: str, **usage: int) -> None:
        self.script.append(Step(content=content, **usage))

    def tool_call(self, name: str, arguments: dict[str, Any], *more: tuple[str, dict]) -> None:
        self.script.append(Step(tool_calls=[(name, arguments), *more]))

    def fail(self, status: int, retry_after: str | None = None) -> None:
        self.script.append(Step(status=status, retry_after=retry_after))

    def hang(self) -> None:
        self.script.append(Step(hang=True))

    def last_messages(self) -> list[dict[str, Any]]:
        return list(self.requests[-1]["messages"])

    async def _completions(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return JSONResponse({"error": {"message": "invalid api key"}}, 401)
        body = await request.json()
        self.requests.append(body)
        step = self.script.pop(0) if self.script else None
        if step is None:
            step = Step(content=f"fake answer to {len(body['messages'])} messages")
        if step.hang:
            # Until the client gives up (at most a minute): the server can then stop cleanly.
            for _ in range(600):
                if await request.is_disconnected():
                    return Response(status_code=499)
                await asyncio.sleep(0.1)
        if step.status:
            headers = {"retry-after": step.retry_after} if step.retry_after else None
            return JSONResponse({"error": {"message": "scripted"}}, step.status, headers=headers)
        calls = [
            {
                "id": f"call_{next(self._ids)}",
                "type": "function",
                "function": {"name": name, "arguments": orjson.dumps(args).decode()},
            }
            for name, args in step.tool_calls
        ]
        usage = {
            "prompt_tokens": step.prompt_tokens,
            "completion_tokens": step.completion_tokens,
            "total_tokens": step.prompt_tokens + step.completion_tokens,
        }
        finish = "tool_calls" if calls else "stop"
        if body.get("stream"):
            return StreamingResponse(
                self._events(step, calls, usage, finish), media_type="text/event-stream"
            )
        message: dict[str, Any] = {"role": "assistant", "content": step.content}
        if calls:
            message["tool_calls"] = calls
        return JSONResponse(
            {
                "id": f"chatcmpl-{next(self._ids)}",
                "object": "chat.completion",
                "model": self.model,
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": usage,
            }
        )

    async def _events(
        self, step: Step, calls: list[dict[str, Any]], usage: dict[str, int], finish: str
    ) -> AsyncIterator[bytes]:
        def event(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
            chunk = {
                "object": "chat.completion.chunk",
                "model": self.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            }
            return b"data: " + orjson.dumps(chunk) + b"\n\n"

        yield b": keep-alive\n\n"
        yield event({"role": "assistant"})
        text = step.content or ""
        for i in range(0, len(text), 4):
            yield event({"content": text[i : i + 4]})
        for index, call in enumerate(calls):
            arguments = call["function"]["arguments"]
            half = len(arguments) // 2
            first = {"name": call["function"]["name"], "arguments": arguments[:half]}
            yield event({"tool_calls": [{"index": index, "id": call["id"], "function": first}]})
            rest = {"arguments": arguments[half:]}
            yield event({"tool_calls": [{"index": index, "function": rest}]})
        yield event({}, finish)
        yield b"data: " + orjson.dumps({"choices": [], "usage": usage}) + b"\n\n"
        yield b"data: [DONE]\n\n"

    def app(self) -> Starlette:
        return Starlette(
            routes=[Route("/v1/chat/completions", self._completions, methods=["POST"])]
        )
