"""Daily quotas: exact under real concurrency, reset at Asia/Shanghai midnight, use recorded
whatever the rest of the operation does, PRO limits at once (SECURITY.md 21, 33)."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import UTC, datetime

import pytest
from starlette.applications import Starlette

from src.resolvers.calendar import next_local_midnight
from src.resolvers.errors import UserFacingError
from src.resolvers.memberships import extend_pro
from src.resolvers.quotas import consume, quota_states
from tests.helpers import GraphQLClient, registered_user, running_app, sql

QUOTAS = "{ me { quotas { kind used limit resetsAt } membership { plan validUntil } } }"
# 2026-11-26 23:59:30 in Shanghai is 15:59:30 UTC.
BEFORE_MIDNIGHT = datetime(2026, 11, 26, 15, 59, 30, tzinfo=UTC)
AFTER_MIDNIGHT = datetime(2026, 11, 26, 16, 0, 30, tzinfo=UTC)


async def user_id(gql: GraphQLClient, name: str) -> tuple[uuid.UUID, str]:
    login = await registered_user(gql, name)
    return uuid.UUID(login["me"]["id"]), login["accessToken"]


async def test_fifty_concurrent_consumptions_with_ten_left_make_exactly_ten(app: Starlette) -> None:
    async with running_app(app) as http:
        uid, _ = await user_id(GraphQLClient(http), "racer")
        services = app.state.services
        await sql(
            app,
            "INSERT INTO user_quotas (user_id, day, kind, used, daily_limit)"
            " VALUES (:u, :d, 'WHISPER', 0, 10)",
            u=uid,
            d=BEFORE_MIDNIGHT.date(),
        )

        async def one() -> bool:
            # Each attempt is its own request: its own connection and transaction.
            async with services.sessionmaker() as session, session.begin():
                try:
                    await consume(session, services, uid, "WHISPER", now=BEFORE_MIDNIGHT)
                except UserFacingError as exc:
                    assert exc.code == "QUOTA_EXCEEDED"
                    return False
                await asyncio.sleep(0.01)  # the operation goes on a moment, as a real one does
                return True

        results = await asyncio.gather(*(one() for _ in range(50)))
        used = await sql(app, "SELECT used FROM user_quotas WHERE user_id = :u", u=uid)
    assert results.count(True) == 10
    assert used == 10


async def test_quotas_reset_at_shanghai_midnight(app: Starlette) -> None:
    async with running_app(app) as http:
        uid, _ = await user_id(GraphQLClient(http), "owl")
        services = app.state.services
        async with services.sessionmaker() as session, session.begin():
            for _ in range(3):
                await consume(session, services, uid, "SWIPE", now=BEFORE_MIDNIGHT)
            before = {
                q.kind: q
                for q in await quota_states(session, services.settings, uid, now=BEFORE_MIDNIGHT)
            }
            after = {
                q.kind: q
                for q in await quota_states(session, services.settings, uid, now=AFTER_MIDNIGHT)
            }
            assert await consume(session, services, uid, "SWIPE", now=AFTER_MIDNIGHT) == 1
    assert before["SWIPE"].used == 3
    assert after["SWIPE"].used == 0
    assert before["SWIPE"].resets_at == AFTER_MIDNIGHT.replace(minute=0, second=0)
    assert next_local_midnight(AFTER_MIDNIGHT) == datetime(2026, 11, 27, 16, 0, tzinfo=UTC)


async def test_use_stays_recorded_when_its_operation_rolls_back(app: Starlette) -> None:
    """SECURITY.md 33: the operation's transaction rolls back when any field fails, while the
    fields that succeeded are still returned; the use they made must stay counted."""
    async with running_app(app) as http:
        uid, _ = await user_id(GraphQLClient(http), "careful")
        services = app.state.services
        with pytest.raises(RuntimeError):
            async with services.sessionmaker() as session, session.begin():
                await consume(session, services, uid, "WHISPER", now=BEFORE_MIDNIGHT)
                raise RuntimeError("another field of the operation failed")
        async with services.sessionmaker() as session:
            states = await quota_states(session, services.settings, uid, now=BEFORE_MIDNIGHT)
    assert {q.kind: q.used for q in states}["WHISPER"] == 1


async def test_limits_come_from_settings_and_pro_raises_them_at_once(app: Starlette) -> None:
    async with running_app(app) as http:
        gql = GraphQLClient(http)
        uid, token = await user_id(gql, "upgrader")
        services = app.state.services
        app.state.services = dataclasses.replace(services, clock=lambda: BEFORE_MIDNIGHT)
        basic = (await gql(QUOTAS, token=token)).data["me"]
        async with services.sessionmaker() as session, session.begin():
            await extend_pro(session, uid, source="test-order", days=30, now=BEFORE_MIDNIGHT)
        pro = (await gql(QUOTAS, token=token)).data["me"]
    limits = lambda me: {q["kind"]: q["limit"] for q in me["quotas"]}  # noqa: E731
    assert limits(basic) == {"WHISPER": 10, "SWIPE": 50, "AI_REQUEST": 20, "DISCOVERY": 30}
    assert limits(pro) == {"WHISPER": 100, "SWIPE": 500, "AI_REQUEST": 200, "DISCOVERY": 300}
    assert basic["membership"] == {"plan": "BASIC", "validUntil": None}
    assert pro["membership"]["plan"] == "PRO"
    assert pro["membership"]["validUntil"].startswith("2026-12-26")
    assert basic["quotas"][0]["resetsAt"] == "2026-11-26T16:00:00+00:00"


async def test_pro_periods_stack_and_expire_without_a_job(app: Starlette) -> None:
    async with running_app(app) as http:
        uid, _ = await user_id(GraphQLClient(http), "stacker")
        services = app.state.services
        async with services.sessionmaker() as session, session.begin():
            assert await extend_pro(session, uid, source="a", days=30, now=BEFORE_MIDNIGHT)
            assert await extend_pro(session, uid, source="b", days=30, now=BEFORE_MIDNIGHT)
            assert not await extend_pro(session, uid, source="a", days=30, now=BEFORE_MIDNIGHT)
            from src.resolvers.memberships import membership_state

            state = await membership_state(session, uid, BEFORE_MIDNIGHT)
            later = await membership_state(session, uid, datetime(2027, 3, 1, tzinfo=UTC))
    assert state.plan == "PRO"
    assert (state.valid_until - BEFORE_MIDNIGHT).days == 60  # type: ignore[operator]
    assert later.plan == "BASIC" and later.valid_until is None
