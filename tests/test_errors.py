"""Unexpected failures are masked end to end; public errors keep their code (SECURITY.md 7)."""

from __future__ import annotations

import logging

import httpx
import pytest
from starlette.applications import Starlette

from src.schema import institutions as institutions_schema
from tests.helpers import GraphQLClient, WsClient, live_server, registered_user

QUERY = "{ institutions { edges { node { id } } } }"


async def test_unexpected_exception_is_masked_and_logged(
    gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("password=hunter2")

    monkeypatch.setattr(institutions_schema, "search_institutions", explode)
    with caplog.at_level(logging.ERROR, logger="qiaoqiao.graphql"):
        response = await gql(QUERY)
    assert response.status == 200
    assert response.data is None
    assert response.errors[0]["message"] == "Internal server error."
    assert response.error_codes == ["INTERNAL_SERVER_ERROR"]
    assert "hunter2" not in str(response.errors)
    assert any("hunter2" in str(r.exc_info) for r in caplog.records if r.exc_info)


async def test_bad_cursor_is_a_readable_public_error(gql: GraphQLClient) -> None:
    response = await gql('{ institutions(after: "not-a-cursor") { edges { cursor } } }')
    assert response.errors[0]["message"] == "`after` is not a valid cursor."
    assert response.error_codes == ["BAD_USER_INPUT"]


async def test_masked_over_websockets_too(
    app: Starlette, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Results sent over a socket are classified before they go out, like HTTP answers (the
    socket sends them from inside the operation, before `on_operation` ends)."""

    async def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("password=hunter2")

    monkeypatch.setattr(institutions_schema, "search_institutions", explode)
    async with live_server(app) as server:
        async with httpx.AsyncClient(base_url=server.url) as http:
            token = (await registered_user(GraphQLClient(http), "ann"))["accessToken"]
        async with WsClient.connect(server, token) as ws:
            with caplog.at_level(logging.ERROR, logger="qiaoqiao.graphql"):
                await ws.subscribe("1", QUERY)
                message = await ws.next()
            assert message["payload"]["errors"][0]["message"] == "Internal server error."
            assert message["payload"]["errors"][0]["extensions"] == {
                "code": "INTERNAL_SERVER_ERROR"
            }
            assert "hunter2" not in str(message)
            assert (await ws.next())["type"] == "complete"
            await ws.subscribe("2", "{ institutions(first: 0) { edges { cursor } } }")
            refused = await ws.next()  # a limit error stays readable
            assert refused["type"] == "error"
            assert refused["payload"][0]["extensions"] == {"code": "BAD_USER_INPUT"}
            assert refused["payload"][0]["message"].startswith("`first` must be between")
