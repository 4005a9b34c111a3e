"""The GraphQL schema. `schema` is the export target (`qiaoqiao export-schema`)."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import strawberry
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import GraphQLError
from starlette.websockets import WebSocket
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from src.config import Settings
from src.graphql_http import REQUEST_ERROR
from src.resolvers.errors import PublicError, UserFacingError
from src.schema.context import Context
from src.schema.cost import CostLimit
from src.schema.documents import DocumentChecker, DocumentChecks
from src.schema.extensions import (
    AnsweredBy,
    ErrorPolicy,
    NoNulCharacters,
    OperationTimeout,
    PageSizeLimit,
    TransactionPerOperation,
    classify_error,
    document_checker,
)
from src.schema.mutation import Mutation
from src.schema.query import Query
from src.schema.subscription import Subscription

log = logging.getLogger("qiaoqiao.graphql")
SUGGESTION = re.compile(r"\s*Did you mean .*\Z", re.DOTALL)


class AppSchema(strawberry.Schema):
    operation_timeout_s: float = 10.0
    # Set right after construction (it needs the built graphql-core schema); shared with the
    # compiled path, so each document text is checked once whichever path answers it.
    documents: DocumentChecker

    async def execute(
        self,
        query: str | None,
        variable_values: Any = None,
        context_value: Any = None,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        scope = _http_scope(context_value)
        result = await super().execute(query, variable_values, context_value, *args, **kwargs)
        if result.errors:
            # A syntax error or the token limit ends the operation before ErrorPolicy sees it.
            result.errors = [classify_error(e) for e in result.errors]
        if scope is not None and _request_error(result, executed=scope.pop(_EXECUTED, False)):
            scope[REQUEST_ERROR] = True  # for the HTTP layer (src/graphql_http.py)
        return result

    async def _execute_operation(self, execution_context: ExecutionContext, *args: Any) -> Any:
        """Run one query or mutation (HTTP or websocket) within the operation timeout
        (SECURITY.md 8). A timed-out operation is cancelled where it waits — a pending statement
        gets a cancel request — and answers TIMEOUT; having errors, its transaction is then
        rolled back by TransactionPerOperation and its connection returns to the pool.
        Subscriptions do not come here: their events have their own timeout."""
        scope = _http_scope(execution_context.context)
        if scope is not None:
            scope[_EXECUTED] = True
        deadline = asyncio.timeout(self.operation_timeout_s)
        try:
            async with deadline:
                result = await super()._execute_operation(execution_context, *args)
            if scope is not None and _refused_variables(result):
                scope[_EXECUTED] = False
            return result
        except TimeoutError:
            if not deadline.expired():
                raise
        log.warning("operation %s timed out", execution_context.operation_name or "(anonymous)")
        timeout = OperationTimeout(
            f"The operation took longer than {self.operation_timeout_s:g} s and was stopped."
        )
        error = GraphQLError(str(timeout), original_error=timeout)
        result = GraphQLExecutionResult(data=None, errors=[error])
        execution_context.result = result
        execution_context.pre_execution_errors = result.errors
        return result

    async def stream(self, *args: Any, **kwargs: Any) -> Any:
        # Each websocket operation gets a context of its own (see Context.for_operation).
        context = kwargs.get("context_value")
        if isinstance(context, Context) and isinstance(context.request, WebSocket):
            kwargs["context_value"] = context.for_operation()
        return await super().stream(*args, **kwargs)

    @staticmethod
    def remove_field_suggestion(error: GraphQLError) -> None:
        # Strawberry's config flag strips suggestions of fields only; in production none may
        # remain, of arguments, types, enum values or input fields either (graphql-core puts
        # them last, in validation and in variable coercion alike).
        error.message = SUGGESTION.sub("", error.message)

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Only unexpected errors deserve a stack trace; the client sees them masked.
        for error in errors:
            original = error.original_error
            if original is not None and not isinstance(
                original, PublicError | UserFacingError | GraphQLError
            ):
                log.error("unexpected error in %s", error.path, exc_info=original)


_EXECUTED = "qq.graphql.executed"
_SERVER_FAULTS = frozenset(
    {"INTERNAL_SERVER_ERROR", "SERVICE_UNAVAILABLE", "TIMEOUT", "OUTCOME_UNKNOWN"}
)


def _http_scope(context: Any) -> dict[str, Any] | None:
    scope = getattr(getattr(context, "request", None), "scope", None)
    return scope if isinstance(scope, dict) and scope.get("type") == "http" else None


def _refused_variables(result: Any) -> bool:
    """graphql-core refused the variables before any field ran: no data, and no error has a
    path (a field error always has one)."""
    return (
        isinstance(result, GraphQLExecutionResult)
        and result.data is None
        and bool(result.errors)
        and all(error.path is None for error in result.errors or ())
    )


def _request_error(result: Any, *, executed: bool) -> bool:
    """Nothing ran (GraphQL over HTTP's "request error"): the document did not parse or
    validate, a limit refused it, or its variables were refused. An unexpected failure is not
    one, even before execution."""
    return (
        not executed
        and result.data is None
        and bool(result.errors)
        and not any((e.extensions or {}).get("code") in _SERVER_FAULTS for e in result.errors)
    )


def build_schema(settings: Settings) -> AppSchema:
    schema = AppSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        config=StrawberryConfig(disable_field_suggestions=settings.is_production),
        extensions=[
            # Order matters: ErrorPolicy exits last, so it sees every other extension's errors.
            ErrorPolicy,
            lambda: DocumentChecks(schema.documents),
            PageSizeLimit,
            NoNulCharacters,
            lambda: CostLimit(budget=settings.max_query_cost, report=not settings.is_production),
            *([AnsweredBy] if settings.reports_path else []),
            TransactionPerOperation,
        ],
    )
    schema.operation_timeout_s = settings.operation_timeout_s
    schema.documents = document_checker(settings, schema._schema)
    return schema


schema = build_schema(Settings(app_env="development"))
