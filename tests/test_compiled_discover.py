"""`discover` on both paths, on one app and one index: the compiled one (phase 1 in Python,
the answer built by one statement in the same transaction) pinned to its path, the interpreter
forced by compiling nothing; byte-identical JSON but for `extensions.path`. Refusals answer
alike and count once: the rate limit, the DISCOVERY quota."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest
from starlette.applications import Starlette

from src.app import create_app
from src.config import Settings
from src.schema.fastpath import CompiledQueries
from tests.helpers import GraphQLClient, registered_user, running_app, sql
from tests.test_discovery import PEOPLE, UPDATE, Flaky, indexed
from tests.test_fastpath_shapes import same_json

# What Apollo Client sends (__typename everywhere), a fragment, aliases, a nested connection.
APOLLO = """query Discover($p: String, $f: DiscoveryFilter, $first: Int, $after: String) {
  discover(prompt: $p, filter: $f, first: $first, after: $after) {
    __typename
    edges { __typename cursor node { __typename score ...Hit } }
    info: pageInfo { __typename hasNextPage endCursor }
    degraded
  }
}
fragment Hit on DiscoveryHit {
  who: user { __typename id isPro
    profile { __typename nickname age city gender interests institution { name } }
    projects(first: 1) { edges { node { title } } pageInfo { hasNextPage } } }
}"""
PLAIN = """{ discover(prompt: "hiking", first: 2) { edges { cursor node { score
  user { id } } } pageInfo { hasNextPage endCursor } degraded } }"""
# The app, a client of it, and the registered people by name (each a wechatLogin answer).
World = tuple[Starlette, GraphQLClient, dict[str, Any]]
USED = "SELECT coalesce(sum(used), 0) FROM user_quotas WHERE kind = 'DISCOVERY'"
HITS = "SELECT coalesce(sum(hits), 0) FROM rate_limit_counters WHERE key LIKE 'discover:user%'"


class Hooked(Flaky):
    """The vector store with a hook run once right after a search (before the re-check)."""

    def __init__(self, real: Any):
        super().__init__(real)
        self.after_search: Callable[[], Awaitable[None]] | None = None

    def __getattr__(self, name: str) -> Any:
        call = super().__getattr__(name)
        if name != "search":
            return call

        async def search(*args: Any, **kwargs: Any) -> Any:
            found = await call(*args, **kwargs)
            hook, self.after_search = self.after_search, None
            if hook is not None:
                await hook()
            return found

        return search


@pytest.fixture
async def world(settings: Settings) -> AsyncIterator[World]:
    app = create_world_app(settings)
    async with running_app(app) as http:
        services = app.state.services
        object.__setattr__(services, "vectors", Hooked(services.vectors))
        gql = GraphQLClient(http)
        people = {"viewer": await registered_user(gql, "viewer", birthDate="1992-01-01")}
        for name, profile in PEOPLE.items():
            people[name] = await registered_user(gql, name)
            response = await gql(UPDATE, {"i": profile}, token=people[name]["accessToken"])
            assert response.data["updateProfile"]["errors"] == []
        await indexed(app)
        # A project to show, and a PRO member among them.
        await sql(
            app,
            "INSERT INTO user_projects (id, user_id, title, tags, created_at)"
            " VALUES (gen_random_uuid(), :u, 'Trail map', '{}', now())",
            u=people["pm_hiker"]["me"]["id"],
        )
        await sql(
            app,
            "INSERT INTO memberships (id, user_id, plan, valid_from, valid_until) VALUES"
            " (gen_random_uuid(), :u, 'PRO', now() - interval '1 day', now() + interval '1 day')",
            u=people["designer"]["me"]["id"],
        )
        yield app, gql, people


def create_world_app(settings: Settings) -> Starlette:
    return create_app(settings.model_copy(update={"vector_worker": True, "report_path": True}))


async def post(gql: GraphQLClient, token: str, query: str, variables: dict[str, Any]) -> bytes:
    response = await gql.http.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"authorization": f"Bearer {token}"},
    )
    return response.content


async def both(
    gql: GraphQLClient, token: str, query: str, variables: dict[str, Any] | None = None
) -> tuple[bytes, bytes]:
    """(compiled, interpreted) answers, each pinned to its path."""
    fast = await post(gql, token, query, variables or {})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(CompiledQueries, "plan_for", lambda *_: None)
        slow = await post(gql, token, query, variables or {})
    assert b'"path":"interpreted"' in slow, slow
    return fast, slow


def assert_same(fast: bytes, slow: bytes) -> None:
    """Byte-identical once whitespace is normalized (tests/test_fastpath_shapes.same_json):
    keys in the same order, the same values and types (1.0 is not 1)."""
    answers = [orjson.loads(fast), orjson.loads(slow)]
    assert [a.get("extensions", {}).pop("path", None) for a in answers] == [
        "compiled",
        "interpreted",
    ], f"fell back: {fast!r}"
    same_json(*answers)


@pytest.mark.parametrize(
    "variables",
    [
        {"p": "hiking"},
        {"p": "喜欢摄影的人", "first": 2},
        {"p": None},  # people like the viewer
        {"p": "music", "f": {"city": "Shanghai"}},
        {"p": "work", "f": {"gender": "MALE", "minAge": 20, "maxAge": 40}},
        {"p": "x", "f": {"excludeSwiped": False, "institutionId": None}},
        {"p": "nobody", "f": {"city": "Lhasa"}},  # no hits: edges [], endCursor null
    ],
    ids=str,
)
async def test_pages_alike(world: World, variables: dict[str, Any]) -> None:
    app, gql, people = world
    pool = app.state.services.read_pool
    before = pool.statements
    fast, slow = await both(gql, people["viewer"]["accessToken"], APOLLO, variables)
    assert_same(fast, slow)
    assert b'"errors"' not in fast
    # One transaction: the answer is built on phase 1's connection, not the read pool's.
    assert pool.statements == before


async def test_second_page_by_cursor_and_plain_shape(world: World) -> None:
    _, gql, people = world
    token = people["viewer"]["accessToken"]
    fast, slow = await both(gql, token, PLAIN)
    assert_same(fast, slow)
    first = await gql(APOLLO, {"p": "hiking", "first": 2}, token=token)
    after = first.data["discover"]["info"]["endCursor"]
    fast, slow = await both(gql, token, APOLLO, {"p": "hiking", "first": 2, "after": after})
    assert_same(fast, slow)
    second = await gql(APOLLO, {"p": "hiking", "first": 2, "after": after}, token=token)
    ids = {e["node"]["who"]["id"] for e in first.data["discover"]["edges"]}
    assert not ids & {e["node"]["who"]["id"] for e in second.data["discover"]["edges"]}


async def test_degraded_ranking(world: World) -> None:
    app, gql, people = world
    app.state.services.vectors.mode = "down"
    fast, slow = await both(gql, people["viewer"]["accessToken"], APOLLO, {"p": "摄影"})
    assert_same(fast, slow)
    # Written by the compiled statement (compact JSON text), the score as Python writes it.
    assert b'"degraded":true' in fast and b'"score":1.0' in fast


@pytest.mark.parametrize(
    ("hide", "undo"),
    [
        (
            "UPDATE users SET moderation_hold_at = now() WHERE id = :u",
            "UPDATE users SET moderation_hold_at = NULL WHERE id = :u",
        ),
        (
            "INSERT INTO user_blocks (blocker_id, blocked_id) VALUES (:u, :v)",
            "DELETE FROM user_blocks WHERE blocker_id = :u AND blocked_id = :v",
        ),
    ],
    ids=["held", "blocks the viewer"],
)
async def test_a_hit_hidden_after_the_search_is_left_out(
    world: World, hide: str, undo: str
) -> None:
    app, gql, people = world
    token, viewer = people["viewer"]["accessToken"], people["viewer"]["me"]["id"]
    vectors = app.state.services.vectors
    before = await gql(PLAIN, token=token)
    top = before.data["discover"]["edges"][0]["node"]["user"]["id"]

    async def hide_top() -> None:  # the index still has them; PostgreSQL no longer shows them
        await sql(app, hide, u=top, v=viewer)

    answers = []
    for path in ("compiled", "interpreted"):  # the same race on each path
        await sql(app, undo, u=top, v=viewer)
        vectors.after_search = hide_top
        with pytest.MonkeyPatch.context() as patch:
            if path == "interpreted":
                patch.setattr(CompiledQueries, "plan_for", lambda *_: None)
            answers.append(await post(gql, token, PLAIN, {}))
        assert vectors.after_search is None  # it ran, between the search and the answer
    assert_same(*answers)
    assert top.encode() not in answers[0] and b'"hasNextPage":false' in answers[0]


async def test_quota_exceeded_answers_alike_and_counts_once(world: World) -> None:
    app, gql, people = world
    token = people["viewer"]["accessToken"]
    await gql(PLAIN, token=token)
    await sql(app, "UPDATE user_quotas SET used = 30 WHERE kind = 'DISCOVERY'")
    hits = await sql(app, HITS)
    fast = await post(gql, token, APOLLO, {"p": "hiking"})
    assert await sql(app, HITS) == hits + 1  # the compiled path counted it, once
    assert await sql(app, USED) == 30
    assert b'"QUOTA_EXCEEDED"' in fast
    _, slow = await both(gql, token, APOLLO, {"p": "hiking"})
    assert_same(fast, slow)


@pytest.mark.parametrize(
    "variables",
    [
        {"p": "hiking", "after": "bm90LWEtY3Vyc29y"},  # a cursor of another search
        {"p": "hiking", "first": 0},
        {"p": "x" * 201},
        {"p": "hiking", "f": {"institutionId": "not-a-uuid"}},  # found after the quota
        {"p": "hiking", "f": {"minAge": 5}},
        {"p": "hiking", "f": {"city": 3}},  # graphql-core refuses the variable
    ],
    ids=str,
)
async def test_refusals_alike_counted_once(world: World, variables: dict[str, Any]) -> None:
    app, gql, people = world
    token = people["viewer"]["accessToken"]
    used, hits = await sql(app, USED), await sql(app, HITS)
    answer = await post(gql, token, APOLLO, variables)
    assert b'"path":"interpreted"' in answer and b'"errors"' in answer
    # Counted once, by the interpreter (as it counts: a bad filter is found after the quota).
    counted = (await sql(app, USED) - used, await sql(app, HITS) - hits)
    filter_found_late = "f" in variables and "city" not in variables["f"]
    assert counted == ((1, 1) if filter_found_late else (0, 0))
    _, slow = await both(gql, token, APOLLO, variables)
    assert answer == slow


async def test_rate_limited_answers_alike_and_counts_once(world: World) -> None:
    app, gql, people = world
    token = people["viewer"]["accessToken"]
    await gql(PLAIN, token=token)
    # Over the limit in the current window (the fixed window is 60 s: the requests below come
    # well within it, unless it turned just now — then once more).
    for _ in range(2):
        await sql(app, "UPDATE rate_limit_counters SET hits = 1000 WHERE key LIKE 'discover%'")
        hits, used = await sql(app, HITS), await sql(app, USED)
        fast = await post(gql, token, APOLLO, {"p": "hiking"})
        if b"RATE_LIMITED" in fast:
            break
    assert await sql(app, HITS) == hits + 1 and await sql(app, USED) == used
    _, slow = await both(gql, token, APOLLO, {"p": "hiking"})
    answers = [orjson.loads(fast), orjson.loads(slow)]
    for answer in answers:  # whole seconds left in the window: the two may be a second apart
        answer["errors"][0]["extensions"].pop("retryAfterSeconds")
    assert_same(*(orjson.dumps(a) for a in answers))


# The filter written in the query, whole or partly with variables; gender as an enum literal.
INLINE = """query ($min: Int, $c: String) {
  discover(prompt: "work", filter: {city: $c, gender: MALE, minAge: $min, maxAge: 40}) {
    edges { cursor node { score user { id profile { nickname gender age } } } }
    pageInfo { hasNextPage endCursor } degraded } }"""
LITERAL = """{ discover(prompt: "music", filter: {city: "Shanghai", excludeSwiped: false},
  first: 3) { edges { node { score user { id } } } pageInfo { endCursor } } }"""
# What the mini app's discovery screen sends on open: discover under an alias, beside others.
SCREEN = """query Screen($p: String, $f: DiscoveryFilter, $after: String) {
  me { id membership { plan } quotas { kind used limit } }
  found: discover(prompt: $p, filter: $f, first: 3, after: $after) {
    __typename edges { cursor node { score user { id profile { nickname } } } }
    pageInfo { hasNextPage endCursor } degraded }
  users(first: 2) { edges { node { id } } pageInfo { hasNextPage } }
  matches { edges { node { id } } }
}"""
ALIASED = """{ people: discover(prompt: "hiking", first: 2) { edges { node { user { id } } }
  info: pageInfo { endCursor } } }"""
TWICE = """{ a: discover(prompt: "hiking") { degraded }
  b: discover(prompt: "music") { degraded } }"""
FEED_HITS = "SELECT coalesce(sum(hits), 0) FROM rate_limit_counters WHERE key LIKE 'feed:user%'"


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        (INLINE, {"min": 20}),
        (INLINE, {"c": "Shanghai"}),  # $min unset: the field is left out, not null
        (LITERAL, {}),
        (ALIASED, {}),
        (SCREEN, {"p": "hiking"}),
        (SCREEN, {"p": None, "f": {"gender": "FEMALE"}}),
        (APOLLO.replace("discover(", "d: discover("), {"p": "摄影"}),
    ],
    ids=["inline+var", "inline, var unset", "literal", "aliased", "screen", "screen+f", "apollo"],
)
async def test_shapes_clients_send_compile(
    world: World, query: str, variables: dict[str, Any]
) -> None:
    app, gql, people = world
    token = people["viewer"]["accessToken"]
    pool = app.state.services.read_pool
    await gql(PLAIN, token=token)
    # me.quotas shows the count: each path starts from the same one.
    reset = "UPDATE user_quotas SET used = 5 WHERE kind = 'DISCOVERY'"
    await sql(app, reset)
    hits, before = await sql(app, HITS), pool.statements
    fast = await post(gql, token, query, variables)
    assert b'"path":"compiled"' in fast, fast
    assert b'"errors"' not in fast
    assert pool.statements == before  # one transaction, on phase 1's connection
    assert (await sql(app, USED), await sql(app, HITS) - hits) == (6, 1)
    await sql(app, reset)
    _, slow = await both(gql, token, query, variables)
    assert_same(fast, slow)


async def test_discover_twice_falls_back(world: World) -> None:
    _, gql, people = world
    answer = await post(gql, people["viewer"]["accessToken"], TWICE, {})
    assert b'"path":"interpreted"' in answer and b'"errors"' not in answer


@pytest.mark.parametrize(
    ("query", "variables", "counted"),
    [
        (SCREEN, {"p": "hiking", "f": {"minAge": 5}}, (1, 1, 1)),  # found after the quota
        (LITERAL.replace("excludeSwiped: false", "minAge: 5"), {}, (1, 1, 0)),
        (SCREEN, {"p": "x" * 201}, (0, 0, 0)),  # refused before anything is counted
        (SCREEN, {"p": "hiking", "after": "bm90LWEtY3Vyc29y"}, (0, 0, 0)),  # a bad cursor
        (SCREEN, {"p": "hiking", "f": {"city": 3}}, (0, 0, 0)),  # graphql-core refuses it
    ],
    ids=[
        "screen, bad filter",
        "inline bad filter",
        "screen, long prompt",
        "screen, bad cursor",
        "screen, bad var",
    ],
)
async def test_refusals_in_client_shapes_fall_back_counted_once(
    world: World, query: str, variables: dict[str, Any], counted: tuple[int, int, int]
) -> None:
    app, gql, people = world
    token = people["viewer"]["accessToken"]
    before = [await sql(app, q) for q in (USED, HITS, FEED_HITS)]
    answer = await post(gql, token, query, variables)
    assert b'"path":"interpreted"' in answer and b'"errors"' in answer, answer
    after = [await sql(app, q) for q in (USED, HITS, FEED_HITS)]
    assert tuple(a - b for a, b in zip(after, before, strict=True)) == counted
    _, slow = await both(gql, token, query, variables)
    assert answer == slow


async def test_quota_exceeded_beside_other_roots_answers_alike_counted_once(world: World) -> None:
    app, gql, people = world
    token = people["viewer"]["accessToken"]
    await gql(PLAIN, token=token)
    await sql(app, "UPDATE user_quotas SET used = 30 WHERE kind = 'DISCOVERY'")
    hits, feed = await sql(app, HITS), await sql(app, FEED_HITS)
    fast = await post(gql, token, SCREEN, {"p": "hiking"})
    assert b'"path":"compiled"' in fast and b'"QUOTA_EXCEEDED"' in fast, fast
    # Each counted once, by the compiled path; the quota untouched.
    assert (await sql(app, HITS), await sql(app, FEED_HITS)) == (hits + 1, feed + 1)
    assert await sql(app, USED) == 30
    _, slow = await both(gql, token, SCREEN, {"p": "hiking"})
    assert_same(fast, slow)
    # Three requests, discover's limit counted once each. The feed's by the interpreter only if
    # its resolver got that far: the roots run concurrently, and a failed non-null root stops them.
    assert await sql(app, HITS) == hits + 3 and await sql(app, FEED_HITS) in (feed + 2, feed + 3)


async def test_rate_limited_beside_other_roots_answers_alike_counted_once(world: World) -> None:
    app, gql, people = world
    token = people["viewer"]["accessToken"]
    await gql(PLAIN, token=token)
    for _ in range(2):  # as in test_rate_limited_answers_alike_and_counts_once
        await sql(app, "UPDATE rate_limit_counters SET hits = 1000 WHERE key LIKE 'discover%'")
        hits, used = await sql(app, HITS), await sql(app, USED)
        fast = await post(gql, token, SCREEN, {"p": "hiking"})
        if b"RATE_LIMITED" in fast:
            break
    assert b'"path":"compiled"' in fast, fast
    assert await sql(app, HITS) == hits + 1 and await sql(app, USED) == used
    _, slow = await both(gql, token, SCREEN, {"p": "hiking"})
    answers = [orjson.loads(fast), orjson.loads(slow)]
    for answer in answers:
        answer["errors"][0]["extensions"].pop("retryAfterSeconds")
    assert_same(*(orjson.dumps(a) for a in answers))
    assert answers[0]["errors"][0]["path"] == ["found"]
