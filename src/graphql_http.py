"""GraphQL over HTTP as the spec draft says (graphql.github.io/graphql-over-http), in front of
both the compiled path (src/schema/fastpath.py) and the interpreter (Strawberry), so the two
answer every request alike.

- POST `application/json` (or multipart uploads, see src/request_guard.py) and GET with the
  parameters in the URL; GET runs queries only: a mutation over GET is 405 with `Allow: POST`
  (a GET must stay safe: a link or an <img> can send one), a subscription over HTTP is refused
  with WEBSOCKET_REQUIRED.
- The body is checked before anything runs: a JSON object, `query` a string, `operationName` a
  string or null, `variables` and `extensions` objects or null; batches (arrays) are refused.
- Operation selection (GraphQL spec, GetOperation): a document with several operations needs
  `operationName` (OPERATION_NAME_REQUIRED); a name the document does not define is
  OPERATION_NOT_FOUND.
- The response is `application/graphql-response+json` when the client accepts it (at least as
  much as `application/json`), else `application/json`. A malformed request (not JSON,
  parameters of the wrong type) is 400 with a GraphQL error body. A request error (syntax,
  validation, limits, operation selection, variable values: nothing was executed) has no `data`
  entry; it is 400 under graphql-response+json and 200 under application/json, as the draft
  says for each.
- The inner app only ever sees a checked POST `application/json` request (GETs are rewritten).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import orjson
from graphql import (
    DocumentNode,
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    parse,
)
from starlette.datastructures import Headers
from starlette.types import Message, Receive, Scope, Send

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
APPLICATION_JSON = "application/json"
# Set in the ASGI scope by the schema when a request failed before execution (src/schema).
REQUEST_ERROR = "qq.graphql.request_error"


class RequestError(Exception):
    """A request that cannot be executed, with its stable code. A malformed request
    (BAD_REQUEST: not JSON, parameters of the wrong type) is 400 whatever the media type;
    `status` None: the status the negotiated media type gives GraphQL request errors (400 under
    graphql-response+json, 200 under application/json)."""

    def __init__(
        self,
        message: str,
        code: str = "BAD_REQUEST",
        *,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = 400 if status is None and code == "BAD_REQUEST" else status
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {"errors": [{"message": self.message, "extensions": {"code": self.code}}]}


@dataclass(frozen=True)
class GraphQLRequest:
    query: str
    operation_name: str | None = None
    variables: dict[str, Any] | None = None
    extensions: dict[str, Any] | None = None

    @classmethod
    def from_json(cls, payload: Any) -> GraphQLRequest:
        """The request's parameters, checked as the spec requires (any other key is ignored)."""
        if isinstance(payload, list):
            raise RequestError("Batched requests (a JSON array) are not supported.")
        if not isinstance(payload, dict):
            raise RequestError("The request body must be a JSON object.")
        query = payload.get("query")
        if query is None:
            raise RequestError("The request has no `query`.")
        if not isinstance(query, str):
            raise RequestError("`query` must be a string.")
        name = payload.get("operationName")
        if name is not None and not isinstance(name, str):
            raise RequestError("`operationName` must be a string or null.")
        for key in ("variables", "extensions"):
            value = payload.get(key)
            if value is not None and not isinstance(value, dict):
                raise RequestError(f"`{key}` must be an object or null.")
        return cls(query, name, payload.get("variables"), payload.get("extensions"))

    @classmethod
    def from_query_string(cls, params: Mapping[str, str]) -> GraphQLRequest:
        """GET: `query`, `operationName`, and `variables`/`extensions` as JSON text."""
        decoded: dict[str, Any] = {
            "query": params.get("query"),
            "operationName": params.get("operationName") or None,
        }
        for key in ("variables", "extensions"):
            text = params.get(key)
            if text:
                try:
                    decoded[key] = orjson.loads(text)
                except orjson.JSONDecodeError:
                    raise RequestError(f"`{key}` must be JSON text.") from None
        return cls.from_json(decoded)

    def as_json(self) -> bytes:
        body: dict[str, Any] = {"query": self.query}
        if self.operation_name is not None:
            body["operationName"] = self.operation_name
        if self.variables is not None:
            body["variables"] = self.variables
        if self.extensions is not None:
            body["extensions"] = self.extensions
        return orjson.dumps(body)


