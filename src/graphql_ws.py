"""graphql-transport-ws `subscribe` handling as the protocol says: every refusal of an
operation is an `error` message carrying GraphQL errors (the client's subscription fails with
them), never a bare `complete`, a closed socket or a traceback in the log.

Strawberry's handler lets some refusals escape as exceptions (a document over the token limit or
with a syntax error fails inside an extension's parsing hook; `variables` that are not an object
fail in graphql-core), which it logs as tracebacks and answers with `complete`. The checks that
the HTTP layer applies (src/graphql_http.py: parameters, the document's syntax and limits,
operation selection) run here first, with the same error codes.
"""

from __future__ import annotations

import logging
from contextlib import suppress
from typing import Any

from graphql import GraphQLError
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
    _OperationStreamClosed,
)
from strawberry.utils.aio import aclosing

from src.graphql_http import DocumentCache, RequestError, select_operation
from src.schema.context import Context
from src.schema.extensions import classify_error

log = logging.getLogger("qiaoqiao.ws")

MASKED = GraphQLError("Internal server error.", extensions={"code": "INTERNAL_SERVER_ERROR"})


def refusal(documents: DocumentCache, payload: dict[str, Any]) -> GraphQLError | None:
    """Why a `subscribe` payload cannot run, as a GraphQL error; None when it can."""
    query = payload.get("query")
    if not isinstance(query, str):
        return _error(RequestError("`query` must be a string."))
    name = payload.get("operationName")
    if name is not None and not isinstance(name, str):
        return _error(RequestError("`operationName` must be a string or null."))
    for key in ("variables", "extensions"):
        value = payload.get(key)
        if value is not None and not isinstance(value, dict):
            return _error(RequestError(f"`{key}` must be an object or null."))
    try:
        document = documents.parse(query)
    except GraphQLError as error:  # syntax, or over the token limit
        return classify_error(error)
    try:
        select_operation(document, name)
    except RequestError as error:
        return _error(error)
    return None


def _error(error: RequestError) -> GraphQLError:
    return GraphQLError(error.message, extensions={"code": error.code})


class TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    async def run_operation(self, operation: Operation[Context, None]) -> None:
        payload = {
            "query": operation.query,
            "variables": operation.variables,
            "operationName": operation.operation_name,
        }
        # The view is src.app's GraphQL subclass, which carries `documents` (importing it here
        # would be circular).
        refused = refusal(self.view.documents, payload)  # type: ignore[attr-defined]
        if refused is not None:
            await operation.send_initial_errors([refused])
            return
        try:
            source = await self.schema.stream(
                operation.query,
                variable_values=operation.variables,
                context_value=self.context,
                root_value=self.root_value,
                operation_name=operation.operation_name,
            )
            async with aclosing(source):
                await self._send_result_stream(operation, source)
            await operation.send_operation_message({"id": operation.id, "type": "complete"})
        except _OperationStreamClosed:
            return
        except Exception:  # unexpected: the client gets a masked error, the log the details
            log.exception("websocket operation failed")
            with suppress(Exception):
                await operation.send_initial_errors([MASKED])
            self.operations.pop(operation.id, None)
