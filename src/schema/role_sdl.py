"""The schema as each role may call it (SECURITY.md 5, 27): what the MCP resource
`qiaoqiao://schema.graphql` serves. Root fields guarded by a role the caller lacks are left
out, and with them every type only they reach (moderation's reports and decisions)."""

from __future__ import annotations

from graphql import GraphQLObjectType, GraphQLSchema, print_schema
from strawberry import Schema
from strawberry.types.base import get_object_definition

from src.auth.permissions import IsModerator

ROLES = ("user", "moderator", "admin")


def _allowed(field: object, role: str) -> bool:
    return all(
        role in guard.roles
        for guard in getattr(field, "permission_classes", ())
        if isinstance(guard, type) and issubclass(guard, IsModerator)
    )


def sdl_by_role(schema: Schema) -> dict[str, str]:
    """role -> SDL of what that role may call."""
    core = schema._schema
    result = {}
    for role in ROLES:
        roots: dict[str, GraphQLObjectType | None] = {}
        for kind, root in (
            ("query", schema.query),
            ("mutation", schema.mutation),
            ("subscription", schema.subscription),
        ):
            target: GraphQLObjectType | None = getattr(core, f"{kind}_type")
            if root is None or target is None:
                roots[kind] = None
                continue
            hidden = {
                schema.config.name_converter.get_graphql_name(field)
                for field in get_object_definition(root, strict=True).fields
                if not _allowed(field, role)
            }
            roots[kind] = GraphQLObjectType(
                target.name,
                {name: f for name, f in target.fields.items() if name not in hidden},
                description=target.description,
            )
        visible = GraphQLSchema(
            query=roots["query"],
            mutation=roots["mutation"],
            subscription=roots["subscription"],
            directives=core.directives,
            description=core.description,
        )
        result[role] = print_schema(visible)
    return result
