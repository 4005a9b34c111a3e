"""One client for any OpenAI-compatible `/chat/completions` endpoint (DeepSeek, Qwen through
DashScope's compatible mode, Moonshot, a local vLLM or Ollama), over httpx.

Explicit connect and read timeouts; bounded retries with backoff after 429, 5xx and connection
failures (never after another 4xx, and never once a streamed answer has begun); function
calling (`tools` / `tool_calls`); streaming (server-sent `data:` lines ending with `[DONE]`);
token counts from `usage`. The API key goes only into the Authorization header: never into a
log line, an error message or a repr.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER_S = 5.0  # a longer Retry-After is not worth holding a request for


class LLMError(Exception):
    """The model could not answer: unreachable, too slow, refusing or answering nonsense."""

    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as the model wrote it (it may be invalid)

    def as_message(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
        )


@dataclass(frozen=True)
class Completion:
    content: str | None
    tool_calls: list[ToolCall]
    usage: Usage
    model: str
    finish_reason: str | None = None

    def as_message(self) -> dict[str, Any]:
        """The assistant turn, to send back with the tool results."""
        message: dict[str, Any] = {"role": "assistant", "content": self.content}
        if self.tool_calls:
            message["tool_calls"] = [c.as_message() for c in self.tool_calls]
        return message


@dataclass(frozen=True)
class StreamEvent:
    """A piece of a streamed answer: text as it arrives; the last event carries `done`."""

    text: str = ""
    done: Completion | None = None


@dataclass
class _Accumulator:
    model: str
    content: list[str] = field(default_factory=list)
    calls: dict[int, dict[str, str]] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None

    def add(self, chunk: dict[str, Any]) -> str:
        self.model = str(chunk.get("model") or self.model)
        if isinstance(chunk.get("usage"), dict):
            self.usage = _usage(chunk["usage"])
        text = ""
        for choice in (chunk.get("choices") or [])[:1]:
            delta = choice.get("delta") or {}
            if isinstance(delta.get("content"), str):
                text = delta["content"]
                self.content.append(text)
            for piece in delta.get("tool_calls") or ():
                call = self.calls.setdefault(
                    int(piece.get("index", 0)), {"id": "", "name": "", "arguments": ""}
                )
                call["id"] = piece.get("id") or call["id"]
                function = piece.get("function") or {}
                call["name"] += function.get("name") or ""
                call["arguments"] += function.get("arguments") or ""
            self.finish_reason = choice.get("finish_reason") or self.finish_reason
        return text

    def completion(self) -> Completion:
        calls = [
            ToolCall(id=c["id"] or f"call_{i}", name=c["name"], arguments=c["arguments"])
            for i, c in sorted(self.calls.items())
        ]
        return Completion(
            content="".join(self.content) or None,
            tool_calls=calls,
            usage=self.usage,
            model=self.model,
            finish_reason=self.finish_reason,
        )


def _usage(raw: Any) -> Usage:
    if not isinstance(raw, dict):
        return Usage()
    return Usage(int(raw.get("prompt_tokens") or 0), int(raw.get("completion_tokens") or 0))


def _parse(body: Any, model: str) -> Completion:
    try:
        choice = body["choices"][0]
        message = choice["message"]
        calls = [
            ToolCall(
                id=str(c.get("id") or f"call_{i}"),
                name=str(c["function"]["name"]),
                arguments=str(c["function"].get("arguments") or "{}"),
            )
            for i, c in enumerate(message.get("tool_calls") or ())
        ]
        content = message.get("content")
        return Completion(
            content=content if isinstance(content, str) else None,
            tool_calls=calls,
            usage=_usage(body.get("usage")),
            model=str(body.get("model") or model),
            finish_reason=choice.get("finish_reason"),
        )
    except (KeyError, IndexError, TypeError, AttributeError):
        raise LLMError("the model answered in an unexpected shape") from None


class LLMClient:
    """Chat completions from one configured endpoint and model."""

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None = None,
        connect_timeout_s: float = 3.0,
        timeout_s: float = 30.0,
        retries: int = 2,
        backoff_s: float = 0.5,
        max_tokens: int = 800,
        http: httpx.AsyncClient | None = None,
    ):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self._headers = {"content-type": "application/json"}
        if api_key:
            self._headers["authorization"] = f"Bearer {api_key}"
        self.timeout = httpx.Timeout(timeout_s, connect=connect_timeout_s)
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_tokens = max_tokens
        # Its own pool: long model calls must not hold the connections WeChat calls need.
        self.http = http or httpx.AsyncClient(
            follow_redirects=False, timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s)
        )

    def __repr__(self) -> str:  # never the key
        return f"LLMClient(url={self.url!r}, model={self.model!r})"

    async def aclose(self) -> None:
        await self.http.aclose()

    def _body(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        *,
        stream: bool,
        max_tokens: int | None,
        temperature: float | None,
        json_mode: bool,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": max_tokens or self.max_tokens,
        }
        if tools:
            body["tools"] = tools
            body["tool_choice"] = "auto"
        if temperature is not None:
            body["temperature"] = temperature
        if json_mode:
            body["response_format"] = {"type": "json_object"}
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    async def complete(
        self,
        messages: list[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        json_mode: bool = False,
    ) -> Completion:
        """One answer (text, tool calls, or both) with its token counts.

        Raises LLMError when the endpoint cannot answer after the allowed retries.
        """
        body = self._body(
            messages,
            tools,
            stream=False,
            max_tokens=max_tokens,
            temperature=temperature,
            json_mode=json_mode,
        )
        response = await self._send(body)
        try:
            payload = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise LLMError("the model answered with invalid JSON") from None
        return _parse(payload, self.model)

    async def stream(
        self,
        messages: list[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> AsyncIterator[StreamEvent]:
        """The answer as it is written: text pieces, then one event with the whole Completion.

        Retries happen only before the first piece; a stream that breaks later raises LLMError.
        """
        body = self._body(
            messages,
            tools,
            stream=True,
            max_tokens=max_tokens,
            temperature=temperature,
            json_mode=False,
        )
        response = await self._send(body, stream=True)
        acc = _Accumulator(model=self.model)
        finished = False
        try:
            async with asyncio.timeout(self.timeout_s):
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue  # comments, event names, keep-alives
                    data = line[5:].strip()
                    if data == "[DONE]":
                        finished = True
                        break
                    try:
                        chunk = orjson.loads(data)
                    except orjson.JSONDecodeError:
                        raise LLMError("the model streamed invalid JSON") from None
                    if isinstance(chunk, dict) and (text := acc.add(chunk)):
                        yield StreamEvent(text=text)
        except (httpx.HTTPError, TimeoutError) as exc:
            raise LLMError(f"the stream broke off: {type(exc).__name__}") from None
        finally:
            await response.aclose()
        if not finished and acc.finish_reason is None:
            raise LLMError("the stream ended before the answer did")
        yield StreamEvent(done=acc.completion())

    async def _send(self, body: dict[str, Any], *, stream: bool = False) -> httpx.Response:
        content = orjson.dumps(body)
        attempt = 0
        while True:
            started = time.perf_counter()
            retry_after: float | None = None
            try:
                request = self.http.build_request(
                    "POST", self.url, content=content, headers=self._headers, timeout=self.timeout
                )
                response = await self.http.send(request, stream=stream)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError) as exc:
                problem, status = f"cannot reach the model: {type(exc).__name__}", None
            except httpx.TimeoutException:
                # A model that does not answer in time is not retried: that would multiply the
                # wait the person already had.
                raise LLMError("the model did not answer in time") from None
            except httpx.HTTPError as exc:
                raise LLMError(f"model request failed: {type(exc).__name__}") from None
            else:
                if response.status_code == 200:
                    log.info(
                        "llm answered",
                        extra={"llm_ms": int((time.perf_counter() - started) * 1000)},
                    )
                    return response
                status = response.status_code
                retry_after = _retry_after(response.headers.get("retry-after"))
                await response.aclose()
                problem = f"the model endpoint answered {status}"
                if status not in RETRY_STATUSES:
                    raise LLMError(problem, status=status)
            if attempt >= self.retries or (retry_after or 0) > MAX_RETRY_AFTER_S:
                raise LLMError(problem, status=status)
            delay = retry_after if retry_after is not None else self.backoff_s * 2**attempt
            attempt += 1
            log.warning("llm retry %d after %s", attempt, problem)
            await asyncio.sleep(delay * (1 + random.random() * 0.2))  # noqa: S311 - jitter


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: use our own backoff
