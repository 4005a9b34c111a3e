"""Schema extensions: request limits, error policy and the one transaction per operation."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import sqlalchemy.exc
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    GraphQLSyntaxError,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    VariableNode,
    Visitor,
    specified_rules,
    visit,
)
from graphql.language.visitor import BREAK
from graphql.validation import ASTValidationRule, NoSchemaIntrospectionCustomRule
from starlette.requests import Request
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from src.config import Settings
from src.resolvers.errors import PublicError, RateLimited, UserFacingError
from src.resolvers.pagination import MAX_PAGE, MIN_PAGE
from src.schema.documents import DocumentChecker, DocumentLimits

# Same-named selections meeting at one place that graphql-core's field-merging rule may compare
# (each pair costs it a few microseconds; the token limit alone allowed ~0.6 s of them).
MAX_MERGE_PAIRS = 1000

log = logging.getLogger("qiaoqiao.graphql")


def document_checker(settings: Settings, schema: GraphQLSchema) -> DocumentChecker:
    """The one checker of a schema's documents: the limits, then every rule Strawberry would
    run (graphql-core's, Strawberry's own, no introspection in production)."""
    rules: list[type[ASTValidationRule]] = [*specified_rules]
    if settings.is_production:
        rules.append(NoSchemaIntrospectionCustomRule)
    rules += [MaybeNullValidationRule, OneOfInputValidationRule]
    limits = DocumentLimits(
        max_tokens=settings.max_tokens,
        max_depth=settings.max_query_depth,
        max_aliases=settings.max_aliases,
        max_fragments=settings.max_fragments,
        max_spreads=settings.max_fragment_spreads,
        max_selections=settings.max_selections,
        max_merge_pairs=MAX_MERGE_PAIRS,
    )
    return DocumentChecker(schema, limits, rules)


class AnsweredBy(SchemaExtension):
    """Development: an HTTP answer of Strawberry says so in `extensions.path`; the compiled
    path writes "compiled" there (src/schema/fastpath.py). Tests pin a query to its path."""

    def get_results(self) -> dict[str, Any]:
        request = getattr(self.execution_context.context, "request", None)
        return {"path": "interpreted"} if isinstance(request, Request) else {}


class PageSizeLimit(SchemaExtension):
    """Refuse `first` outside 1..100 on any field before a resolver runs (SECURITY.md 2).

    Variables are resolved too, so this cannot live in a cached validation rule.
    """

    def on_validate(self) -> Iterator[None]:
        ctx = self.execution_context
        if ctx.pre_execution_errors is None and ctx.graphql_document is not None:
            ctx.pre_execution_errors = validate_document(
                ctx.schema._schema, ctx.graphql_document, ctx.validation_rules
            )
        if not ctx.pre_execution_errors and ctx.graphql_document is not None:
            bad = list(_bad_page_sizes(ctx.graphql_document, ctx.variables or {}))
            if bad:
                # A new list: the cached validation result must not be changed in place.
                ctx.pre_execution_errors = bad
        yield


def _bad_page_sizes(document: DocumentNode, variables: dict[str, Any]) -> Iterator[GraphQLError]:
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    seen: set[str] = set()

    def walk(selection_set: SelectionSetNode | None) -> Iterator[GraphQLError]:
        for sel in selection_set.selections if selection_set else ():
            if isinstance(sel, FieldNode):
                for arg in sel.arguments or ():
                    if arg.name.value != "first":
                        continue
                    value: Any = None
                    if isinstance(arg.value, IntValueNode):
                        value = int(arg.value.value)
                    elif isinstance(arg.value, VariableNode):
                        value = variables.get(arg.value.name.value)
                    if isinstance(value, int) and not MIN_PAGE <= value <= MAX_PAGE:
                        yield GraphQLError(
                            f"`first` must be between {MIN_PAGE} and {MAX_PAGE}, got {value}.",
                            nodes=[arg],
                            extensions={"code": "BAD_USER_INPUT"},
                        )
                yield from walk(sel.selection_set)
            elif isinstance(sel, InlineFragmentNode):
                yield from walk(sel.selection_set)
            elif isinstance(sel, FragmentSpreadNode) and sel.name.value not in seen:
                seen.add(sel.name.value)
                fragment = fragments.get(sel.name.value)
                if fragment is not None:
                    yield from walk(fragment.selection_set)

    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            yield from walk(definition.selection_set)


class NoNulCharacters(SchemaExtension):
    """Refuse U+0000 in any string argument or variable before a resolver runs: PostgreSQL text
    cannot hold it, and it used to fail deep in a mutation as a masked internal error (found by
    the fuzzer, tests/test_fuzz.py)."""

    def on_validate(self) -> Iterator[None]:
        ctx = self.execution_context
        document = ctx.graphql_document
        if not ctx.pre_execution_errors and document is not None:
            finder = _NulFinder()
            visit(document, finder)
            if finder.found or _has_nul(ctx.variables):
                ctx.pre_execution_errors = [
                    GraphQLError(
                        "Text may not contain NUL (U+0000) characters.",
                        extensions={"code": "BAD_USER_INPUT"},
                    )
                ]
        yield


class _NulFinder(Visitor):
    found = False

    def enter_string_value(self, node: StringValueNode, *_: Any) -> Any:
        if "\x00" in node.value:
            self.found = True
            return BREAK
        return None


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


class OperationTimeout(PublicError):
    """The operation ran past its time (the operation timeout or PostgreSQL's
    statement_timeout) and was stopped; its transaction was rolled back (SECURITY.md 8)."""

    code = "TIMEOUT"

    def __init__(self, message: str = "The operation took too long and was stopped."):
        super().__init__(message)


class ServiceUnavailable(PublicError):
    """PostgreSQL cannot be reached (stopped, restarting, failing over): try again shortly."""

    code = "SERVICE_UNAVAILABLE"

    def __init__(self) -> None:
        super().__init__("The service is briefly unavailable; try again in a moment.")


class OutcomeUnknown(PublicError):
    """The connection to PostgreSQL broke while a write was being committed: it may or may
    not have been saved. Retrying is safe only with the same idempotency key."""

    code = "OUTCOME_UNKNOWN"

    def __init__(self) -> None:
        super().__init__(
            "The connection failed while saving: the change may or may not have been made. "
            "Check before trying again, or retry with the same idempotencyKey."
        )


def _causes(exc: BaseException | None) -> Iterator[BaseException]:
    """An exception and what the database driver wrapped in it."""
    for _ in range(6):
        if exc is None:
            return
        yield exc
        exc = getattr(exc, "orig", None) or exc.__cause__


def _sqlstate(exc: BaseException) -> str:
    return str(getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None) or "")


def is_statement_timeout(exc: BaseException | None) -> bool:
    """PostgreSQL cancelled the statement (SQLSTATE 57014: statement_timeout or our cancel)."""
    return any(_sqlstate(e) == "57014" for e in _causes(exc))


def is_database_unavailable(exc: BaseException | None) -> bool:
    """No connection to PostgreSQL: refused or dropped (OSError), a connection exception
    (SQLSTATE class 08), shutting down or starting up (57P01-57P03), or the pool timed out."""
    for e in _causes(exc):
        state = _sqlstate(e)
        if state.startswith("08") or state in ("57P01", "57P02", "57P03"):
            return True
        if isinstance(e, OSError | sqlalchemy.exc.TimeoutError | asyncpg.InterfaceError):
            return True
        if isinstance(e, sqlalchemy.exc.DBAPIError) and e.connection_invalidated:
            return True
    return False


class ErrorPolicy(SchemaExtension):
    """Give every error a code; mask unexpected ones (SECURITY.md 7).

    Syntax, validation and limit errors stay readable; `PublicError`s keep their message and
    code; anything else becomes INTERNAL_SERVER_ERROR, with details only in the server log.
    """

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is not None and result.errors:
            result.errors = [classify_error(e) for e in result.errors]

    def on_stream_result(self, result: Any) -> Iterator[None]:
        # Over a websocket each result (subscription events too) is sent from inside the
        # operation, before `on_operation` resumes: classify it before it goes out.
        if isinstance(result, ExecutionResult) and result.errors:
            result.errors = [classify_error(e) for e in result.errors]
        yield


def classify_error(error: GraphQLError) -> GraphQLError:
    original = error.original_error
    if is_statement_timeout(original):
        original = OperationTimeout()
    elif is_database_unavailable(original):
        original = ServiceUnavailable()
    if isinstance(original, UserFacingError):
        # An expected failure in a query (no payload to carry it): a top-level error, same code.
        extensions: dict[str, object] = {"code": original.code}
        if original.field:
            extensions["field"] = original.field
        if isinstance(original, RateLimited):
            extensions["retryAfterSeconds"] = original.retry_after
        return GraphQLError(
            original.message, nodes=error.nodes, path=error.path, extensions=extensions
        )
    if isinstance(original, PublicError):
        return GraphQLError(
            str(original), nodes=error.nodes, path=error.path, extensions={"code": original.code}
        )
    if original is None or isinstance(original, GraphQLError):
        # Produced by graphql-core itself (syntax, validation, limits, coercion): readable.
        extensions = dict(error.extensions or {})
        if isinstance(error, GraphQLSyntaxError):
            extensions.setdefault("code", "GRAPHQL_PARSE_FAILED")
        extensions.setdefault(
            "code", "GRAPHQL_VALIDATION_FAILED" if error.path is None else "BAD_USER_INPUT"
        )
        return GraphQLError(
            error.message,
            nodes=error.nodes,
            source=None if error.nodes else error.source,
            positions=None if error.nodes else error.positions,
            path=error.path,
            extensions=extensions,
        )
    return GraphQLError(
        "Internal server error.",
        nodes=error.nodes,
        path=error.path,
        extensions={"code": "INTERNAL_SERVER_ERROR"},
    )


class TransactionPerOperation(SchemaExtension):
    """Commit the operation's session when it succeeded, roll back when any error occurred.

    List it after `ErrorPolicy`: hooks exit in reverse order, so a failed commit is reported here
    as an ordinary error and still classified (masked) by the policy.
    """

    async def on_operation(self) -> AsyncIterator[None]:
        yield
        await self._finish(self.execution_context.result)

    async def on_stream_result(self, result: Any) -> AsyncIterator[None]:
        # A query or mutation over a websocket: commit before its result is sent, as over HTTP
        # (afterwards `on_operation` finds nothing left to finish).
        if isinstance(result, ExecutionResult):
            await self._finish(result)
            if result.errors:
                result.errors = [classify_error(e) for e in result.errors]
        yield

    async def _finish(self, result: Any) -> None:
        ctx = self.execution_context
        finish = getattr(ctx.context, "finish", None)
        if finish is None:
            return
        if ctx.graphql_document is not None and ctx.operation_type is OperationType.SUBSCRIPTION:
            return
        commit = not getattr(result, "errors", None)
        try:
            await finish(commit=commit)
        except Exception as exc:
            log.exception("commit failed" if commit else "rollback failed")
            if result is not None and commit:  # nothing was written: the errors stand
                result.data = None
                # A refused COMMIT was rolled back; one whose connection broke may have been
                # made: a mutation says so, rather than inviting a retry that could repeat it.
                uncertain = (
                    is_database_unavailable(exc) and ctx.operation_type is OperationType.MUTATION
                )
                error = OutcomeUnknown() if uncertain else exc
                result.errors = [GraphQLError("commit failed", original_error=error)]
