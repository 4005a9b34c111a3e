"""Compiled plans for hot operations.

A POSTed query whose whole selection the read compiler covers (the types and root fields
declared in compiled_reads.CATALOG: the `users` feed, `user(id)`, with profiles, institutions
and projects) is answered by one SQL statement that builds the JSON response in PostgreSQL;
a plain `sendWhisper` by one statement that does the whole send (fastpath_send); a `discover`
page by the resolver's search, then one statement in its transaction (fastpath_discover). Everything
else — other fields, fragments on abstract types, other directives, bad arguments, a missing
or refused token, any refusal — goes to Strawberry, which answers exactly as before;
differential tests hold both paths to the same output.

Plans are cached by query text after full validation against the schema and its limits.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from graphql import (
    DocumentNode,
    FieldNode,
    OperationType,
    VariableDefinitionNode,
)
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from src.auth.ratelimit import LimitExceeded
from src.auth.tokens import InvalidToken
from src.db import CommitUncertain
from src.resolvers.calendar import local_day
from src.resolvers.readplan import NotCompilable, ReadPlan, Refused, bind_args, compile_read
from src.resolvers.readplan.model import RequestInfo
from src.schema.compiled_reads import CATALOG
from src.schema.cost import operation_cost
from src.schema.documents import DocumentChecker
from src.schema.extensions import OperationTimeout, OutcomeUnknown, is_statement_timeout
from src.schema.fastpath_discover import answer_discover, root_nodes
from src.schema.fastpath_send import Fallback as _Fallback
from src.schema.fastpath_send import SendPlan, answer_send, compile_send
from src.schema.selections import Shape, selections, shape_of
from src.services import Services

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024
_COST_KEY_MAX = 512  # bytes of variables' JSON a cached cost is keyed by, at most


def _error(message: str, code: str) -> bytes:
    error = {"message": message, "extensions": {"code": code}}
    return orjson.dumps({"data": None, "errors": [error]})


# A write that may have been committed (the connection broke, or the deadline struck, mid-COMMIT):
# the interpreter's TransactionPerOperation answers the same (src/schema/extensions.py).
_UNKNOWN = _error(str(OutcomeUnknown()), OutcomeUnknown.code)
# PostgreSQL's statement_timeout: the interpreter's answer (TransactionPerOperation).
_STATEMENT_TIMEOUT = _error(str(OperationTimeout()), OperationTimeout.code)


class CompiledQueries:
    def __init__(
        self,
        graphql_schema: Any,
        documents: DocumentChecker,
        cache_size: int = 256,
        *,
        max_cost: int,
        report_cost: bool,
        report_path: bool = False,
        timeout_s: float = 10.0,
        hits_in_sql: bool = True,
    ):
        self.schema = graphql_schema
        # Rate-limit counters in PostgreSQL (no REDIS_URL): the feed statement counts its hit.
        self.hits_in_sql = hits_in_sql
        # OPERATION_TIMEOUT_S, as the interpreter keeps it (SECURITY.md 8); a compiled plan
        # that runs out of time answers TIMEOUT itself: falling back would start the clock again.
        self.timeout_s = timeout_s
        self.timed_out = _error(
            f"The operation took longer than {timeout_s:g} s and was stopped.", "TIMEOUT"
        )
        self.max_cost = max_cost
        self.report_cost = report_cost
        self.report_path = report_path
        # Shared with Strawberry: a document refused or valid here is not checked again there.
        self.documents = documents
        self.cache_size = cache_size
        # Per query text and operation; then per the values of its @include/@skip variables.
        self._shapes: OrderedDict[Any, Shape | SendPlan | None] = OrderedDict()
        self._plans: OrderedDict[Any, _Compiled | None] = OrderedDict()
        # Per query text, operation and variables (which set page sizes): the document walk
        # cost about a third of a compiled request's Python time. An LRU of `cache_size`
        # entries whose variables are at most _COST_KEY_MAX bytes, so new cursors cannot grow it.
        self._costs: OrderedDict[Any, int] = OrderedDict()

    def plan_for(
        self, query: str, operation: str | None, variables: dict[str, Any]
    ) -> _Plan | None:
        """The plan answering this request, or None: the interpreter answers."""
        shape = _cached(
            self._shapes, (query, operation), self.cache_size, self._shape, query, operation
        )
        if shape is None or isinstance(shape, SendPlan):
            return shape
        values = {**shape.defaults, **variables}
        switches = tuple(values.get(name) for name in shape.switches)
        if not all(isinstance(flag, bool) for flag in switches):
            return None  # a bad @include/@skip variable: the interpreter says so
        key = (query, operation, switches)
        return _cached(self._plans, key, self.cache_size, self._compile, shape, values)

    def _shape(self, query: str, operation: str | None) -> Shape | SendPlan | None:
        checked = self.documents.check(query)
        if checked.errors or checked.document is None:
            return None
        try:
            shape = shape_of(self.schema, checked.document, operation)
            if shape.operation.operation is OperationType.MUTATION:
                return compile_send(shape.operation, shape.document)
        except NotCompilable:
            return None
        return shape

    def _compile(self, shape: Shape, values: dict[str, Any]) -> _Compiled | None:
        try:
            roots = selections(self.schema, shape, values)
            plan = compile_read(CATALOG, roots, count_hit=self.hits_in_sql)
            if plan.given is not None and plan.rate_limit is not None:
                # Beside a `Given` root, another root's limit is counted before its phase 1.
                plan = compile_read(CATALOG, roots, count_hit=False)
        except NotCompilable:
            return None
        if plan.given is None:
            return _Compiled(plan, shape.document, shape.defaults)
        nodes = root_nodes(shape.operation, plan.given.key)
        if not nodes:
            return None
        definitions = tuple(shape.operation.variable_definitions or ())
        return _Compiled(plan, shape.document, shape.defaults, nodes, definitions)

    async def answer(self, services: Services, request: Request, body: dict[str, Any]) -> bytes:
        """The response body, or raise _Fallback."""
        query, operation = body.get("query"), body.get("operationName")
        variables = body.get("variables") or {}
        if not isinstance(query, str) or not isinstance(variables, dict):
            raise _Fallback
        name = operation if isinstance(operation, str) else None
        compiled = self.plan_for(query, name, variables)
        if compiled is None:
            raise _Fallback
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            raise _Fallback
        try:
            claims = services.tokens.verify_access(token.strip())
        except InvalidToken:
            raise _Fallback from None
        cost = self._cost(query, compiled.document, operation, variables)
        if cost > self.max_cost:
            raise _Fallback  # the interpreter refuses it with COST_LIMIT
        if isinstance(compiled, SendPlan):
            answer = await answer_send(services, compiled, variables, claims)
            return self._with_extensions(answer, cost)
        plan = compiled.plan
        now = services.clock()  # the one clock: PRO periods and ages, as the resolvers read it
        request_info = RequestInfo(services, request.headers, now)
        values = {**compiled.defaults, **variables}
        try:
            params = bind_args(plan, values, request_info)
        except Refused:
            raise _Fallback from None  # the interpreter refuses it with a readable error
        params.update(
            viewer_id=claims.user_id,
            session_id=claims.session_id,
            now=now,
            today=local_day(now),
        )
        if plan.given is not None:  # phase 1 first, in the statement's transaction
            answer = await answer_discover(
                services,
                self.schema,
                plan,
                compiled.root,
                compiled.variables,
                variables,
                claims,
                params,
            )
            return self._with_extensions(answer, cost)
        # The resolver's rate limit (the feed's): counted by the statement itself when the
        # counters are in PostgreSQL, else here. Over it, the interpreter counts it again and
        # answers RATE_LIMITED.
        limiter = services.rate_limiter
        counted = plan.rate_limit is not None and self.hits_in_sql
        if plan.rate_limit is not None:
            window = limiter.window(plan.rate_limit, str(claims.user_id), time.time())
            if counted:
                params.update(
                    hit_key=window.key, hit_start=window.starts_at, hit_expires=window.ends_at
                )
            else:
                try:
                    await limiter.hit(plan.rate_limit, str(claims.user_id))
                except LimitExceeded:
                    raise _Fallback from None
        row = await services.read_pool.fetchrow(plan.sql, *(params[name] for name in plan.order))
        if row is None or not row["ok"]:
            raise _Fallback  # revoked or banned: the interpreter says UNAUTHENTICATED
        if counted and row["hits"] > window.allowed:
            raise _Fallback
        return self._with_extensions(str(row["body"]).encode(), cost)

    def _cost(
        self, query: str, document: DocumentNode, operation: Any, variables: dict[str, Any]
    ) -> int:
        """operation_cost, remembered for short variables (a key never holds a big value)."""
        values = orjson.dumps(variables, option=orjson.OPT_SORT_KEYS)
        if len(values) > _COST_KEY_MAX:
            return operation_cost(self.schema, document, operation, variables)
        key = (query, repr(operation), values)
        args = (self.schema, document, operation, variables)
        return int(_cached(self._costs, key, self.cache_size, operation_cost, *args))

    def _with_extensions(self, body: bytes, cost: int) -> bytes:
        """As CostLimit and AnsweredBy do in development:
        {"data": …, "extensions": {"cost": …, "path": "compiled"}}."""
        extensions = ({"cost": cost} if self.report_cost else {}) | (
            {"path": "compiled"} if self.report_path else {}
        )
        if not extensions:
            return body
        return body[: body.rindex(b"}")] + b',"extensions":' + orjson.dumps(extensions) + b"}"


@dataclass(frozen=True)
class _Compiled:
    plan: ReadPlan
    document: DocumentNode  # for the cost, which depends on variables
    defaults: dict[str, Any]  # the operation's variable defaults
    root: list[FieldNode] = field(default_factory=list)  # a `Given` root's, for its errors
    variables: tuple[VariableDefinitionNode, ...] = ()  # for a `Given` root's arguments


# What a query text compiles to: a read's statement, or sendWhisper's plan.
_Plan = _Compiled | SendPlan


def _cached(cache: OrderedDict[Any, Any], key: Any, size: int, make: Any, *args: Any) -> Any:
    """`make(*args)`, remembered under `key` in an LRU of `size` entries."""
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    value = cache[key] = make(*args)
    if len(cache) > size:
        cache.popitem(last=False)
    return value


class FastPathApp:
    """ASGI wrapper around the Strawberry app: POSTs it can compile are answered here."""

    def __init__(
        self, inner: Callable[[Scope, Receive, Send], Awaitable[None]], compiled: CompiledQueries
    ):
        self.inner = inner
        self.compiled = compiled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.inner(scope, receive, send)
            return
        request = Request(scope, receive)
        if "application/json" not in request.headers.get("content-type", ""):
            await self.inner(scope, receive, send)
            return
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                await Response("request too large", 413)(scope, receive, send)
                return
        compiled = self.compiled
        try:
            payload = orjson.loads(body)
            if not isinstance(payload, dict):
                raise _Fallback
            async with asyncio.timeout(compiled.timeout_s):
                answer = await compiled.answer(request.app.state.services, request, payload)
        except (_Fallback, orjson.JSONDecodeError):
            await self.inner(scope, _replay(body), send)
            return
        except CommitUncertain:  # it may have been written: answering again could repeat it
            log.exception("compiled mutation: commit outcome unknown")
            answer = _UNKNOWN
        except Exception as exc:
            if not isinstance(exc, TimeoutError) and not is_statement_timeout(exc):
                # Never fail where the interpreter might answer.
                log.exception("compiled query failed; falling back")
                await self.inner(scope, _replay(body), send)
                return
            log.warning("compiled operation timed out")
            answer = compiled.timed_out if isinstance(exc, TimeoutError) else _STATEMENT_TIMEOUT
        await Response(answer, media_type="application/json")(scope, receive, send)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive
