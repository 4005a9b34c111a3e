"""Unexpected failures are masked end to end; public errors keep their code (SECURITY.md 7)."""

from __future__ import annotations

import logging

import pytest

from src.schema import institutions as institutions_schema
from tests.helpers import GraphQLClient

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
