"""Property-based fuzzing of the whole API (SECURITY.md 7 and the issue's "prove it" run).

Queries and mutations are generated from the live schema by hypothesis-graphql — every root
field, so fields added later are fuzzed without touching this file — valid ones (positive mode)
and invalid ones (negative mode), and sent to the app as an anonymous caller and as a registered
user. Whatever comes, no answer is a 5xx, no error is an unexpected (INTERNAL_SERVER_ERROR) one,
and the server stays healthy: `{ health }` answers and no database connection stays checked out.

A third generator builds adversarial documents (fragment chains and cycles, deep nesting, many
aliases, huge variable trees), each to be answered within a time bound.

Bounded for CI; a longer run: `QQ_FUZZ_EXAMPLES=2000 QQ_FUZZ_ADVERSARIAL=2000 .venv/bin/pytest
tests/test_fuzz.py -q` (`QQ_FUZZ_BOUND_S` sets the bound, 1 CPU second a request by default).
"""

from __future__ import annotations

import asyncio
import functools
import gc
import os
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
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
    return errors


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
    await no_connection_left(app)


async def no_connection_left(app: Starlette) -> None:
    """No request left a connection checked out. The app's own background work (the transcript
    purge, once a minute) may hold one for a moment: wait for it."""
    for _ in range(40):
        if app.state.services.engine.pool.checkedout() == 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("a database connection stays checked out")


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


# Adversarial documents (SECURITY.md 32; issue 16): shapes built to make a server do more work
# than their size suggests — fragment chains that double at each level, fragment cycles, deep
# nesting, many aliases, the same name selected over and over, huge variable trees. Each must be
# answered (refused, mostly) within BOUND_S, with a 4xx or classified errors, the server healthy.
ADVERSARIAL = int(os.environ.get("QQ_FUZZ_ADVERSARIAL", "30"))
BOUND_S = float(os.environ.get("QQ_FUZZ_BOUND_S", "1.0"))  # CPU seconds per request
ROOTS = (
    "{ users(first: 1) { edges { node { %s } } } }",
    '{ user(id: "00000000-0000-4000-8000-000000000000") { %s } }',
    "query Q { me { id } users { edges { node { %s } } } }",
)
BASES = (
    "id",
    "id isPro",
    "profile { nickname city }",
    "__typename",
    "projects { edges { cursor } }",
)


@st.composite
def fragment_chains(draw: st.DrawFn) -> tuple[str, str | None]:
    """F0 .. Fn, each spreading the one before `fan` times: fan^n selections once expanded."""
    levels, fan = draw(st.integers(1, 40)), draw(st.integers(1, 4))
    fragments = [f"fragment F0 on User {{ {draw(st.sampled_from(BASES))} }}"] + [
        f"fragment F{i} on User {{ {' '.join([f'...F{i - 1}'] * fan)} }}"
        for i in range(1, levels + 1)
    ]
    root = draw(st.sampled_from(ROOTS)) % f"...F{levels}"
    return f"{root} {' '.join(fragments)}", None


@st.composite
def fragment_cycles(draw: st.DrawFn) -> tuple[str, str | None]:
    size = draw(st.integers(1, 30))
    fragments = [
        f"fragment C{i} on User {{ id ...C{(i + 1) % size} ...C{draw(st.integers(0, size - 1))} }}"
        for i in range(size)
    ]
    return f"{draw(st.sampled_from(ROOTS)) % '...C0'} {' '.join(fragments)}", None


@st.composite
def deep_nesting(draw: st.DrawFn) -> tuple[str, str | None]:
    depth = draw(st.integers(1, 400))
    shape = draw(st.sampled_from(["fields", "inline", "list", "object"]))
    if shape == "fields":
        return "{ " + "me { " * depth + "id" + " }" * depth + " }", None
    if shape == "inline":
        return "{ " + "... on Query { " * depth + "health" + " }" * depth + " }", None
    if shape == "list":
        return "{ users(after: " + "[" * depth + "]" * depth + ") { edges { cursor } } }", None
    nested = "{city: " * depth + '"x"' + "}" * depth
    return f"{{ discover(filter: {nested}) {{ degraded }} }}", None


