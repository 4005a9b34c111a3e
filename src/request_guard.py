"""What the app accepts before an endpoint reads a byte: body sizes and read times for every
endpoint (SECURITY.md 36), and the rules for multipart (file upload) requests (SECURITY.md 6).

- GraphQL JSON bodies stay small (MAX_JSON_REQUEST_BYTES, /mcp too); multipart bodies may carry
  four proofs (MAX_UPLOAD_REQUEST_BYTES); every other endpoint takes at most 64 KB. Over the
  limit: 413, before or while reading.
- A body arrives within HTTP_BODY_TIMEOUT_S, with no pause over HTTP_HEADER_TIMEOUT_S: else 408.
- A multipart request must carry the non-simple header `Apollo-Require-Preflight` (any value):
  a browser cannot send it cross-site without a CORS preflight, so a form on another site
  cannot make a logged-in browser upload (CSRF).
- A multipart request may only run mutations that take uploads (`reportUser`, `reportWhisper`).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import orjson
from cross_web import HTTPException
from graphql import (
    FieldNode,
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    parse,
)
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSRF_HEADER = "apollo-require-preflight"
UPLOAD_FIELDS = frozenset({"reportUser", "reportWhisper"})


# Bodies of the other endpoints: WeChat Pay's and WeChat's notifications are small JSON.
SMALL_BODY = 64 * 1024


class BodyTooLarge(Exception):
    pass


class BodyTooSlow(Exception):
    pass


def is_multipart(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            return value.split(b";", 1)[0].strip().lower() == b"multipart/form-data"
    return False


class RequestGuard:
    """ASGI wrapper of the whole app: every HTTP request reads at most its endpoint's limit of
    bytes (413, whether declared or seen while reading: nothing beyond the limit is buffered),
    and its body arrives within `body_timeout_s`, with no pause over `idle_timeout_s` (408).
    Both answers close the connection, so the rest of a refused body is never read."""

    def __init__(
        self,
        inner: ASGIApp,
        *,
        json_limit: int,
        multipart_limit: int,
        body_timeout_s: float,
        idle_timeout_s: float,
    ):
        self.inner = inner
        self.json_limit = json_limit
        self.multipart_limit = multipart_limit
        self.body_timeout_s = body_timeout_s
        self.idle_timeout_s = idle_timeout_s

    def limit_for(self, scope: Scope) -> int:
        path = scope.get("path", "")
        if path == "/graphql":
            return self.multipart_limit if is_multipart(scope) else self.json_limit
        if path == "/mcp":
            return self.json_limit
        return SMALL_BODY

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        limit = self.limit_for(scope)
        declared = dict(scope.get("headers", ())).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _refuse(413, "Request body too large.", scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.body_timeout_s
        seen = 0
        complete = False
        started = False

        async def guarded() -> Message:
            nonlocal seen, complete
            if complete:  # the body is in: later calls wait for a disconnect, untimed
                return await receive()
            wait = min(self.idle_timeout_s, deadline - loop.time())
            try:
                async with asyncio.timeout(max(wait, 0)):
                    message = await receive()
            except TimeoutError:
                raise BodyTooSlow from None
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge
                complete = not message.get("more_body", False)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.inner(scope, guarded, watched)
        except BodyTooLarge:
            if not started:
                await _refuse(413, "Request body too large.", scope, receive, send)
        except BodyTooSlow:
            if not started:
                await _refuse(408, "The request body came too slowly.", scope, receive, send)


async def _refuse(status: int, text: str, scope: Scope, receive: Receive, send: Send) -> None:
    response = PlainTextResponse(text, status_code=status, headers={"connection": "close"})
    await response(scope, receive, send)


# JSON nesting a request may carry (the deepest input the schema takes is a few levels): deeper
# documents would exhaust the stack of the code walking them (SECURITY.md 7).
MAX_JSON_DEPTH = 32


def decode_json(data: str | bytes) -> object:
    """Request JSON (bodies, multipart `operations` and `map`, websocket messages): orjson, and
    at most MAX_JSON_DEPTH levels; anything else raises JSONDecodeError (400, or 4400 on a
    websocket)."""
    value = orjson.loads(data)  # its JSONDecodeError is json's
    level: list[object] = [value]
    for _ in range(MAX_JSON_DEPTH + 1):
        level = [
            child
            for item in level
            if isinstance(item, dict | list)
            for child in (item.values() if isinstance(item, dict) else item)
        ]
        if not level:
            return value
    text = data if isinstance(data, str) else data.decode(errors="replace")
    raise json.JSONDecodeError(f"nested deeper than {MAX_JSON_DEPTH} levels", text, 0)


def check_multipart_map(files_map: object) -> None:
    """The multipart spec's `map`: an object of file field names to lists of paths."""
    if not isinstance(files_map, dict) or not all(
        isinstance(paths, list) and all(isinstance(p, str) for p in paths)
        for paths in files_map.values()
    ):
        raise HTTPException(400, "The multipart `map` must map file fields to lists of paths.")


def check_multipart_headers(headers: Any) -> None:
    if not (headers.get(CSRF_HEADER) or "").strip():
        raise HTTPException(
            400,
            "Multipart requests must carry the header 'Apollo-Require-Preflight' "
            "(protection against cross-site request forgery).",
        )


def check_upload_operation(data: Any, max_tokens: int) -> None:
    """Only a single operation whose root fields all take uploads (`UPLOAD_FIELDS`)."""
    refused = HTTPException(
        400, "Multipart requests may only run reportUser or reportWhisper (file uploads)."
    )
    if not isinstance(data, dict) or not isinstance(data.get("query"), str):
        raise refused
    try:
        document = parse(data["query"], max_tokens=max_tokens, no_location=True)
    except GraphQLError:
        raise refused from None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != 1 or len(document.definitions) != 1:
        raise refused
    operation = operations[0]
    if operation.operation is not OperationType.MUTATION:
        raise refused
    fields = operation.selection_set.selections
    if not fields or not all(
        isinstance(f, FieldNode) and f.name.value in UPLOAD_FIELDS for f in fields
    ):
        raise refused
