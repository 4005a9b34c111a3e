"""The compiled `discover` page, in two phases and one transaction: phase 1 is the resolver's
own `discovery.discover` (rate limit, DISCOVERY quota, vector search, visibility re-check,
cursors, degraded ranking), phase 2 the read compiler's statement building the whole answer
from those hits (a `Given` root, src/schema/discovery.py), on the same connection.

Nothing may be counted twice. Whatever the resolver refuses before it counts — and a bad
filter, which it finds only after the quota — is asked first (`discovery.check`): refused
there, nothing was counted and Strawberry answers, counting as ever. Once counting began, a
failure is answered here, as the interpreter words it (`classify_error`), never by falling back.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from graphql import (
    FieldNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    coerce_input_value,
)
from strawberry.utils.str_converters import to_camel_case

from src.auth.tokens import AccessClaims
from src.resolvers import discovery
from src.resolvers.errors import PublicError, UserFacingError
from src.resolvers.readplan import ReadPlan, bind_given
from src.resolvers.readplan.statement import resolve
from src.resolvers.users import load_viewer
from src.schema.discovery import DiscoveryFilter
from src.schema.extensions import classify_error
from src.schema.fastpath_send import Fallback
from src.services import Services

log = logging.getLogger(__name__)


def root_nodes(operation: OperationDefinitionNode, key: str) -> list[FieldNode] | None:
    """The root field nodes an error of `key` is located at, as the executor gathers them;
    None (not compiled) when fragments or directives sit at the root."""
    nodes = []
    for node in operation.selection_set.selections:
        if not isinstance(node, FieldNode) or node.directives:
            return None
        if (node.alias or node.name).value == key:
            nodes.append(node)
    return nodes


async def answer_discover(
    services: Services,
    schema: GraphQLSchema,
    plan: ReadPlan,
    nodes: list[FieldNode],
    values: dict[str, Any],
    claims: AccessClaims,
    params: dict[str, Any],
) -> bytes:
    """The response body, or Fallback before anything was counted."""
    sel = plan.given
    if sel is None or sel.name != "discover":
        raise Fallback
    args = {name: resolve(source, values) for name, source in sel.args.items()}
    prompt, first, after = args.get("prompt"), args.get("first"), args.get("after")
    if not all(isinstance(v, str | None) for v in (prompt, after)):
        raise Fallback  # the interpreter refuses the variable
    if first is not None and (isinstance(first, bool) or not isinstance(first, int)):
        raise Fallback
    criteria = _criteria(schema, args.get("filter"))
    async with services.sessionmaker() as session:
        viewer = await load_viewer(session, claims.user_id, claims.session_id)
        if viewer is None:
            raise Fallback  # the interpreter says UNAUTHENTICATED
        request: dict[str, Any] = {
            "prompt": prompt,
            "criteria": criteria,
            "first": first,
            "after": after,
        }
        try:
            discovery.check(viewer, **request)
        except (UserFacingError, PublicError):
            raise Fallback from None
        try:
            results = await discovery.discover(session, services, viewer, **request)
            hits = results.hits
            params.update(
                bind_given(
                    plan,
                    {
                        "has_next": results.has_next,
                        "end_cursor": hits[-1][0] if hits else None,
                        "degraded": results.degraded,
                        "user_id": [hit.user_id for _, hit in hits],
                        # GraphQL's Float: float(score), written as the interpreter writes it.
                        "score": [orjson.dumps(float(hit.score)).decode() for _, hit in hits],
                        "cursor": [cursor for cursor, _ in hits],
                    },
                )
            )
            # The same transaction as phase 1: its asyncpg connection.
            raw = await (await session.connection()).get_raw_connection()
            connection: Any = raw.driver_connection
            row = await connection.fetchrow(plan.sql, *(params[name] for name in plan.order))
            await session.commit()
        except Exception as exc:
            if not isinstance(exc, UserFacingError | PublicError):
                log.exception("compiled discover failed after counting; answered as an error")
            await session.rollback()
            return _error(exc, nodes, sel.key)
    return str(row["body"]).encode()


def _criteria(schema: GraphQLSchema, raw: Any) -> discovery.Criteria:
    """The filter as the interpreter gets it (defaults filled in), or Fallback where graphql-core
    would refuse the variable."""
    if raw is None:
        return DiscoveryFilter().criteria()
    query = schema.query_type
    assert query is not None  # discover is a query field
    coerced = coerce_input_value(raw, query.fields["discover"].args["filter"].type)
    if not isinstance(coerced, dict):
        raise Fallback  # Undefined: invalid
    fields = DiscoveryFilter.__strawberry_definition__.fields  # type: ignore[attr-defined]
    python = {to_camel_case(f.python_name): f.python_name for f in fields}  # the schema's names
    return DiscoveryFilter(**{python[k]: v for k, v in (coerced or {}).items()}).criteria()


def _error(exc: Exception, nodes: list[FieldNode], key: str) -> bytes:
    """The interpreter's answer to `exc` raised by the resolver of the non-null root `key`."""
    located = GraphQLError(str(exc), nodes=nodes, path=[key], original_error=exc)
    return orjson.dumps({"data": None, "errors": [classify_error(located).formatted]})