class DocumentCache:
    """Parsed documents by text (the limits apply: a document over `max_tokens` never parses)."""

    def __init__(self, max_tokens: int, size: int = 256):
        self.max_tokens = max_tokens
        self.size = size
        self._documents: OrderedDict[str, DocumentNode] = OrderedDict()

    def parse(self, query: str) -> DocumentNode:
        """Raises GraphQLError (syntax or token limit)."""
        document = self._documents.get(query)
        if document is not None:
            self._documents.move_to_end(query)
            return document
        document = parse(query, max_tokens=self.max_tokens, no_location=True)
        self._documents[query] = document
        if len(self._documents) > self.size:
            self._documents.popitem(last=False)
        return document


def select_operation(
    document: DocumentNode, operation_name: str | None
) -> OperationDefinitionNode | None:
    """The operation a request runs (GraphQL spec, GetOperation), or None when the document
    has none (validation says so). Raises RequestError when the choice is ambiguous or the
    named operation does not exist."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is None:
        if len(operations) > 1:
            raise RequestError(
                f"The document has {len(operations)} operations: name the one to run in "
                "`operationName`.",
                "OPERATION_NAME_REQUIRED",
            )
        return operations[0] if operations else None
    for operation in operations:
        if operation.name is not None and operation.name.value == operation_name:
            return operation
    raise RequestError(
        f"The document has no operation named {operation_name!r}.", "OPERATION_NOT_FOUND"
    )


def websocket_required() -> RequestError:
    return RequestError(
        "Subscriptions are served over the websocket at /graphql (graphql-transport-ws), "
        "not over HTTP.",
        "WEBSOCKET_REQUIRED",
    )


def check_operation(
    cache: DocumentCache, request: GraphQLRequest, *, method: str
) -> OperationType | None:
    """The selected operation's type, after the selection and transport rules; None when the
    document does not parse (the interpreter then answers with the syntax error)."""
    try:
        document = cache.parse(request.query)
    except GraphQLError:
        return None
    operation = select_operation(document, request.operation_name)
    if operation is None:
        return None
    if operation.operation is OperationType.SUBSCRIPTION:
        raise websocket_required()
    if operation.operation is OperationType.MUTATION and method != "POST":
        raise RequestError(
            "Mutations are sent with POST; GET runs queries only.",
            "METHOD_NOT_ALLOWED",
            status=405,
            headers={"allow": "POST"},
        )
    return operation.operation


def negotiate(accept: str | None) -> str:
    """The response's media type for an `Accept` header: graphql-response+json when the client
    accepts it at least as much as application/json; application/json otherwise (also without
    an Accept header, or one naming neither: the draft lets a server disregard it then)."""
    if not accept:
        return APPLICATION_JSON
    best: dict[str, float] = {GRAPHQL_RESPONSE_JSON: 0.0, APPLICATION_JSON: 0.0}
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        media = media.lower()
        if media == GRAPHQL_RESPONSE_JSON:
            best[GRAPHQL_RESPONSE_JSON] = max(best[GRAPHQL_RESPONSE_JSON], quality)
        elif media in (APPLICATION_JSON, "application/*", "*/*"):
            best[APPLICATION_JSON] = max(best[APPLICATION_JSON], quality)
    graphql_response = best[GRAPHQL_RESPONSE_JSON]
    if graphql_response > 0 and graphql_response >= best[APPLICATION_JSON]:
        return GRAPHQL_RESPONSE_JSON
    return APPLICATION_JSON


def _content_type(value: str | None) -> tuple[str, str | None]:
    """Media type and charset of a Content-Type header."""
    media, *params = (part.strip() for part in (value or "").split(";"))
    charset = None
    for param in params:
        key, _, val = param.partition("=")
        if key.strip().lower() == "charset":
            charset = val.strip().strip('"').lower()
    return media.lower(), charset


class GraphQLOverHTTP:
    """ASGI wrapper of the /graphql HTTP endpoint (see the module's docstring). `ide`: GETs that
    ask for HTML without a query go to the inner app, which serves GraphiQL."""

    def __init__(
        self,
        inner: Callable[[Scope, Receive, Send], Awaitable[None]],
        *,
        documents: DocumentCache,
        ide: bool,
    ):
        self.inner = inner
        self.documents = documents
        self.ide = ide

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        headers = Headers(scope=scope)
        media = negotiate(headers.get("accept"))
        method = scope["method"]
        try:
            if method in ("GET", "HEAD"):
                params = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
                if "query" not in params and self.ide and "text/html" in headers.get("accept", ""):
                    await self.inner(scope, receive, send)
                    return
                request = GraphQLRequest.from_query_string(params)
                check_operation(self.documents, request, method=method)
                scope, receive = _as_post(scope, request.as_json())
            elif method == "POST":
                content_type, charset = _content_type(headers.get("content-type"))
                if content_type == "multipart/form-data":
                    pass  # uploads: the inner app applies their rules (src/request_guard.py)
                elif content_type != APPLICATION_JSON or charset not in (None, "utf-8"):
                    raise RequestError(
                        "Send GraphQL requests as application/json (UTF-8), or file uploads "
                        "as multipart/form-data.",
                        "UNSUPPORTED_MEDIA_TYPE",
                        status=415,
                    )
                else:
                    body = await _read_body(receive)
                    if not body.strip():
                        raise RequestError("The request has no body.")
                    try:
                        payload = orjson.loads(body)
                    except orjson.JSONDecodeError:
                        raise RequestError("The request body is not valid JSON.") from None
                    request = GraphQLRequest.from_json(payload)
                    check_operation(self.documents, request, method=method)
                    receive = _replay(body)
        except RequestError as error:
            await _send_json(send, media, error.status, error.body(), error.headers)
            return
        await self.inner(scope, receive, _Negotiated(scope, send, media))


class _Negotiated:
    """The inner app's `send`, answering in the negotiated media type: GraphQL responses of
    request errors lose `data` and take the request-error status; plain-text refusals become
    GraphQL error bodies. Other responses (GraphiQL's page) pass as they are."""

    def __init__(self, scope: Scope, send: Send, media: str):
        self.scope = scope
        self.send = send
        self.media = media
        self.start: Message | None = None
        self.chunks: list[bytes] = []

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            kind = Headers(raw=message.get("headers", [])).get("content-type", "")
            json = kind.startswith(APPLICATION_JSON)
            plain = kind.startswith("text/plain") and message["status"] >= 400
            if json or plain:
                self.start = message
                return
        elif message["type"] == "http.response.body" and self.start is not None:
            self.chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                await self._finish(b"".join(self.chunks))
            return
        await self.send(message)

    async def _finish(self, body: bytes) -> None:
        assert self.start is not None
        status: int = self.start["status"]
        kind = Headers(raw=self.start.get("headers", [])).get("content-type", "")
        extra = [
            (k, v)
            for k, v in self.start.get("headers", [])
            if k.lower() not in (b"content-type", b"content-length")
        ]
        if kind.startswith("text/plain"):
            payload: Any = RequestError(body.decode("utf-8", "replace").strip()).body()
            await _send_json(self.send, self.media, status, payload, raw_headers=extra)
            return
        if status == 200 and self.scope.get(REQUEST_ERROR):
            payload = orjson.loads(body)
            if isinstance(payload, dict):
                payload.pop("data", None)
            await _send_json(self.send, self.media, None, payload, raw_headers=extra)
            return
        await _send_raw(self.send, status, self.media, body, extra)


async def _send_json(
    send: Send,
    media: str,
    status: int | None,
    payload: Any,
    headers: Mapping[str, str] | None = None,
    raw_headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    if status is None:
        status = 400 if media == GRAPHQL_RESPONSE_JSON else 200
    extra = list(raw_headers or [])
    extra += [
        (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()
    ]
    await _send_raw(send, status, media, orjson.dumps(payload), extra)


async def _send_raw(
    send: Send, status: int, media: str, body: bytes, extra: list[tuple[bytes, bytes]]
) -> None:
    headers = [
        *extra,
        (b"content-type", f"{media}; charset=utf-8".encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


def _as_post(scope: Scope, body: bytes) -> tuple[Scope, Receive]:
    """A checked GET as the POST the inner app takes (same request otherwise)."""
    headers = [
        (k, v) for k, v in scope.get("headers", []) if k not in (b"content-type", b"content-length")
    ]
    headers += [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    return {**scope, "method": "POST", "query_string": b"", "headers": headers}, _replay(body)
