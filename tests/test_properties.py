"""Cross-cutting SECURITY.md properties proven over the whole schema or codebase, so that fields
and clients added later are covered without touching this file (2, 17, 29)."""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import pytest
from graphql import GraphQLNonNull, GraphQLObjectType

from src.schema import schema
from tests.helpers import GraphQLClient, registered_user

SRC = Path(__file__).resolve().parent.parent / "src"


def fields_with_first() -> list[tuple[str, str, object]]:
    found = []
    for type_name, type_ in schema._schema.type_map.items():
        if type_name.startswith("__") or not isinstance(type_, GraphQLObjectType):
            continue
        for name, field in type_.fields.items():
            if "first" in field.args:
                found.append((type_name, name, field.args["first"].default_value))
    return found


def test_every_first_defaults_to_twenty() -> None:
    """SECURITY.md 2: a missing `first` means 20, on every field that pages."""
    found = fields_with_first()
    assert len(found) >= 8
    assert [(t, f) for t, f, default in found if default != 20] == []


@pytest.mark.parametrize("first", [0, 101])
async def test_first_outside_bounds_is_refused_on_every_root_connection(
    gql: GraphQLClient, first: int
) -> None:
    """SECURITY.md 2 for every root field taking `first` (nested ones share the same rule,
    which walks the whole document: see test_limits)."""
    token = (await registered_user(gql, "ann"))["accessToken"]
    roots = {"Query": schema._schema.query_type, "Mutation": schema._schema.mutation_type}
    checked = 0
    for type_name, field_name, _ in fields_with_first():
        root = roots.get(type_name)
        if root is None:
            continue
        field = root.fields[field_name]
        required = [
            n for n, a in field.args.items() if isinstance(a.type, GraphQLNonNull) and n != "first"
        ]
        args = ", ".join([f"first: {first}"] + [f'{n}: "x"' for n in required])
        operation = "mutation" if type_name == "Mutation" else "query"
        document = f"{operation} {{ {field_name}({args}) {{ __typename }} }}"
        response = await gql(document, token=token)
        assert response.data is None, field_name
        assert response.error_codes == ["BAD_USER_INPUT"], (field_name, response.errors)
        checked += 1
    assert checked >= 6


def _calls(tree: ast.AST, names: set[str]) -> list[ast.Call]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in names:
                found.append(node)
    return found


def test_every_outgoing_http_client_has_explicit_timeouts() -> None:
    """SECURITY.md 17: every HTTP client the server builds states its timeouts (httpx's
    default is 5 s for everything; ours are explicit, with a separate connect timeout)."""
    clients = {"AsyncClient", "Client", "AsyncQdrantClient", "QdrantClient"}
    seen = 0
    for path in SRC.rglob("*.py"):
        for call in _calls(ast.parse(path.read_text()), clients):
            seen += 1
            keywords = {k.arg for k in call.keywords}
            assert "timeout" in keywords, f"{path.relative_to(SRC.parent)}:{call.lineno}"
            if "httpx" in ast.unparse(call.func):
                timeout = next(k.value for k in call.keywords if k.arg == "timeout")
                assert "connect" in ast.unparse(timeout), f"{path}:{call.lineno} has no connect="
    assert seen >= 2


async def test_logs_never_hold_tokens_codes_phones_or_content(
    gql: GraphQLClient, caplog: pytest.LogCaptureFixture
) -> None:
    """SECURITY.md 29, over a whole session: login, registration, phone binding, a whisper,
    a refresh, a logout — with every logger at DEBUG."""
    content = "约在外滩见面 meet-me-at-the-bund"
    with caplog.at_level(logging.DEBUG):
        ann = await registered_user(gql, "ann")
        bob = await registered_user(gql, "bob")
        bind = "mutation ($c: String!) { bindPhone(code: $c) { errors { code } } }"
        await gql(bind, {"c": "dev:13800138000"}, token=ann["accessToken"])
        send = "mutation ($i: SendWhisperInput!) { sendWhisper(input: $i) { errors { code } } }"
        sent = await gql(
            send,
            {"i": {"recipientId": bob["me"]["id"], "content": content}},
            token=ann["accessToken"],
        )
        assert sent.data["sendWhisper"]["errors"] == []
        refresh = "mutation ($r: String!) { refreshToken(refreshToken: $r) { accessToken } }"
        renewed = await gql(refresh, {"r": ann["refreshToken"]})
        logout = "mutation ($r: String!) { logout(refreshToken: $r) { ok } }"
        await gql(logout, {"r": bob["refreshToken"]}, token=bob["accessToken"])
    logged = "\n".join(
        record.getMessage() + str(record.__dict__.get("args", "")) for record in caplog.records
    )
    assert len(caplog.records) >= 8  # each request was logged, just not its secrets
    secrets = [
        ann["accessToken"],
        ann["refreshToken"],
        bob["accessToken"],
        bob["refreshToken"],
        renewed.data["refreshToken"]["accessToken"],
        "13800138000",
        "约在外滩见面",
        "meet-me-at-the-bund",
    ]
    for secret in secrets:
        assert secret not in logged