@st.composite
def many_aliases(draw: st.DrawFn) -> tuple[str, str | None]:
    count = draw(st.integers(1, 700))
    field = draw(
        st.sampled_from(["health", "users(first: 1) { edges { cursor } }", "me { id }", "id"])
    )
    if field == "id":  # the same name, no alias: what field merging compares pairwise
        return ROOTS[0] % " ".join(["id"] * count), None
    return "{ " + " ".join(f"a{i}: {field}" for i in range(count)) + " }", None


@st.composite
def many_fragments(draw: st.DrawFn) -> tuple[str, str | None]:
    count = draw(st.integers(1, 150))
    used = draw(st.integers(0, count))
    spreads = " ".join(f"...U{i}" for i in range(used)) or "id"
    fragments = " ".join(
        f"fragment U{i} on User {{ id profile {{ nickname }} }}" for i in range(count)
    )
    return f"{ROOTS[0] % spreads} {fragments}", None


@st.composite
def variable_trees(draw: st.DrawFn) -> tuple[str, str | None]:
    """Raw JSON for `variables`, written by hand: json.dumps itself fails on deep values."""
    size = draw(st.integers(1, 200_000))
    shape = draw(st.sampled_from(["deep list", "deep object", "wide list", "wide object"]))
    query = "query ($v: [String], $f: DiscoveryFilter) { health }"
    if shape == "deep list":
        return query, '{"v": ' + "[" * size + "]" * size + "}"
    if shape == "deep object":
        return query, '{"f": ' + '{"city": ' * size + '"x"' + "}" * size + "}"
    if shape == "wide list":
        return query, '{"v": [' + ",".join(['"x"'] * size) + "]}"
    return query, '{"f": {' + ",".join(f'"k{i}": {i}' for i in range(size)) + "}}"


def adversarial() -> st.SearchStrategy[tuple[str, str | None]]:
    return st.one_of(
        fragment_chains(),
        fragment_cycles(),
        deep_nesting(),
        many_aliases(),
        many_fragments(),
        variable_trees(),
    )


@pytest.mark.parametrize("registered", [False, True], ids=["anonymous", "registered"])
@settings(FUZZ_SETTINGS, max_examples=ADVERSARIAL)
@given(case=adversarial())
async def test_adversarial_documents_are_answered_in_time(
    fuzz_app: Any, registered: bool, case: tuple[str, str | None]
) -> None:
    app, gql = fuzz_app
    caller: Caller | None = getattr(app.state, "fuzz_caller", None)
    if caller is None or caller.registered != registered:
        caller = app.state.fuzz_caller = Caller(gql, registered)
        await caller.login()
    query, variables = case
    body = (
        '{"query": '
        + orjson.dumps(query).decode()
        + ', "variables": '
        + (variables or "null")
        + "}"
    )
    headers = {"content-type": "application/json"}
    if caller.token:
        headers["authorization"] = f"Bearer {caller.token}"
    # The app runs in this thread: its CPU time is the work the request caused, whatever else
    # the machine is doing; the wall clock only catches waits (a generous multiple of it).
    # The collector runs before, not during: a full pass over this test process's heap (earlier
    # examples' garbage, every fixture) is not the request's work.
    gc.collect()
    gc.disable()
    try:
        cpu, wall = time.thread_time(), time.perf_counter()
        response = await gql.http.post("/graphql", content=body.encode(), headers=headers)
        cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
    finally:
        gc.enable()
    assert cpu < BOUND_S and wall < 10 * BOUND_S, (cpu, wall, query[:300], (variables or "")[:100])
    if response.status_code < 400:
        check(response, query[:300])
    else:
        assert response.status_code < 500, (response.status_code, response.text[:300])
    health = await caller.send("{ health }")
    assert health.json()["data"] == {"health": "ok"}
    await no_connection_left(app)
