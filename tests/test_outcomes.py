"""The compiled path keeps the operation timeout, and an uncertain commit is answered as such
on both paths (SECURITY.md 8; issue 16, L1): OUTCOME_UNKNOWN, never a masked internal error
that invites a retry which would send the whisper twice."""

from __future__ import annotations

import time
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy.engine import make_url

from src.app import create_app
from src.config import Settings
from tests.fakes.pg_proxy import PgProxy
from tests.helpers import SEND, GraphQLClient, running_app, sql
from tests.test_timeouts import assert_nothing_left, locked, registered

FEED = "{ users(first: 2) { edges { node { id profile { nickname } } } } }"
# Only the operation timeout: PostgreSQL's own would strike much later.
SLOW_DB = {"operation_timeout_s": 0.5, "db_statement_timeout_ms": 20_000}


async def test_a_stalled_compiled_read_answers_timeout_in_time(
    settings: Settings, database_url: str
) -> None:
    token = (await registered(settings, "ann"))["accessToken"]
    app = create_app(settings.model_copy(update=SLOW_DB))
    async with running_app(app) as http:
        gql = GraphQLClient(http)
        # Warm: the first request opens the read pool and prepares the plan, which on a busy
        # machine can itself take longer than the 0.5 s allowed here.
        for _ in range(5):
            if (await gql(FEED, token=token)).errors == []:
                break
        else:
            raise AssertionError("the feed never answered within 0.5 s unlocked")
        compiled = app.state.services.read_pool.statements
        async with locked(database_url, "users"):
            started = time.monotonic()
            response = await gql(FEED, token=token)
            took = time.monotonic() - started
        assert app.state.services.read_pool.statements == compiled + 1  # no fallback run
        assert response.data is None
        assert response.error_codes == ["TIMEOUT"]
        assert response.errors[0]["message"] == (
            "The operation took longer than 0.5 s and was stopped."
        )
        assert 0.4 < took < 2.5, took
        await assert_nothing_left(app, database_url)
        assert (await gql(FEED, token=token)).errors == []


async def test_a_stalled_compiled_send_answers_timeout_and_sends_nothing(
    settings: Settings, database_url: str
) -> None:
    sender = await registered(settings, "ann")
    recipient = await registered(settings, "bob")
    app = create_app(settings.model_copy(update=SLOW_DB))
    variables = {"input": {"recipientId": recipient["me"]["id"], "content": "hi"}}
    async with running_app(app) as http:
        gql = GraphQLClient(http)
        async with locked(database_url, "whispers"):
            started = time.monotonic()
            response = await gql(SEND, variables, token=sender["accessToken"])
            took = time.monotonic() - started
        assert response.error_codes == ["TIMEOUT"]
        assert 0.4 < took < 2.5, took
        assert app.state.services.read_pool.statements == 1  # the compiled send ran
        assert await sql(app, "SELECT count(*) FROM whispers") == 0
        assert await sql(app, "SELECT coalesce(sum(used), 0) FROM user_quotas") == 0
        assert (await gql(SEND, variables, token=sender["accessToken"])).errors == []


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "interpreter"])
async def test_a_commit_cut_mid_way_answers_outcome_unknown(
    settings: Settings, database_url: str, compiled: bool
) -> None:
    """A proxy passes the send's COMMIT to PostgreSQL and cuts the connection before the
    answer: the whisper is saved, and the client is told the outcome is unknown."""
    sender = await registered(settings, "ann")
    recipient = await registered(settings, "bob")
    url = make_url(database_url)
    variables: dict[str, Any] = {"input": {"recipientId": recipient["me"]["id"], "content": "hi"}}
    async with PgProxy(url.host or "127.0.0.1", url.port or 5432).running() as proxy:
        through = url.set(port=proxy.port).render_as_string(hide_password=False)
        app = create_app(
            settings.model_copy(
                update={"database_url": SecretStr(through), "compiled_queries": compiled}
            )
        )
        async with running_app(app) as http:
            gql = GraphQLClient(http)
            proxy.cut_commit_after(b"INSERT INTO whispers")
            response = await gql(SEND, variables, token=sender["accessToken"])
            assert proxy.cuts == 1
            assert response.data is None
            assert response.error_codes == ["OUTCOME_UNKNOWN"]
            assert "idempotencyKey" in response.errors[0]["message"]
            assert await sql(app, "SELECT count(*) FROM whispers") == 1  # it was saved
            assert (await gql(SEND, variables, token=sender["accessToken"])).errors == []
