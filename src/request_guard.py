"""What the GraphQL endpoint accepts before Strawberry reads a byte: body sizes, and the rules
for multipart (file upload) requests (SECURITY.md 6).

- JSON bodies stay small (MAX_JSON_REQUEST_BYTES); multipart bodies may carry four proofs
  (MAX_UPLOAD_REQUEST_BYTES). Over the limit: 413, before or while reading.
- A multipart request must carry the non-simple header `Apollo-Require-Preflight` (any value):
  a browser cannot send it cross-site without a CORS preflight, so a form on another site
  cannot make a logged-in browser upload (CSRF).
- A multipart request may only run mutations that take uploads (`reportUser`, `reportWhisper`).
"""

from __future__ import annotations

from typing import Any

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


class BodyTooLarge(Exception):
    pass


def is_multipart(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            return value.split(b";", 1)[0].strip().lower() == b"multipart/form-data"
    return False


class BodyLimit:
    """ASGI wrapper: refuse bodies over the limit for their content type with 413."""

    def __init__(self, inner: ASGIApp, *, json_limit: int, multipart_limit: int):
        self.inner = inner
        self.json_limit = json_limit
        self.multipart_limit = multipart_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        limit = self.multipart_limit if is_multipart(scope) else self.json_limit
        declared = dict(scope.get("headers", ())).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(scope, receive, send)
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.inner(scope, counted, watched)
        except BodyTooLarge:
            if not started:
                await _too_large(scope, receive, send)


async def _too_large(scope: Scope, receive: Receive, send: Send) -> None:
    await PlainTextResponse("Request body too large.", status_code=413)(scope, receive, send)


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
