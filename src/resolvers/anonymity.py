"""Whether a sender may reach a recipient now. The rules themselves — `may_whisper`,
`shown_to_recipient`, `sender_hidden`, `counts_toward_hold` and why they are what they are —
live in the rule book, `src/models/rules.py`."""

from __future__ import annotations

import uuid

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from src.models import User
from src.models.rules import may_whisper


async def can_whisper(
    session: AsyncSession, sender_id: uuid.UUID, recipient_id: uuid.UUID | None
) -> bool:
    """Whether `sender_id` may whisper `recipient_id` now (None: a deleted account)."""
    if recipient_id is None:
        return False
    found = await session.scalar(
        select(col(User.id)).where(col(User.id) == recipient_id, may_whisper(sender_id))
    )
    return found is not None
