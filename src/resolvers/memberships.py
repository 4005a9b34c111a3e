"""Plans: BASIC unless a PRO period covers now; PRO periods extend from the later of now and
the current end. Expiry needs no job: everything compares times."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from src.models import Membership, User
from src.models.rules import (
    plan_in_force,
    pro_latest_end,
    pro_valid_until,
)


@dataclass(frozen=True)
class MembershipState:
    plan: str
    valid_until: datetime | None


async def current_plan(session: AsyncSession, user_id: uuid.UUID, now: datetime) -> str:
    return str(await session.scalar(select(plan_in_force(user_id, now))))


async def membership_state(
    session: AsyncSession, user_id: uuid.UUID, now: datetime
) -> MembershipState:
    plan, until = (
        await session.exec(select(plan_in_force(user_id, now), pro_valid_until(user_id, now)))
    ).one()
    return MembershipState(plan, until)


async def extend_pro(
    session: AsyncSession, user_id: uuid.UUID, *, source: str, days: int, now: datetime
) -> bool:
    """Add `days` of PRO bought by `source` (an order); a source counts once. Returns whether
    this call added the period."""
    # Two purchases settling at once must stack, not overlap: serialize per user.
    await session.exec(select(col(User.id)).where(col(User.id) == user_id).with_for_update())
    current_end = await session.scalar(select(pro_latest_end(user_id, now)))
    start = max(now, current_end) if current_end else now
    added = await session.scalar(
        insert(Membership)
        .values(
            id=uuid.uuid4(),
            user_id=user_id,
            plan="PRO",
            valid_from=start,
            valid_until=start + timedelta(days=days),
            source=source,
        )
        .on_conflict_do_nothing(index_elements=["source"])
        .returning(col(Membership.id))
    )
    return added is not None
