"""Swipes and matches: a swipe is one row per pair; two likes make exactly one match."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, or_, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel import delete as sa_delete
from sqlmodel.ext.asyncio.session import AsyncSession

from src import events
from src.models import User, UserMatch, UserProfile, UserSwipe
from src.models.rules import after as after_cursor
from src.models.rules import visible_to
from src.models.swipes import SWIPE_ACTIONS
from src.resolvers.auth import rate_limit
from src.resolvers.calendar import local_day
from src.resolvers.errors import InvalidInput, NotFound
from src.resolvers.pagination import Page, newest_first
from src.resolvers.quotas import consume
from src.resolvers.users import require_registered
from src.services import Services

LIKES = ("LIKE", "SUPER_LIKE")


def pair(a: uuid.UUID, b: uuid.UUID) -> tuple[uuid.UUID, uuid.UUID]:
    return (a, b) if a < b else (b, a)


async def swipe(
    session: AsyncSession, services: Services, viewer: User, raw_target: str, action: str
) -> UserMatch | None:
    """Record LIKE / PASS / SUPER_LIKE on someone; returns the match it made, if it made one."""
    require_registered(viewer)
    if action not in SWIPE_ACTIONS:
        raise InvalidInput("Unknown action.", field="action")
    await rate_limit(services, "swipe:user", str(viewer.id))
    try:
        target = uuid.UUID(raw_target)
    except ValueError:
        raise NotFound("No such user.", field="targetUserId") from None
    visible = await session.scalar(
        select(col(User.id))
        .join(UserProfile, col(UserProfile.user_id) == col(User.id))
        .where(col(User.id) == target, col(User.id) != viewer.id, visible_to(viewer.id))
    )
    if visible is None:
        raise NotFound("No such user.", field="targetUserId")
    low, high = pair(viewer.id, target)
    # Both people swiping at the same moment take turns here, so the second always sees the
    # first's like and exactly one match is made.
    await session.scalar(
        text("SELECT pg_advisory_xact_lock(hashtext(:a), hashtext(:b))"),
        {"a": str(low), "b": str(high)},
    )
    now = services.clock()
    previous = (
        await session.exec(
            select(UserSwipe).where(
                col(UserSwipe.swiper_id) == viewer.id, col(UserSwipe.target_id) == target
            )
        )
    ).first()
    last = previous.updated_at or previous.created_at if previous else None
    if last is None or local_day(last) != local_day(now):
        # A change of mind about the same person on the same day is free.
        await consume(session, services, viewer.id, "SWIPE", now=now)
    await session.exec(
        insert(UserSwipe)
        .values(swiper_id=viewer.id, target_id=target, action=action, created_at=now)
        .on_conflict_do_update(
            index_elements=["swiper_id", "target_id"], set_={"action": action, "updated_at": now}
        )
    )
    if action not in LIKES:
        return None
    liked_back = await session.scalar(
        select(col(UserSwipe.target_id)).where(
            col(UserSwipe.swiper_id) == target,
            col(UserSwipe.target_id) == viewer.id,
            col(UserSwipe.action).in_(LIKES),
        )
    )
    if liked_back is None:
        return None
    match_id = await session.scalar(
        insert(UserMatch)
        .values(id=uuid.uuid4(), user_a_id=low, user_b_id=high, created_at=now)
        .on_conflict_do_nothing(
            index_elements=["user_a_id", "user_b_id"], index_where=text("ended_at IS NULL")
        )
        .returning(col(UserMatch.id))
    )
    if match_id is None:
        return None  # already matched: reported once, when it was made
    await events.publish(session, events.MATCH, [low, high])
    return await session.get(UserMatch, match_id)


def other(match: UserMatch, viewer_id: uuid.UUID) -> uuid.UUID:
    return match.user_b_id if match.user_a_id == viewer_id else match.user_a_id


def _live_for(viewer_id: uuid.UUID) -> tuple[ColumnElement[bool], ...]:
    return (
        or_(col(UserMatch.user_a_id) == viewer_id, col(UserMatch.user_b_id) == viewer_id),
        col(UserMatch.ended_at).is_(None),
    )


async def unmatch(session: AsyncSession, services: Services, viewer: User, raw_id: str) -> None:
    try:
        match_id = uuid.UUID(raw_id)
    except ValueError:
        raise NotFound("No such match.", field="matchId") from None
    ended = await session.scalar(
        update(UserMatch)
        .where(col(UserMatch.id) == match_id, *_live_for(viewer.id))
        .values(ended_at=services.clock())
        .returning(col(UserMatch.id))
    )
    if ended is None:
        raise NotFound("No such match.", field="matchId")


async def end_matches_between(session: AsyncSession, a: uuid.UUID, b: uuid.UUID) -> None:
    """A block ends any match between the two."""
    low, high = pair(a, b)
    await session.exec(
        update(UserMatch)
        .where(
            col(UserMatch.user_a_id) == low,
            col(UserMatch.user_b_id) == high,
            col(UserMatch.ended_at).is_(None),
        )
        .values(ended_at=text("now()"))
    )


async def matches(
    session: AsyncSession, viewer_id: uuid.UUID, *, first: int | None, after: str | None
) -> Page[UserMatch]:
    query = select(UserMatch).where(*_live_for(viewer_id))
    return await newest_first(session, query, UserMatch, first=first, after=after)


async def matches_after(
    session: AsyncSession, viewer_id: uuid.UUID, cursor: tuple[datetime, uuid.UUID]
) -> list[UserMatch]:
    """Matches made after `cursor`, oldest first (the `matchCreated` live feed)."""
    query = (
        select(UserMatch)
        .where(*_live_for(viewer_id))
        .where(
            after_cursor([col(UserMatch.created_at), col(UserMatch.id)], cursor, descending=False)
        )
        .order_by(col(UserMatch.created_at), col(UserMatch.id))
        .limit(100)
    )
    return list(await session.exec(query))


async def erase_swipes_and_matches(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Account deletion: the user's swipes go (both ways) and their matches end."""
    await session.exec(
        sa_delete(UserSwipe).where(
            or_(col(UserSwipe.swiper_id) == user_id, col(UserSwipe.target_id) == user_id)
        )
    )
    await session.exec(update(UserMatch).where(*_live_for(user_id)).values(ended_at=text("now()")))


async def export_swipes_and_matches(session: AsyncSession, user_id: uuid.UUID) -> dict[str, Any]:
    swipes = await session.exec(
        select(UserSwipe)
        .where(col(UserSwipe.swiper_id) == user_id)
        .order_by(col(UserSwipe.created_at))
    )
    made = await session.exec(
        select(UserMatch)
        .where(or_(col(UserMatch.user_a_id) == user_id, col(UserMatch.user_b_id) == user_id))
        .order_by(col(UserMatch.created_at))
    )
    return {
        "swipes": [
            {"targetUserId": str(s.target_id), "action": s.action, "at": s.created_at.isoformat()}
            for s in swipes
        ],
        "matches": [
            {
                "userId": str(other(m, user_id)),
                "createdAt": m.created_at.isoformat(),
                "endedAt": m.ended_at.isoformat() if m.ended_at else None,
            }
            for m in made
        ],
    }
