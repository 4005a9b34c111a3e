"""Every rule takes one clock (issue 17): with `services.clock()` moved years away from the wall
clock, and onto an Asia/Shanghai midnight, ages, the minimum age, discovery's age filter, SMS
codes, refresh tokens and report holds all follow it — on both paths where reads compile."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from starlette.applications import Starlette

from src.app import create_app
from src.config import Settings
from tests.fakes.tencent_sms import FakeTencentSms
from tests.helpers import REGISTER, GraphQLClient, dev_login, registered_user, running_app, sql
from tests.test_auth_sms import E164, PHONE, codes, send, sms_login
from tests.test_sessions import refresh
from tests.uploads import report

# 2029-06-15 00:00 in Asia/Shanghai, while it is still 2029-06-14 in UTC; years from the wall.
MIDNIGHT = datetime(2029, 6, 14, 16, 0, tzinfo=UTC)
BIRTHDAY = "2000-06-15"  # 29 from MIDNIGHT on, 28 a second before (26 by the wall clock)


class Clock:
    """An injected clock a test moves by hand."""

    def __init__(self, at: datetime):
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def inject(app: Starlette, at: datetime) -> Clock:
    clock = Clock(at)
    app.state.services = dataclasses.replace(app.state.services, clock=clock)
    return clock


UPDATE = "mutation ($i: ProfileInput!) { updateProfile(input: $i) { errors { code field } } }"


@pytest.fixture
async def clocked(settings: Settings) -> AsyncIterator[tuple[Starlette, GraphQLClient, Clock]]:
    app = create_app(settings)
    async with running_app(app) as http:
        yield app, GraphQLClient(http), inject(app, MIDNIGHT)


async def _post(http: httpx.AsyncClient, query: str, token: str) -> dict[str, Any]:
    response = await http.post(
        "/graphql", json={"query": query}, headers={"authorization": f"Bearer {token}"}
    )
    answer: dict[str, Any] = orjson.loads(response.content)
    return answer


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "interpreted"])
async def test_age_and_birthday_follow_the_clock_on_both_paths(
    settings: Settings, compiled: bool
) -> None:
    pinned = {"compiled_queries": compiled, "report_path": True}
    app = create_app(settings.model_copy(update=pinned))
    async with running_app(app) as http:
        gql = GraphQLClient(http)
        token = (await registered_user(gql, "ada", birthDate=BIRTHDAY))["accessToken"]
        clock = inject(app, MIDNIGHT - timedelta(seconds=1))
        ages = []
        for at in (MIDNIGHT - timedelta(seconds=1), MIDNIGHT):
            clock.at = at
            answer = await _post(http, "{ me { profile { age } } }", token)
            assert answer["extensions"]["path"] == ("compiled" if compiled else "interpreted")
            ages.append(answer["data"]["me"]["profile"]["age"])
    assert ages == [28, 29]  # the birthday begins at Shanghai's midnight, not UTC's


async def test_minimum_age_follows_the_clock(clocked: tuple) -> None:
    """18 on the clock's Shanghai date (15 by the wall clock, 17 on its UTC date)."""
    _, gql, _ = clocked
    for name, born, errors in (
        ("old-enough", "2011-06-15", []),
        ("a-day-short", "2011-06-16", [{"code": "INVALID_INPUT", "field": "birthDate"}]),
    ):
        token = (await dev_login(gql, name))["accessToken"]
        data = {"acceptedPolicyVersion": "2026-11", "nickname": name, "birthDate": born}
        answer = (await gql(REGISTER, {"input": data}, token=token)).data
        found = answer["register"]["errors"]
        assert [{"code": e["code"], "field": e["field"]} for e in found] == errors, name
    token = (await registered_user(gql, "later"))["accessToken"]
    for born, errors in (
        ("2011-06-16", [{"code": "INVALID_INPUT", "field": "birthDate"}]),
        ("2011-06-15", []),
    ):
        answer = (await gql(UPDATE, {"i": {"birthDate": born}}, token=token)).data
        assert answer["updateProfile"]["errors"] == errors, born


