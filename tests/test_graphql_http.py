"""GraphQL over HTTP as the spec draft says: media types, GET, the checks on the request's
parameters, operation selection, subscriptions refused over HTTP; the compiled path and the
interpreter answer every request alike (src/graphql_http.py)."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette

from src.app import create_app
from src.config import Settings
from tests.helpers import GraphQLClient, registered_user, running_app, sql

GR = "application/graphql-response+json"
JSON = "application/json"
FEED = "query Feed($n: Int) { users(first: $n) { edges { node { id } } pageInfo { hasNextPage } } }"

# (name, body): requests that cannot be executed, whatever the path behind.
MALFORMED: list[tuple[str, bytes]] = [
    ("not JSON", b'{ "not a JSON'),
    ("empty body", b""),
    ("array (batch)", b'[{"query": "{ health }"}]'),
    ("JSON string", b'"{ health }"'),
    ("no query", b'{"qeury": "{ health }"}'),
    *[
        (f"query {value}", b'{"query": %s}' % value)
        for value in (b"0", b"false", b"[]", b'{"a": 1}')
    ],
    *[
        (f"operationName {value}", b'{"query": "{ health }", "operationName": %s}' % value)
        for value in (b"0", b"false", b"[]", b"{}")
    ],
    *[
        (f"variables {value}", b'{"query": "{ health }", "variables": %s}' % value)
        for value in (b"[]", b"false", b'""', b"0", b'"{}"')
    ],
    *[
        (f"extensions {value}", b'{"query": "{ health }", "extensions": %s}' % value)
        for value in (b"[]", b"false", b'"x"', b"0")
    ],
]


def post(http: httpx.AsyncClient, body: bytes | dict[str, Any], accept: str | None = None, **kw):  # type: ignore[no-untyped-def]
    headers = {"content-type": JSON, **kw.pop("headers", {})}
    if accept:
        headers["accept"] = accept
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return http.post("/graphql", content=content, headers=headers, **kw)


@pytest.mark.parametrize(
    ("accept", "media"),
    [
        (GR, GR),
        (JSON, JSON),
        ("*/*", JSON),
        (None, JSON),
        (f"{GR}, {JSON};q=0.9", GR),
        (f"{GR};q=0.5, {JSON}", JSON),
        ("text/html", JSON),
    ],
)
async def test_media_type_follows_accept(
    http: httpx.AsyncClient, accept: str | None, media: str
) -> None:
    response = await post(http, {"query": "{ health }"}, accept)
    assert response.status_code == 200
    assert response.headers["content-type"] == f"{media}; charset=utf-8"
    assert response.json()["data"] == {"health": "ok"}


async def test_malformed_requests_are_refused(http: httpx.AsyncClient) -> None:
    # 400 under either media type, with a GraphQL error body and no `data`.
    for name, body in MALFORMED:
        for accept, status in ((JSON, 400), (GR, 400)):
            response = await post(http, body, accept)
            assert response.status_code == status, (name, accept, response.text)
            assert response.headers["content-type"].startswith(accept)
            answer = response.json()
            assert "data" not in answer
            assert answer["errors"][0]["extensions"]["code"] == "BAD_REQUEST", (name, answer)
            assert answer["errors"][0]["message"]


async def test_one_behaviour_on_the_compiled_path_and_the_interpreter(
    settings: Settings,
) -> None:
    answers = {}
    token = None
    for compiled in (True, False):
        app = create_app(settings.model_copy(update={"compiled_queries": compiled}))
        async with running_app(app) as http:
            token = token or (await registered_user(GraphQLClient(http), "viewer"))["accessToken"]
            auth = {"authorization": f"Bearer {token}"}
            seen = []
            for _, body in MALFORMED:
                feed = body.replace(b"{ health }", FEED.encode())
                for accept in (JSON, GR):
                    response = await post(http, feed, accept, headers=auth)
                    seen.append((response.status_code, response.json()))
            before = app.state.services.read_pool.statements
            response = await http.get(
                "/graphql", params={"query": FEED, "variables": '{"n": 1}'}, headers=auth
            )
            seen.append((response.status_code, response.json()))
            assert response.json()["data"]["users"]["pageInfo"] == {"hasNextPage": False}
            if compiled:  # a GET takes the compiled path too
                assert app.state.services.read_pool.statements == before + 1
            answers[compiled] = seen
    assert answers[True] == answers[False]


async def test_get_runs_queries(http: httpx.AsyncClient) -> None:
    response = await http.get(
        "/graphql",
        params={
            "query": "query Q($n: String!) { __type(name: $n) { name } }",
            "variables": '{"n": "Query"}',
            "operationName": "Q",
        },
        headers={"accept": GR},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == f"{GR}; charset=utf-8"
    assert response.json()["data"] == {"__type": {"name": "Query"}}


async def test_get_never_runs_a_mutation(app: Starlette, http: httpx.AsyncClient) -> None:
    login = 'mutation { wechatLogin(code: "dev:mallory") { accessToken } }'
    for accept in (JSON, GR):
        response = await http.get("/graphql", params={"query": login}, headers={"accept": accept})
        assert response.status_code == 405
        assert response.headers["allow"] == "POST"
        assert response.json()["errors"][0]["extensions"]["code"] == "METHOD_NOT_ALLOWED"
    # Nor when a query and a mutation share the document and the mutation is named.
    both = "query Q { health } " + login.replace("mutation", "mutation M")
    response = await http.get("/graphql", params={"query": both, "operationName": "M"})
    assert response.status_code == 405
    assert await sql(app, "SELECT count(*) FROM users") == 0


async def test_get_requests_are_checked_like_posts(http: httpx.AsyncClient) -> None:
    for params in ({}, {"query": "{ health }", "variables": "{nope"}, {"query": ""}):
        response = await http.get("/graphql", params=params, headers={"accept": GR})
        assert response.status_code == 400, params
        assert "data" not in response.json()


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", f"{JSON}; charset=latin-1"],
)
async def test_other_content_types_are_refused(
    http: httpx.AsyncClient, content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = await http.post("/graphql", content=b'{"query": "{ health }"}', headers=headers)
    assert response.status_code == 415
    assert response.json()["errors"][0]["extensions"]["code"] == "UNSUPPORTED_MEDIA_TYPE"


async def test_utf8_charset_is_accepted(http: httpx.AsyncClient) -> None:
    response = await post(
        http, {"query": "{ health }"}, headers={"content-type": f"{JSON}; charset=UTF-8"}
    )
    assert response.json()["data"] == {"health": "ok"}


TWO = 'query A { health } mutation B { logout(refreshToken: "x") { ok } }'


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"query": TWO}, "OPERATION_NAME_REQUIRED"),
        ({"query": TWO, "operationName": "C"}, "OPERATION_NOT_FOUND"),
        ({"query": "{ health }", "operationName": "A"}, "OPERATION_NOT_FOUND"),
        ({"query": "query A { health } query A { me { id } }"}, "OPERATION_NAME_REQUIRED"),
    ],
)
async def test_operation_selection(
    http: httpx.AsyncClient, body: dict[str, Any], code: str
) -> None:
    for accept, status in ((JSON, 200), (GR, 400)):
        response = await post(http, body, accept)
        assert response.status_code == status
        answer = response.json()
        assert "data" not in answer
        assert [e["extensions"]["code"] for e in answer["errors"]] == [code]


async def test_operation_name_selects_the_operation(http: httpx.AsyncClient) -> None:
    response = await post(http, {"query": TWO, "operationName": "A"})
    assert response.json()["data"] == {"health": "ok"}
    response = await post(http, {"query": TWO, "operationName": "B"})
    assert list(response.json()["data"]) == ["logout"]


async def test_subscription_over_http_says_to_use_the_websocket(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    subscription = {"query": "subscription { whisperReceived { id } }"}
    with caplog.at_level(logging.INFO):
        for accept, status in ((JSON, 200), (GR, 400)):
            response = await post(http, subscription, accept)
            assert response.status_code == status
            error = response.json()["errors"][0]
            assert error["extensions"]["code"] == "WEBSOCKET_REQUIRED"
            assert "websocket" in error["message"]
        response = await http.get("/graphql", params=subscription)
        assert response.json()["errors"][0]["extensions"]["code"] == "WEBSOCKET_REQUIRED"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        ("{ health ", None),  # syntax
        ("{ nope }", None),  # validation
        ("query ($n: Int!) { users(first: $n) { edges { cursor } } }", {"n": "x"}),  # coercion
        ("query ($n: Int!) { users(first: $n) { edges { cursor } } }", None),  # missing
        ("{ users(first: 500) { edges { cursor } } }", None),  # page size limit
    ],
)
async def test_request_errors_have_no_data(
    http: httpx.AsyncClient, query: str, variables: dict[str, Any] | None
) -> None:
    for accept, status in ((JSON, 200), (GR, 400)):
        response = await post(http, {"query": query, "variables": variables}, accept)
        assert response.status_code == status, response.text
        answer = response.json()
        assert "data" not in answer, answer
        assert answer["errors"]


async def test_execution_errors_keep_data_and_200(http: httpx.AsyncClient) -> None:
    # Not logged in: the non-null field fails, so `data` is null; the request itself was fine.
    query = "{ health whispersReceived(first: 1) { edges { cursor } } }"
    response = await post(http, {"query": query}, GR)
    assert response.status_code == 200
    answer = response.json()
    assert "data" in answer
    assert answer["data"] is None
    assert answer["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_multipart_refusals_are_graphql_error_bodies(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/graphql",
        files={"operations": (None, '{"query": "{ health }"}'), "map": (None, "{}")},
        headers={"accept": GR},
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith(GR)
    assert "Apollo-Require-Preflight" in response.json()["errors"][0]["message"]
