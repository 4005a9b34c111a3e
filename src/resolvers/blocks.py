"""Blocking: idempotent, and the table that hides people from each other everywhere."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.dialects.postgresql import insert
from sqlmodel import delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from src.models import User, UserBlock
from src.resolvers.errors import InvalidInput, NotFound
from src.resolvers.matches import end_matches_between


async def _target(session: AsyncSession, viewer: User, raw_id: str) -> uuid.UUID:
    try:
        target = uuid.UUID(raw_id)
    except ValueError:
        raise NotFound("No such user.", field="userId") from None
    if target == viewer.id:
        raise InvalidInput("You cannot block yourself.", field="userId")
    if await session.scalar(select(User.id).where(User.id == target)) is None:
        raise NotFound("No such user.", field="userId")
    return target


async def block_user(session: AsyncSession, viewer: User, raw_id: str) -> None:
    target = await _target(session, viewer, raw_id)
    await session.exec(
        insert(UserBlock).values(blocker_id=viewer.id, blocked_id=target).on_conflict_do_nothing()
    )
    await end_matches_between(session, viewer.id, target)


async def unblock_user(session: AsyncSession, viewer: User, raw_id: str) -> None:
    target = await _target(session, viewer, raw_id)
    await session.exec(
        delete(UserBlock).where(
            UserBlock.blocker_id == viewer.id,  # type: ignore[arg-type]
            UserBlock.blocked_id == target,  # type: ignore[arg-type]
        )
    )


async def erase_blocks(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Account deletion: blocks by the user go; blocks of the user stay with their authors."""
    await session.exec(delete(UserBlock).where(UserBlock.blocker_id == user_id))  # type: ignore[arg-type]


async def export_blocks(session: AsyncSession, user_id: uuid.UUID) -> dict[str, Any]:
    rows = await session.exec(
        select(UserBlock).where(UserBlock.blocker_id == user_id).order_by(UserBlock.created_at)  # type: ignore[arg-type]
    )
    return {
        "blocks": [
            {"blockedUserId": str(b.blocked_id), "createdAt": b.created_at.isoformat()}
            for b in rows
        ]
    }
