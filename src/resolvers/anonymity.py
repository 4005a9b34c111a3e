"""The rules that keep the sender of an anonymous whisper hidden from its recipient, and the ones
that keep reports from being bought (issue 15). Each is written once, as SQLAlchemy expressions,
and used by every ORM path; the compiled statements (live_sql, send_sql) spell the same
conditions in SQL and differential tests hold them to these.

The adversary is the recipient R of an anonymous, unrevealed whisper W, with any number of
accounts: nothing R can observe may depend on who sent W. So:

- blocks act at *send* time (`may_whisper`): an already received anonymous whisper never
  depends on R's blocks, nor on its hidden sender's state (`shown_to_recipient`);
- a reply to an anonymous, unrevealed whisper is accepted whenever the replier may send at all,
  and stored *withheld* when its hidden recipient may not receive it (`may_whisper` again) —
  the replier's answers, rows and quota are the same either way.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from src.models import User, UserReport, Whisper, WhisperSenderBlock
from src.resolvers.profiles import blocked_between


def sender_hidden() -> ColumnElement[bool]:
    """Over Whisper: its recipient cannot know who sent it (anonymous, not revealed)."""
    return and_(col(Whisper.is_anonymous), col(Whisper.revealed_at).is_(None))


def shown_to_recipient(viewer_id: uuid.UUID) -> list[ColumnElement[bool]]:
    """Over Whisper: it is in the viewer's inbox. Addressed to them, not withheld, and — only
    where they know who sent it — not from someone blocked either way. Whether the hidden
    sender of an anonymous, unrevealed whisper is blocked, banned, hidden or deleted never
    matters: that would tell the viewer who it is."""
    return [
        col(Whisper.recipient_id) == viewer_id,
        col(Whisper.withheld).is_(False),
        or_(
            sender_hidden(),
            col(Whisper.sender_id).is_(None),
            ~blocked_between(viewer_id, col(Whisper.sender_id)),
        ),
    ]


def whisper_sender_blocked(recipient: Any, sender_id: Any) -> ColumnElement[bool]:
    """`recipient` used blockWhisperSender on a whisper `sender_id` sent them."""
    return exists().where(
        col(WhisperSenderBlock.blocker_id) == recipient,
        col(WhisperSenderBlock.sender_id) == sender_id,
    )


def may_whisper(sender_id: uuid.UUID) -> list[ColumnElement[bool]]:
    """Over User (the recipient): `sender_id` may whisper this person now — someone else,
    active, registered, no block either way, and no blockWhisperSender of theirs on one of the
    sender's whispers. Blocks act here, at send time, and nowhere in the recipient's inbox."""
    return [
        col(User.id) != sender_id,
        col(User.status) == "active",
        col(User.registered_at).is_not(None),
        ~blocked_between(sender_id, col(User.id)),
        ~whisper_sender_blocked(col(User.id), sender_id),
    ]


async def can_whisper(
    session: AsyncSession, sender_id: uuid.UUID, recipient_id: uuid.UUID | None
) -> bool:
    """Whether `sender_id` may whisper `recipient_id` now (None: a deleted account)."""
    if recipient_id is None:
        return False
    found = await session.scalar(
        select(col(User.id)).where(col(User.id) == recipient_id, *may_whisper(sender_id))
    )
    return found is not None


def counts_toward_hold(now: datetime, min_age_h: float) -> list[ColumnElement[bool]]:
    """Over UserReport joined with its reporter (User): a report that counts toward the
    automatic hold — about a user (a whisper report never counts: its reporter could watch who
    disappears), by someone registered, active and registered at least `min_age_h` ago (fresh
    accounts cannot buy a hold)."""
    return [
        col(UserReport.kind) == "user",
        col(User.status) == "active",
        col(User.registered_at).is_not(None),
        col(User.registered_at) <= now - timedelta(hours=min_age_h),
    ]
