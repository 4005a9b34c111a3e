"""Daily quotas per user and kind, on Asia/Shanghai days, exact under concurrency.

Consumption is one conditional upsert in a short transaction of its own, committed before the
metered work runs (SECURITY.md 33): the operation's transaction rolls back when any field of it
fails, while GraphQL still returns the fields that succeeded — so use recorded there could be
undone by adding a failing field. Use, once recorded, stays recorded: a metered operation that
then fails (or is rolled back with the rest of its document) still counts. 50 concurrent calls
with 10 left make exactly 10 succeed: PostgreSQL serializes the upserts on the row.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from src.config import Settings
from src.models import UserQuota
from src.models.plans import PLANS, QUOTA_KINDS
from src.models.rules import quota_use
from src.resolvers.calendar import local_day, next_local_midnight
from src.resolvers.errors import UserFacingError
from src.resolvers.memberships import current_plan
from src.services import Services

_CONSUME = quota_use(
    bindparam("user_id"),
    bindparam("day"),
    bindparam("kind"),
    bindparam("amount"),
    bindparam("limit"),
)


@dataclass(frozen=True)
class QuotaState:
    kind: str
    used: int
    limit: int
    resets_at: datetime


def daily_limit(settings: Settings, plan: str, kind: str) -> int:
    return int(settings.quota_limits.get(plan, settings.quota_limits["BASIC"]).get(kind, 0))


def plan_limits(settings: Settings) -> dict[str, dict[str, int]]:
    """Every plan's daily limit of every kind, as configured (what `appConfig` shows)."""
    return {
        plan: {kind: daily_limit(settings, plan, kind) for kind in QUOTA_KINDS} for plan in PLANS
    }


async def consume(
    session: AsyncSession,
    services: Services,
    user_id: uuid.UUID,
    kind: str,
    *,
    now: datetime,
    amount: int = 1,
) -> int:
    """Use `amount` of today's `kind`, committed at once whatever the operation (`session`,
    which decides the plan) does next; returns how many are used now.

    Raises QUOTA_EXCEEDED (nothing consumed) when today's limit would be passed.
    """
    limit = daily_limit(services.settings, await current_plan(session, user_id, now), kind)
    used = None
    if amount <= limit:
        async with services.side_engine.begin() as conn:
            used = await conn.scalar(
                _CONSUME,
                {
                    "user_id": user_id,
                    "day": local_day(now),
                    "kind": kind,
                    "amount": amount,
                    "limit": limit,
                },
            )
    if used is None:
        raise UserFacingError(
            f"Today's {kind.lower().replace('_', ' ')} limit ({limit}) is used up; it resets at "
            "midnight (Asia/Shanghai).",
            code="QUOTA_EXCEEDED",
        )
    return int(used)


async def quota_states(
    session: AsyncSession, settings: Settings, user_id: uuid.UUID, *, now: datetime
) -> list[QuotaState]:
    """Today's use of every kind, with limits from the plan in force now."""
    plan = await current_plan(session, user_id, now)
    rows = await session.exec(
        select(UserQuota).where(
            col(UserQuota.user_id) == user_id, col(UserQuota.day) == local_day(now)
        )
    )
    used = {row.kind: row.used for row in rows}
    reset = next_local_midnight(now)
    return [
        QuotaState(kind, used.get(kind, 0), daily_limit(settings, plan, kind), reset)
        for kind in QUOTA_KINDS
    ]
