"""The compiled feed takes the shapes real clients send — Apollo's `__typename` everywhere,
Relay's named fragments, inline fragments, aliases, variables with defaults, @include/@skip, an
operation chosen among several — and answers each exactly as Strawberry does. Every test runs
both paths (COMPILED_QUERIES on and off) and pins the path from `extensions.path`, so a shape
that silently falls back to the interpreter fails here."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from bench.shapes import SHAPES, Shape
from src.app import create_app
from src.config import Settings
from tests.helpers import count_statements, running_app
from tests.test_fastpath import seeded  # noqa: F401 - the fixture: 30 demo users and variety


async def both(
    settings: Settings, token: str, body: dict[str, Any], headers: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Each path's answer: its JSON, which path said it answered, statements on each pool."""
    answers = []
    for compiled in (True, False):
        app = create_app(settings.model_copy(update={"compiled_queries": compiled}))
        async with running_app(app) as http:
            services = app.state.services
            before = services.read_pool.statements
            with count_statements(services.engine) as main:
                response = await http.post(
                    "/graphql",
                    json=body,
                    headers={"authorization": f"Bearer {token}", **(headers or {})},
                )
            doc = orjson.loads(response.content)
            path = doc.get("extensions", {}).pop("path", None)
            answers.append(
                {
                    "doc": doc,
                    "path": path,
                    "compiled statements": services.read_pool.statements - before,
                    "orm statements": main.count,
                }
            )
    return answers


def same_json(a: dict[str, Any], b: dict[str, Any]) -> None:
    """The same document to the byte once whitespace is normalized: keys in the same order,
    the same values and types (JSON text from either path may differ in spacing)."""
    x, y = orjson.dumps(a), orjson.dumps(b)
    if x != y:  # show where they part: answers are long
        i = next((i for i, pair in enumerate(zip(x, y, strict=False)) if pair[0] != pair[1]), 0)
        print("compiled:   ", x[max(0, i - 300) : i + 200])
        print("interpreted:", y[max(0, i - 300) : i + 200])
    assert x == y


def assert_compiled(settings: Settings, fast: dict[str, Any], slow: dict[str, Any]) -> None:
    assert fast["path"] == "compiled", "fell back to the interpreter"
    assert (fast["compiled statements"], fast["orm statements"]) == (1, 0)
    assert slow["path"] == "interpreted"
    same_json(fast["doc"], slow["doc"])
    assert "errors" not in fast["doc"]


@pytest.fixture
def on(seeded: tuple) -> tuple[Settings, str]:  # noqa: F811
    settings, token, _ = seeded
    return settings.model_copy(update={"report_path": True}), token


@pytest.mark.parametrize("shape", SHAPES, ids=[s.name for s in SHAPES])
async def test_each_client_shape_is_compiled_alike(on: tuple, shape: Shape) -> None:
    settings, token = on
    fast, slow = await both(settings, token, shape.body())
    assert_compiled(settings, fast, slow)
    edges = fast["doc"]["data"]["users"]["edges"]
    assert len(edges) == 20 and all(e["node"]["profile"] for e in edges)


def _shape(query: str, variables: dict[str, Any] | None = None, op: str | None = None) -> Any:
    return pytest.param(Shape("", query, variables or {}, op), id=query[:60])


OTHER_SHAPES = [
    _shape(
        "{ users(first: 3) { edges { node { ... on User { id profile { ... on Profile"
        " { nickname } } } } } } }"
    ),
    _shape(
        "{ users(first: 3) { edges { node { ... { id } ... @include(if: true) { isPro } } } } }"
    ),
    # a connection asked for nothing its rows give (found by tests/test_compiled_properties.py)
    _shape("{ users(first: 3) { __typename edges @skip(if: true) { cursor } } }"),
    # the same response key from several places merges, in first-seen order
    _shape(
        "{ users(first: 4) { edges { node { id profile { nickname } ...F profile { city } } } } }"
        " fragment F on User { isPro id profile { bio nickname } }"
    ),
    _shape(
        "{ feed: users(first: 2) { t: __typename edges { n: node { kind: __typename key: id"
        " p: profile { __typename n: nickname } } } info: pageInfo { more: hasNextPage } } }"
    ),
    *[
        _shape(
            "query Feed($p: Boolean!, $lite: Boolean = false, $n: Int = 3) {"
            " users(first: $n) { edges { node { id projects(first: 2) @include(if: $p)"
            " { edges { node { title } } } profile @skip(if: $lite) { nickname }"
            " ...Pro @skip(if: $lite) } } } } fragment Pro on User { isPro }",
            variables,
        )
        for variables in (
            {"p": True},
            {"p": False},
            {"p": True, "lite": True},
            {"p": False, "lite": False, "n": 5},
        )
    ],
    # an operation chosen among several (a query, another query, a mutation)
    *[
        _shape(
            "query A { users(first: 1) { edges { node { id } } } }"
            " query B($n: Int = 2, $after: String = null) { users(first: $n, after: $after)"
            " { edges { cursor } pageInfo { endCursor } } }"
            ' mutation C { markWhisperRead(id: "x") { errors { code } } }',
            {},
            op,
        )
        for op in ("A", "B")
    ],
]


@pytest.mark.parametrize("shape", OTHER_SHAPES)
async def test_fragments_directives_aliases_and_operations_compile_alike(
    on: tuple, shape: Shape
) -> None:
    settings, token = on
    fast, slow = await both(settings, token, shape.body())
    assert_compiled(settings, fast, slow)


async def test_pages_follow_in_the_apollo_shape(on: tuple) -> None:
    """A cursor from one page of the Apollo shape pages on, on both paths alike."""
    settings, token = on
    apollo = SHAPES[1]
    after = None
    for _ in range(2):
        body = {**apollo.body(), "variables": {"first": 7, "after": after, "projects": 2}}
        fast, slow = await both(settings, token, body)
        assert_compiled(settings, fast, slow)
        after = fast["doc"]["data"]["users"]["pageInfo"]["endCursor"]
    assert after


FALLBACKS = [
    # a root field the compiler has no declaration for, beside the feed
    _shape("{ users(first: 2) { edges { node { id } } } appConfig { minAge } }"),
    # a field of `me` not declared for the compiler (the reports)
    _shape("{ me { id reports { edges { cursor } } } }"),
    # __typename of the root operation type
    _shape("{ __typename users(first: 2) { edges { cursor } } }"),
    # a @skip variable that is not given (the interpreter reports it)
    _shape("query ($s: Boolean!) { users(first: 2) { edges { node { id @skip(if: $s) } } } }"),
    # a page size over the limit (the interpreter's readable error)
    _shape("query ($n: Int = 500) { users(first: $n) { edges { cursor } } }"),
]


@pytest.mark.parametrize("shape", FALLBACKS)
async def test_what_it_cannot_compile_the_interpreter_answers_and_says_so(
    on: tuple, shape: Shape
) -> None:
    settings, token = on
    fast, slow = await both(settings, token, shape.body())
    assert fast["path"] == slow["path"] == "interpreted"
    assert fast["compiled statements"] == 0
    same_json(fast["doc"], slow["doc"])
