"""Deny by default: every root field is public or guarded, and guards refuse without side
effects (SECURITY.md 12)."""

from __future__ import annotations

from strawberry.permission import PermissionExtension

from src.auth.permissions import PUBLIC_FIELDS
from src.schema import schema
from tests.helpers import GraphQLClient, sql


def root_fields() -> dict[str, object]:
    fields = {}
    for root in (schema.query, schema.mutation, schema.subscription):
        if root is None:
            continue
        definition = root.__strawberry_definition__  # type: ignore[attr-defined]
        for field in definition.fields:
            fields[f"{definition.name}.{schema.config.name_converter.get_graphql_name(field)}"] = (
                field
            )
    return fields


def test_every_root_field_is_classified() -> None:
    fields = root_fields()
    unclassified = [
        name
        for name, field in fields.items()
        if name not in PUBLIC_FIELDS
        and not any(isinstance(e, PermissionExtension) for e in field.extensions)  # type: ignore[attr-defined]
    ]
    assert unclassified == []
    assert sorted(PUBLIC_FIELDS - fields.keys()) == []  # no stale entries


GUARDED = {
    "register": (
        'register(input: {acceptedPolicyVersion: "2026-11", nickname: "x"}) { errors { code } }'
    ),
    "bindPhone": 'bindPhone(code: "dev:13800138000") { errors { code } }',
    "exportMyData": "exportMyData { json }",
    "deleteAccount": "deleteAccount { ok }",
    "reportUser": (
        'reportUser(input: {reportedUserId: "00000000-0000-4000-8000-000000000000",'
        " reason: SPAM}) { errors { code } }"
    ),
    "resolveReport": (
        'resolveReport(input: {reportId: "00000000-0000-4000-8000-000000000000",'
        " status: RESOLVED, action: BAN}) { errors { code } }"
    ),
}


async def test_guarded_mutations_refuse_anonymous_callers_without_side_effects(
    gql: GraphQLClient, app
) -> None:
    users_before = await sql(app, "SELECT count(*) FROM users")
    for name, selection in GUARDED.items():
        response = await gql(f"mutation {{ {selection} }}")
        assert response.data is None, name
        assert response.error_codes == ["UNAUTHENTICATED"], name
    assert await sql(app, "SELECT count(*) FROM users") == users_before


async def test_input_cannot_set_server_fields(gql: GraphQLClient) -> None:
    response = await gql(
        'mutation { register(input: {acceptedPolicyVersion: "2026-11", nickname: "x",'
        ' role: "admin"}) { errors { code } } }'
    )
    assert response.data is None
    assert "role" in response.errors[0]["message"]