DISCOVER = """query ($f: DiscoveryFilter) {
  discover(prompt: "hiking", filter: $f, first: 10) { edges { node { user { profile {
    nickname } } } } }
}"""


async def _indexed(app: Starlette, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while await sql(app, "SELECT count(*) FROM vector_outbox"):
        assert time.monotonic() < deadline, "the outbox did not drain"
        await asyncio.sleep(0.1)


async def test_discovery_age_filter_follows_the_clock(settings: Settings) -> None:
    """Born 2000-03-03: 29 on the clock (2029), 26 by the wall clock."""
    app = create_app(settings.model_copy(update={"vector_worker": True}))
    async with running_app(app) as http:
        gql = GraphQLClient(http)
        viewer = (await registered_user(gql, "viewer"))["accessToken"]
        hiker = (await registered_user(gql, "hiker", birthDate="2000-03-03"))["accessToken"]
        bio = {"i": {"bio": "I love hiking in the mountains."}}
        assert (await gql(UPDATE, bio, token=hiker)).data == {"updateProfile": {"errors": []}}
        await _indexed(app)
        inject(app, MIDNIGHT)
        found = {}
        for ages in ((28, 30), (25, 26)):
            f = {"minAge": ages[0], "maxAge": ages[1]}
            answer = await gql(DISCOVER, {"f": f}, token=viewer)
            assert answer.errors == [], answer.errors
            edges = answer.data["discover"]["edges"]
            found[ages] = [e["node"]["user"]["profile"]["nickname"] for e in edges]
    assert found == {(28, 30): ["hiker"], (25, 26): []}


async def test_sms_resend_wait_and_expiry_follow_the_clock(
    wx_app: Starlette, fake_sms: FakeTencentSms
) -> None:
    async with running_app(wx_app) as http:
        gql = GraphQLClient(http)
        clock = inject(wx_app, MIDNIGHT)
        assert (await send(gql))["sent"] is True
        clock.at += timedelta(seconds=45)
        again = await send(gql)
        assert again["errors"][0]["retryAfterSeconds"] == 15  # 60 s from the clock's send
        clock.at += timedelta(seconds=15)
        assert (await send(gql))["sent"] is True
        clock.at += timedelta(seconds=301)  # SMS_CODE_TTL_S is 300
        assert codes(await sms_login(gql, fake_sms.last_code(E164), PHONE)) == ["CODE_EXPIRED"]
        assert (await send(gql))["sent"] is True
        clock.at += timedelta(seconds=299)
        assert codes(await sms_login(gql, fake_sms.last_code(E164), PHONE)) == []


async def test_refresh_token_expiry_follows_the_clock(clocked: tuple) -> None:
    _, gql, clock = clocked
    kept = await dev_login(gql, "kept")
    lapsed = await dev_login(gql, "lapsed")
    clock.at += timedelta(days=30) - timedelta(minutes=1)  # REFRESH_TOKEN_TTL_DAYS is 30
    assert (await refresh(gql, kept["refreshToken"]))["errors"] == []
    clock.at += timedelta(minutes=2)
    refused = await refresh(gql, lapsed["refreshToken"])
    assert refused["errors"] == [{"code": "INVALID_TOKEN", "field": "refreshToken"}]


HELD = "SELECT moderation_hold_at IS NOT NULL FROM users WHERE id = :t"


async def test_report_holds_count_on_the_clock(clocked: tuple) -> None:
    """Reporters count once registered 72 hours by the clock, their reports for 24 hours by it
    (by the wall clock they registered years ahead, and reported years ago)."""
    app, gql, clock = clocked
    target = (await registered_user(gql, "target"))["me"]["id"]
    reporters = [await registered_user(gql, f"r{i}") for i in range(3)]
    for login in reporters:  # all too fresh
        await report(gql.http, login["accessToken"], target)
    assert await sql(app, HELD, t=target) is False
    clock.at += timedelta(hours=73)  # established now; the reports above are too old
    for login in reporters[:2]:
        await report(gql.http, login["accessToken"], target)
    assert await sql(app, HELD, t=target) is False
    await report(gql.http, reporters[2]["accessToken"], target)
    assert await sql(app, HELD, t=target) is True
