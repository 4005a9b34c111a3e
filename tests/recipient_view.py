"""What the recipient of an anonymous whisper can observe, gathered from every surface (GraphQL
over HTTP, the `whisperReceived` replay over a websocket, MCP, the export), and normalised so
that two runs can be compared: ids of objects created during the run and times are replaced by
placeholders in order of appearance; everything else must match exactly."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import uuid
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from typing import Any

import httpx2
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from src.resolvers.pagination import encode_cursor
from tests.helpers import LiveServer, WsClient

# A cursor before anything: `whisperReceived(after:)` replays the whole inbox from it.
EARLIEST = encode_cursor(datetime(2000, 1, 1, tzinfo=UTC), uuid.UUID(int=0))

WHISPER_FIELDS = """id content createdAt readAt isAnonymous revealedAt isMine
  sender { id profile { nickname } isPro } recipient { id profile { nickname } }
  replyTo { id isMine sender { id } }"""
REPLAY = (
    f"subscription ($after: String) {{ whisperReceived(after: $after) {{ {WHISPER_FIELDS} }} }}"
)

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(\+00:00|Z)")


class Normaliser:
    """Replaces ids not in `fixed` and timestamps; decodes cursors and JSON strings first."""

    def __init__(self, fixed: Iterable[str]):
        self.fixed = set(fixed)
        self.fresh: dict[str, str] = {}

    def __call__(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: self._field(k, v) for k, v in value.items()}
        if isinstance(value, list):
            return [self(v) for v in value]
        if isinstance(value, str):
            return self._text(value)
        return value

    def _field(self, key: str, value: Any) -> Any:
        if key in ("cursor", "endCursor") and isinstance(value, str):
            return "cursor(" + self._text(_decoded(value)) + ")"
        if key == "json" and isinstance(value, str):
            return self(json.loads(value))
        return self(value)

    def _text(self, text: str) -> str:
        text = _TIME.sub("<time>", text)
        return _UUID.sub(self._id, text)

    def _id(self, match: re.Match[str]) -> str:
        found = match.group(0)
        if found in self.fixed:
            return found
        return self.fresh.setdefault(found, f"<new {len(self.fresh)}>")


def _decoded(cursor: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return cursor
    # (epoch microseconds, id): a fresh row's time is as unpredictable as its id.
    moment, _, rest = raw.partition("\x1f")
    return ("<time>" if moment.isdigit() else moment) + "/" + rest


async def replay(server: LiveServer, token: str, *, quiet: float = 0.3) -> list[Any]:
    """Every whisper `whisperReceived(after: EARLIEST)` delivers before falling quiet."""
    got: list[Any] = []
    async with WsClient.connect(server, token) as ws:
        await ws.subscribe("r", REPLAY, {"after": EARLIEST})
        while True:
            try:
                message = await ws.next(quiet)
            except TimeoutError:
                return got
            got.append(message.get("payload"))


@contextlib.asynccontextmanager
async def mcp_session(server: LiveServer, token: str) -> AsyncIterator[ClientSession]:
    async with (
        httpx2.AsyncClient(headers={"authorization": f"Bearer {token}"}) as http,
        streamable_http_client(server.url + "/mcp", http_client=http) as (read, write, *_),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


async def mcp_calls(server: LiveServer, token: str, calls: list[tuple[str, dict]]) -> list[Any]:
    """Each tool call's text (errors included) in one MCP session."""
    out = []
    async with mcp_session(server, token) as session:
        for tool, arguments in calls:
            result = await session.call_tool(tool, arguments)
            text = result.content[0].text  # type: ignore[union-attr]
            out.append({"error": text} if result.is_error else json.loads(text))
    return out


async def gather_pair(*coroutines: Any) -> list[Any]:
    return list(await asyncio.gather(*coroutines))
