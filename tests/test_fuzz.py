"""Property-based fuzzing of the whole API (SECURITY.md 7 and the issue's "prove it" run).

Queries and mutations are generated from the live schema by hypothesis-graphql — every root
field, so fields added later are fuzzed without touching this file — valid ones (positive mode)
and invalid ones (negative mode), and sent to the app as an anonymous caller and as a registered
user. Whatever comes, no answer is a 5xx, no error is an unexpected (INTERNAL_SERVER_ERROR) one,
and the server stays healthy: `{ health }` answers and no database connection stays checked out.

Bounded for CI; a longer run: `QQ_FUZZ_EXAMPLES=2000 .venv/bin/pytest tests/test_fuzz.py -q`.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from graphql import (
    DocumentNode,
    GraphQLScalarType,
    IntValueNode,
    Visitor,
    print_ast,
    specified_scalar_types,
    visit,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, from_schema, nodes
from starlette.applications import Starlette

from src.app import create_app
from src.config import Settings
from src.schema import schema
from tests.helpers import GraphQLClient, registered_user, running_app

EXAMPLES = int(os.environ.get("QQ_FUZZ_EXAMPLES", "60"))
GRAPHQL_SCHEMA = schema._schema
TRACEBACK = re.compile(r"Traceback|File \"|\.py\"?, line \d+|sqlalchemy|asyncpg", re.I)

# Strategies for the schema's own scalars (values as GraphQL literals); any scalar without one
# here (a later issue's) gets arbitrary strings, which is what an attacker would send anyway.
KNOWN_SCALARS: dict[str, st.SearchStrategy[Any]] = {
    "DateTime": st.datetimes(timezones=st.just(UTC)).map(datetime.isoformat),
    "Date": st.dates().map(str),
    "UUID": st.uuids().map(str),
}


def custom_scalars() -> dict[str, st.SearchStrategy[Any]]:
    found = {}
    for name, type_ in GRAPHQL_SCHEMA.type_map.items():
        if isinstance(type_, GraphQLScalarType) and name not in specified_scalar_types:
            found[name] = KNOWN_SCALARS.get(name, st.text(max_size=50)).map(nodes.String)
    return found


class _PageSizes(Visitor):
    """Most generated `first` values are far outside 1..100 and refused before execution; bring
    most into range so the resolvers behind connections get fuzzed too."""

    def __init__(self, keep_wild: bool):
        super().__init__()
        self.keep_wild = keep_wild

    def enter_argument(self, node: Any, *_: Any) -> Any:
        if (
            node.name.value == "first"
            and isinstance(node.value, IntValueNode)
            and not self.keep_wild
        ):
            value = 1 + abs(int(node.value.value)) % 5
            return node.__class__(name=node.name, value=IntValueNode(value=str(value)))
        return None


@functools.cache
def _generated(mode: Mode) -> st.SearchStrategy[Any]:
    return from_schema(
        GRAPHQL_SCHEMA,
        custom_scalars=custom_scalars(),
        mode=mode,
        print_ast=lambda node: node,  # type: ignore[arg-type,return-value]
    )


@st.composite
def documents(draw: st.DrawFn, mode: Mode) -> str:
    document: DocumentNode = draw(_generated(mode))
    keep_wild = draw(st.integers(0, 9)) == 0
    return print_ast(visit(document, _PageSizes(keep_wild)))


class Caller:
    """Sends documents as anonymous or as a registered user, logging in again if a fuzzed
    mutation ended the login (deleteAccount)."""

    def __init__(self, gql: GraphQLClient, registered: bool):
        self.gql = gql
        self.registered = registered
        self.token: str | None = None
        self.logins = 0

    async def login(self) -> None:
        if self.registered:
            self.logins += 1
            self.token = (await registered_user(self.gql, f"fuzz{self.logins}"))["accessToken"]

    async def send(self, query: str) -> httpx.Response:
        headers = {"authorization": f"Bearer {self.token}"} if self.token else {}
        return await self.gql.http.post("/graphql", json={"query": query}, headers=headers)


@pytest.fixture
def app(settings: Settings) -> Starlette:
    # The harness logs in again after a fuzzed deleteAccount, from the same address as the
    # fuzzed logins: lift the login limit (rate limits have tests of their own).
    return create_app(settings.model_copy(update={"rate_limits": {"login:ip": (100_000, 60)}}))


@pytest.fixture
async def fuzz_app(app: Starlette) -> AsyncIterator[tuple[Starlette, GraphQLClient]]:
    async with running_app(app) as http:
        yield app, GraphQLClient(http)


def check(response: httpx.Response, query: str) -> list[dict[str, Any]]:
    assert response.status_code < 500, (response.status_code, response.text, query)
    body = response.json()
    errors = body.get("errors") or [] if isinstance(body, dict) else []
    for error in errors:
        code = (error.get("extensions") or {}).get("code")
        assert code != "INTERNAL_SERVER_ERROR", (error, query)
        assert code, (error, query)  # every error is classified
        assert not TRACEBACK.search(error.get("message", "")), (error, query)
    return errors  # type: ignore[no-any-return]


FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # nothing written to the worktree; failures print their example
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # one app and database for the whole run, on purpose
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)


async def _fuzz_one(fuzz_app: Any, registered: bool, query: str) -> None:
    app, gql = fuzz_app
    caller: Caller | None = getattr(app.state, "fuzz_caller", None)
    if caller is None or caller.registered != registered:
        caller = app.state.fuzz_caller = Caller(gql, registered)
        await caller.login()
    errors = check(await caller.send(query), query)
    if registered and any(
        (e.get("extensions") or {}).get("code") == "UNAUTHENTICATED" for e in errors
    ):
        await caller.login()
    health = await caller.send("{ health }")
    assert health.json()["data"] == {"health": "ok"}
    assert app.state.services.engine.pool.checkedout() == 0


@pytest.mark.parametrize("registered", [False, True], ids=["anonymous", "registered"])
@FUZZ_SETTINGS
@given(query=documents(Mode.POSITIVE))
async def test_valid_documents(fuzz_app: Any, registered: bool, query: str) -> None:
    await _fuzz_one(fuzz_app, registered, query)


@pytest.mark.parametrize("registered", [False, True], ids=["anonymous", "registered"])
@FUZZ_SETTINGS
@given(query=documents(Mode.NEGATIVE))
async def test_invalid_documents(fuzz_app: Any, registered: bool, query: str) -> None:
    await _fuzz_one(fuzz_app, registered, query)
