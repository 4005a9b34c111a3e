"""Rate limits per IP and per account, shared through PostgreSQL (SECURITY.md 9)."""

from __future__ import annotations

import socket

import pytest
from pydantic import SecretStr

from src.app import create_app
from src.config import Settings
from tests.helpers import (
    LOGIN,
    GraphQLClient,
    count_statements,
    registered_user,
    running_app,
    sql,
)


async def login_codes(gql: GraphQLClient, n: int, headers: dict[str, str] | None = None) -> list:
    results = []
    for i in range(n):
        response = await gql(LOGIN, {"code": f"dev:user{i}"}, headers=headers)
        errors = response.data["wechatLogin"]["errors"]
        results.append(errors[0]["code"] if errors else "OK")
    return results


async def test_login_is_limited_per_ip_with_a_retry_time(settings: Settings) -> None:
    limited = settings.model_copy(update={"rate_limits": {"login:ip": (3, 60)}})
    async with running_app(create_app(limited)) as http:
        gql = GraphQLClient(http)
        assert await login_codes(gql, 4) == ["OK", "OK", "OK", "RATE_LIMITED"]
        response = await gql(LOGIN, {"code": "dev:late"})
        error = response.data["wechatLogin"]["errors"][0]
        assert 1 <= error["retryAfterSeconds"] <= 60


async def test_client_ip_comes_only_from_the_configured_proxy_header(settings: Settings) -> None:
    limit = {"rate_limits": {"login:ip": (2, 60)}}
    # Not configured: a spoofed X-Forwarded-For changes nothing, all share the socket's IP.
    async with running_app(create_app(settings.model_copy(update=limit))) as http:
        gql = GraphQLClient(http)
        spoofed = [{"x-forwarded-for": f"10.0.0.{i}"} for i in range(3)]
        results = [(await login_codes(gql, 1, h))[0] for h in spoofed]
        assert results == ["OK", "OK", "RATE_LIMITED"]
    # Configured: each client behind the proxy has its own budget.
    proxied = settings.model_copy(update={**limit, "trusted_proxy_header": "x-forwarded-for"})
    async with running_app(create_app(proxied)) as http:
        gql = GraphQLClient(http)
        for i in range(3):
            # The proxy appends the address it saw; whatever the client sent comes before it.
            headers = {"x-forwarded-for": f"203.0.113.9, 198.51.100.{i}"}
            assert await login_codes(gql, 2, headers) == ["OK", "OK"]


async def test_redis_backend_when_configured(settings: Settings) -> None:
    import socket

    import pytest

    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=0.5).close()
    except OSError:
        pytest.skip("no Redis on 127.0.0.1:6379 (the PostgreSQL backend is the default)")
    configured = settings.model_copy(
        update={
            "redis_url": SecretStr("redis://127.0.0.1:6379/15"),
            "rate_limits": {"login:ip": (2, 60)},
        }
    )
    app = create_app(configured)
    async with running_app(app) as http:
        await app.state.services.rate_limiter.redis.flushdb()
        assert await login_codes(GraphQLClient(http), 3) == ["OK", "OK", "RATE_LIMITED"]
        assert await sql(app, "SELECT count(*) FROM rate_limit_counters") == 0
        await app.state.services.rate_limiter.redis.flushdb()


async def test_aliases_of_discovery_and_whispers_count_one_by_one(settings: Settings) -> None:
    """Five aliases are five requests: a document cannot buy more than the limit allows."""
    limits = {"rate_limits": {"discover:user": (3, 60), "whisper:user": (3, 60)}}
    app = create_app(settings.model_copy(update=limits))
    async with running_app(app) as http:
        gql = GraphQLClient(http)
        ann = await registered_user(gql, "ann")
        bob = await registered_user(gql, "bob")
        discover = " ".join(
            f'a{i}: discover(prompt: "x", first: 1) {{ degraded }}' for i in range(5)
        )
        response = await gql("{ " + discover + " }", token=ann["accessToken"])
        # The first refusal nulls the whole (non-null) answer; every alias was counted anyway.
        assert response.error_codes == ["RATE_LIMITED"], response.errors
        assert 1 <= response.errors[0]["extensions"]["retryAfterSeconds"] <= 60
        hits = "SELECT sum(hits) FROM rate_limit_counters WHERE key LIKE 'discover:user%'"
        # Past the limit every alias counts; once a refusal has nulled the answer, graphql-core
        # may cancel an alias still waiting for its hit, so the last one is not always counted.
        assert await sql(app, hits) >= 4

        whisper = (
            'sendWhisper(input: {{recipientId: "{to}", content: "hi {i}"}})'
            " {{ whisper {{ id }} errors {{ code retryAfterSeconds }} }}"
        )
        fields = " ".join(f"w{i}: " + whisper.format(to=bob["me"]["id"], i=i) for i in range(5))
        response = await gql("mutation { " + fields + " }", token=ann["accessToken"])
        results = [response.data[f"w{i}"]["errors"] for i in range(5)]
        assert [r[0]["code"] if r else "OK" for r in results] == ["OK"] * 3 + ["RATE_LIMITED"] * 2
        assert await sql(app, "SELECT count(*) FROM whispers") == 3


