"""Blocking: idempotent and rate limited. `user_blocks` hides people from each other everywhere;
`whisper_sender_blocks` (blockWhisperSender) only stops the hidden sender of one whisper from
whispering the blocker again, and changes nothing the blocker sees.

Neither changes the blocker's view of anonymous whispers already received: blocks act when a
whisper is sent (`rules.may_whisper`), so blocking one suspect after another tells nothing
about who sent what.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from src.models import User, UserBlock, WhisperSenderBlock
from src.resolvers.auth import rate_limit
from src.resolvers.errors import InvalidInput, NotFound
from src.resolvers.matches import end_matches_between
from src.resolvers.whispers import received_whisper
from src.services import Services

LIMIT = "block:user"  # blockUser, unblockUser and blockWhisperSender share one budget


async def _target(session: AsyncSession, viewer: User, raw_id: str) -> uuid.UUID:
    # Any account that ever existed, hidden from the viewer or not (one that blocked them, say):
    # blocking must work against someone hiding. Ids are random, so the answer tells nothing
    # about anyone whose id the viewer was not already shown.
    try:
        target = uuid.UUID(raw_id)
    except ValueError:
        raise NotFound("No such user.", field="userId") from None
    if target == viewer.id:
        raise InvalidInput("You cannot block yourself.", field="userId")
    if await session.scalar(select(col(User.id)).where(col(User.id) == target)) is None:
        raise NotFound("No such user.", field="userId")
    return target


async def block_user(session: AsyncSession, services: Services, viewer: User, raw_id: str) -> None:
    await rate_limit(services, LIMIT, str(viewer.id))
    target = await _target(session, viewer, raw_id)
    await session.exec(
        insert(UserBlock).values(blocker_id=viewer.id, blocked_id=target).on_conflict_do_nothing()
    )
    await end_matches_between(session, viewer.id, target)


async def unblock_user(
    session: AsyncSession, services: Services, viewer: User, raw_id: str
) -> None:
    await rate_limit(services, LIMIT, str(viewer.id))
    target = await _target(session, viewer, raw_id)
    await session.exec(
        delete(UserBlock).where(
            col(UserBlock.blocker_id) == viewer.id,
            col(UserBlock.blocked_id) == target,
        )
    )


async def block_whisper_sender(
    session: AsyncSession, services: Services, viewer: User, raw_id: str
) -> None:
    """The sender of a whisper the viewer received can no longer whisper them; nothing else
    changes (no match ends, nobody leaves their discovery, feed or inbox — each would tell who
    it was). Idempotent. NOT_FOUND for a whisper not received, as for an unknown or malformed
    id."""
    await rate_limit(services, LIMIT, str(viewer.id))
    try:
        whisper_id = uuid.UUID(raw_id)
    except ValueError:
        raise NotFound("No such whisper.", field="whisperId") from None
    whisper = await received_whisper(session, viewer.id, whisper_id)
    if whisper is None:
        raise NotFound("No such whisper.", field="whisperId")
    await session.exec(
        insert(WhisperSenderBlock)
        .values(blocker_id=viewer.id, whisper_id=whisper.id, sender_id=whisper.sender_id)
        .on_conflict_do_nothing()
    )


async def erase_blocks(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Account deletion: blocks by the user go; blocks of the user stay with their authors."""
    await session.exec(delete(UserBlock).where(col(UserBlock.blocker_id) == user_id))
    await session.exec(
        delete(WhisperSenderBlock).where(col(WhisperSenderBlock.blocker_id) == user_id)
    )


async def export_blocks(session: AsyncSession, user_id: uuid.UUID) -> dict[str, Any]:
    """The user's blocks. Senders blocked through a whisper are listed by that whisper, never
    by who sent it."""
    rows = await session.exec(
        select(UserBlock)
        .where(col(UserBlock.blocker_id) == user_id)
        .order_by(col(UserBlock.created_at))
    )
    by_whisper = await session.exec(
        select(WhisperSenderBlock)
        .where(col(WhisperSenderBlock.blocker_id) == user_id)
        .order_by(col(WhisperSenderBlock.created_at), col(WhisperSenderBlock.whisper_id))
    )
    return {
        "blocks": [
            {"blockedUserId": str(b.blocked_id), "createdAt": b.created_at.isoformat()}
            for b in rows
        ],
        "whisperSenderBlocks": [
            {"whisperId": str(b.whisper_id), "createdAt": b.created_at.isoformat()}
            for b in by_whisper
        ],
    }
