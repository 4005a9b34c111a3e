"""The server answers, knows its health and readiness, and tags responses with a request id."""

from __future__ import annotations

from tests.helpers import GraphQLClient

HEALTH = "{ health }"
ME = "{ me { id registered } }"


async def test_health_query_answers(gql: GraphQLClient) -> None:
    response = await gql(HEALTH)
    assert response.status == 200
    assert response.data == {"health": "ok"}
    assert response.errors == []


async def test_me_is_null_when_logged_out(gql: GraphQLClient) -> None:
    response = await gql(ME)
    assert response.data == {"me": None}
    assert response.errors == []


async def test_health_and_ready_endpoints(http) -> None:
    assert (await http.get("/health")).json() == {"status": "ok"}
    ready = await http.get("/ready")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "database": "ok",
        "vectors": "ok",
        "outboxBacklog": 0,
    }


async def test_request_id_is_echoed_or_made(http) -> None:
    given = await http.get("/health", headers={"x-request-id": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = await http.get("/health", headers={"x-request-id": "bad id with spaces"})
    assert made.headers["x-request-id"] != "bad id with spaces"
    assert len(made.headers["x-request-id"]) == 32


def test_json_logs_carry_the_request_id() -> None:
    import json
    import logging

    from src.observability import JsonFormatter, request_id

    token = request_id.set("rid-1")
    try:
        record = logging.LogRecord("qiaoqiao.access", logging.INFO, "", 0, "POST %s", ("/x",), None)
        record.status = 200
        line = json.loads(JsonFormatter().format(record))
    finally:
        request_id.reset(token)
    assert line["message"] == "POST /x"
    assert line["request_id"] == "rid-1"
    assert line["status"] == 200
    assert line["level"] == "INFO"