async def test_ai_requests_are_limited_per_account_alias_by_alias(settings: Settings) -> None:
    """aiChat, aiSearch and profileSuggestions share `ai:user`, on top of the daily quota."""
    app = create_app(settings.model_copy(update={"rate_limits": {"ai:user": (3, 60)}}))
    async with running_app(app) as http:
        gql = GraphQLClient(http)
        ann = await registered_user(gql, "ann")
        chats = " ".join(
            f'c{i}: aiChat(message: "hiking friends") {{ usedModel errors {{ code }} }}'
            for i in range(4)
        )
        response = await gql("mutation { " + chats + " }", token=ann["accessToken"])
        codes = [response.data[f"c{i}"]["errors"] for i in range(4)]
        assert [c[0]["code"] if c else "OK" for c in codes] == ["OK"] * 3 + ["RATE_LIMITED"]
        response = await gql("{ profileSuggestions { field } }", token=ann["accessToken"])
        assert response.error_codes == ["RATE_LIMITED"], response.errors
        hits = "SELECT sum(hits) FROM rate_limit_counters WHERE key LIKE 'ai:user%'"
        assert await sql(app, hits) == 5


@pytest.mark.parametrize("backend", ["postgres", "redis"])
async def test_browsing_the_feed_is_limited_on_both_paths(settings: Settings, backend: str) -> None:
    """The `users` feed served every page to anyone logged in (550 a second in the issue):
    now `feed:user`, counted alias by alias, compiled path or not. With the counters in
    PostgreSQL the compiled statement counts its own hit (still one statement a page)."""
    update: dict[str, object] = {"rate_limits": {"feed:user": (3, 60)}}
    if backend == "redis":
        try:
            socket.create_connection(("127.0.0.1", 6379), timeout=0.5).close()
        except OSError:
            pytest.skip("no Redis on 127.0.0.1:6379")
        update["redis_url"] = SecretStr("redis://127.0.0.1:6379/15")
    app = create_app(settings.model_copy(update=update))
    compiled = "{ users(first: 1) { edges { cursor } } }"
    interpreted = "{ users(first: 1) { edges { node { ...F } } } } fragment F on User { id }"
    aliased = "{ a: users(first: 1) { edges { cursor } } b: users(first: 1) { edges { cursor } } }"
    async with running_app(app) as http:
        if backend == "redis":
            await app.state.services.rate_limiter.redis.flushdb()
        gql = GraphQLClient(http)
        ann = (await registered_user(gql, "ann"))["accessToken"]
        bob = (await registered_user(gql, "bob"))["accessToken"]
        statements = app.state.services.read_pool.statements
        with count_statements(app.state.services.engine) as main:
            answers = [await gql(compiled, token=ann) for _ in range(3)]
        assert main.count == 0  # each of these pages was counted by its own compiled statement
        answers.append(await gql(compiled, token=ann))
        # Each page one compiled statement; over the limit the interpreter answers.
        assert app.state.services.read_pool.statements - statements in (3, 4)
        assert [a.error_codes for a in answers] == [[]] * 3 + [["RATE_LIMITED"]]
        assert 1 <= answers[3].errors[0]["extensions"]["retryAfterSeconds"] <= 60
        assert (await gql(aliased, token=bob)).error_codes == []
        assert (await gql(interpreted, token=bob)).error_codes == []
        assert (await gql(aliased, token=bob)).error_codes == ["RATE_LIMITED"]
        if backend == "redis":
            assert await sql(app, "SELECT count(*) FROM rate_limit_counters") == 0
            await app.state.services.rate_limiter.redis.flushdb()
