"""Whispers: anonymous until the sender reveals.

The recipient of an anonymous, unrevealed whisper must never learn its sender: not from a
field, an id, a cursor, an error, an ordering, an event, or the effect of their own blocks.
The rules live in `anonymity` (inbox, send-time blocks); `sender_visible`,
`recipient_visible` and `read_at_visible` decide every exposure of one whisper.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, update
from sqlmodel import col, select
from sqlmodel import delete as sa_delete
from sqlmodel.ext.asyncio.session import AsyncSession

from src import events
from src.models import User, Whisper, WhisperSenderBlock
from src.models.rules import after as after_cursor
from src.models.rules import shown_to_recipient
from src.resolvers import idempotency, notify
from src.resolvers.anonymity import can_whisper
from src.resolvers.auth import rate_limit
from src.resolvers.content import SCENE_SOCIAL, check_text
from src.resolvers.errors import InvalidInput, NotFound, UserFacingError
from src.resolvers.pagination import Page, newest_first
from src.resolvers.quotas import consume
from src.resolvers.users import require_registered
from src.services import Services

OPERATION = "sendWhisper"
MAX_LENGTH = 500


@dataclass(frozen=True)
class NewWhisper:
    content: str
    anonymous: bool = True
    recipient_id: str | None = None
    reply_to_id: str | None = None
    idempotency_key: str | None = None


def _uuid(raw: str | None, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        raise NotFound(
            "No such whisper." if field == "replyToId" else "No such user.", field=field
        ) from None


def _unreachable(field: str) -> UserFacingError:
    # One answer for missing, banned, deleted, unregistered, blocked (either way) and self.
    return NotFound("This person cannot receive whispers.", field=field)


async def received_whisper(
    session: AsyncSession, viewer_id: uuid.UUID, whisper_id: uuid.UUID
) -> Whisper | None:
    """A whisper in the viewer's inbox (`rules.shown_to_recipient`), else None."""
    found = await session.exec(
        select(Whisper).where(col(Whisper.id) == whisper_id, *shown_to_recipient(viewer_id))
    )
    return found.first()


async def send_whisper(
    session: AsyncSession, services: Services, sender: User, data: NewWhisper
) -> Whisper:
    """Send (or, with a repeated idempotency key, return the first) whisper.

    A reply to an anonymous, unrevealed whisper goes through whatever its hidden sender's
    state: the same checks, quota, row and answer. It is delivered only when they may receive
    it (`rules.may_whisper`); otherwise it is stored withheld, and the replier cannot tell.
    """
    require_registered(sender)
    await rate_limit(services, "whisper:user", str(sender.id))
    if (
        data.idempotency_key
        and (stored := await idempotency.claim(session, sender.id, OPERATION, data.idempotency_key))
        is not None
    ):
        existing = await session.get(Whisper, uuid.UUID(stored["whisperId"]))
        if existing is None:  # deleted since: the key stays spent
            raise NotFound("That whisper no longer exists.", field="idempotencyKey")
        return existing
    content = data.content.strip()
    if not 1 <= len(content) <= MAX_LENGTH:
        raise InvalidInput(f"A whisper is 1 to {MAX_LENGTH} characters.", field="content")
    blind = False  # the sender does not know whom it goes to
    if data.reply_to_id is not None:
        if data.recipient_id is not None:
            raise InvalidInput("Give recipientId or replyToId, not both.", field="recipientId")
        original = await received_whisper(session, sender.id, _uuid(data.reply_to_id, "replyToId"))
        if original is None:
            raise NotFound("No such whisper.", field="replyToId")
        recipient_id: uuid.UUID | None = original.sender_id
        field, reply_to = "replyToId", original.id
        blind = sender_visible(original, sender.id) is None
    elif data.recipient_id is not None:
        recipient_id, field, reply_to = _uuid(data.recipient_id, "recipientId"), "recipientId", None
    else:
        raise InvalidInput(
            "recipientId is required unless replyToId is given.", field="recipientId"
        )
    deliver = await can_whisper(session, sender.id, recipient_id)
    if not deliver and not blind:
        raise _unreachable(field)
    await check_text(session, services, sender, {"content": content}, scene=SCENE_SOCIAL)
    await consume(session, services, sender.id, "WHISPER", now=services.clock())
    whisper = Whisper(
        sender_id=sender.id,
        recipient_id=recipient_id,
        content=content,
        is_anonymous=data.anonymous,
        reply_to_id=reply_to,
        idempotency_key=data.idempotency_key,
        withheld=not deliver,
        created_at=services.clock(),
    )
    session.add(whisper)
    await session.flush()
    # A withheld reply wakes nobody, through the same statement: the replier's request runs
    # the same steps either way.
    woken = [recipient_id] if deliver and recipient_id is not None else []
    await events.publish(session, events.WHISPER, woken)
    if data.idempotency_key:
        await idempotency.remember(
            session, sender.id, OPERATION, data.idempotency_key, {"whisperId": str(whisper.id)}
        )
    return whisper


def delivery_notice(services: Services, whisper: Whisper) -> Callable[[], Awaitable[None]] | None:
    """What to run after commit to tell an offline recipient a whisper arrived (nothing for a
    withheld reply). It decides in its own transaction, after the answer: the sender's answer
    must not take longer or shorter depending on the recipient's presence."""
    if whisper.withheld or whisper.recipient_id is None:
        return None
    return notify.offline_notice_job(services, whisper.recipient_id)


def sender_visible(whisper: Whisper, viewer_id: uuid.UUID) -> uuid.UUID | None:
    """The sender as `viewer_id` may know them: null while anonymous and unrevealed for the
    recipient, null for a deleted sender."""
    if whisper.sender_id == viewer_id:
        return viewer_id
    if whisper.is_anonymous and whisper.revealed_at is None:
        return None
    return whisper.sender_id


def recipient_visible(
    whisper: Whisper, original: Whisper | None, viewer_id: uuid.UUID
) -> uuid.UUID | None:
    """The recipient as `viewer_id` may know them: for the writer of a reply to an anonymous,
    unrevealed whisper, null — replying never reveals who it goes to."""
    if whisper.recipient_id == viewer_id:
        return viewer_id
    if original is not None and sender_visible(original, viewer_id) is None:
        return None
    return whisper.recipient_id


def read_at_visible(
    whisper: Whisper, original: Whisper | None, viewer_id: uuid.UUID
) -> datetime | None:
    """When the recipient read it, as `viewer_id` may know: never for the writer of a reply
    to an anonymous, unrevealed whisper — that the reply was read would tell that it was
    delivered, which depends on who its hidden recipient is."""
    if (
        whisper.recipient_id != viewer_id
        and recipient_visible(whisper, original, viewer_id) is None
    ):
        return None
    return whisper.read_at


async def visible_whisper(
    session: AsyncSession, viewer_id: uuid.UUID, raw_id: str
) -> Whisper | None:
    """A whisper the viewer sent or received; anything else is None, as for a missing id."""
    try:
        whisper_id = uuid.UUID(raw_id)
    except ValueError:
        return None
    found = await session.exec(
        select(Whisper).where(
            col(Whisper.id) == whisper_id,
            or_(col(Whisper.sender_id) == viewer_id, shown_to_recipient(viewer_id)),
        )
    )
    return found.first()


async def reveal(session: AsyncSession, services: Services, viewer: User, raw_id: str) -> Whisper:
    whisper = await visible_whisper(session, viewer.id, raw_id)
    if whisper is None or whisper.sender_id != viewer.id:
        raise NotFound("No such whisper.", field="id")
    if whisper.is_anonymous and whisper.revealed_at is None:
        # A recipient who blocked the sender (either way, or through blockWhisperSender), or
        # cannot receive, never sees a reveal: the whisper stays anonymous for them, as it
        # would from anyone else. The writer of a reply to an anonymous whisper does not know
        # whom it reached: for them a reveal always succeeds (a refusal would tell).
        original = await session.get(Whisper, whisper.reply_to_id) if whisper.reply_to_id else None
        knows_recipient = recipient_visible(whisper, original, viewer.id) is not None
        if knows_recipient and not await can_whisper(session, viewer.id, whisper.recipient_id):
            raise _unreachable("id")
        whisper.revealed_at = services.clock()
        session.add(whisper)
        await session.flush()
    return whisper


async def mark_read(
    session: AsyncSession, services: Services, viewer: User, raw_id: str
) -> Whisper:
    whisper = await visible_whisper(session, viewer.id, raw_id)
    if whisper is None or whisper.recipient_id != viewer.id:
        raise NotFound("No such whisper.", field="id")
    if whisper.read_at is None:
        whisper.read_at = services.clock()
        session.add(whisper)
        await session.flush()
    return whisper


async def received(
    session: AsyncSession,
    viewer_id: uuid.UUID,
    *,
    unread_only: bool,
    first: int | None,
    after: str | None,
) -> Page[Whisper]:
    """The viewer's inbox, newest first."""
    query = select(Whisper).where(shown_to_recipient(viewer_id))
    if unread_only:
        query = query.where(col(Whisper.read_at).is_(None))
    return await _page(session, query, first, after)


async def sent(
    session: AsyncSession, viewer_id: uuid.UUID, *, first: int | None, after: str | None
) -> Page[Whisper]:
    return await _page(
        session, select(Whisper).where(col(Whisper.sender_id) == viewer_id), first, after
    )


async def _page(
    session: AsyncSession, query: Any, first: int | None, after: str | None
) -> Page[Whisper]:
    return await newest_first(session, query, Whisper, first=first, after=after)


LIVE_BATCH = 200  # rows per subscription read; the next event (or wake-up) reads on


async def received_after(
    session: AsyncSession, viewer_id: uuid.UUID, cursor: tuple[datetime, uuid.UUID] | None
) -> list[Whisper]:
    """What arrived after `cursor`, oldest first: the catch-up and live feed of the
    `whisperReceived` subscription (so nothing is missed, nothing comes twice)."""
    query = select(Whisper).where(shown_to_recipient(viewer_id))
    if cursor is not None:
        query = query.where(
            after_cursor([col(Whisper.created_at), col(Whisper.id)], cursor, descending=False)
        )
    query = query.order_by(col(Whisper.created_at), col(Whisper.id)).limit(LIVE_BATCH)
    return list(await session.exec(query))


async def export_whispers(session: AsyncSession, user_id: uuid.UUID) -> dict[str, Any]:
    """Whispers the user sent and received, exposing only what they may know (never whether a
    reply to an anonymous whisper was delivered: that would tell who its recipient is)."""
    rows = list(
        await session.exec(
            select(Whisper)
            .where(
                or_(
                    col(Whisper.sender_id) == user_id,
                    and_(col(Whisper.recipient_id) == user_id, col(Whisper.withheld).is_(False)),
                )
            )
            .order_by(col(Whisper.created_at), col(Whisper.id))
        )
    )
    originals = {w.id: w for w in rows}
    out = []
    for w in rows:
        original = originals.get(w.reply_to_id) if w.reply_to_id else None
        sender = sender_visible(w, user_id)
        recipient = recipient_visible(w, original, user_id)
        read_at = read_at_visible(w, original, user_id)
        out.append(
            {
                "id": str(w.id),
                "content": w.content,
                "createdAt": w.created_at.isoformat(),
                "anonymous": w.is_anonymous,
                "revealedAt": w.revealed_at.isoformat() if w.revealed_at else None,
                "readAt": read_at.isoformat() if read_at else None,
                "senderId": str(sender) if sender else None,
                "recipientId": str(recipient) if recipient else None,
                "replyToId": str(w.reply_to_id) if w.reply_to_id in originals else None,
            }
        )
    return {"whispers": out}


async def erase_whispers(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Account deletion: every whisper loses its link to the user. What they sent stays with
    its recipients, from "a deleted user"; what they received stays with its senders, to "a
    deleted user" (deleting it would tell the writer of a reply to an anonymous whisper that
    its hidden sender left). A whisper linked to nobody any more goes."""
    await session.exec(
        update(Whisper).where(col(Whisper.sender_id) == user_id).values(sender_id=None)
    )
    await session.exec(
        update(Whisper).where(col(Whisper.recipient_id) == user_id).values(recipient_id=None)
    )
    await session.exec(
        update(WhisperSenderBlock)
        .where(col(WhisperSenderBlock.sender_id) == user_id)
        .values(sender_id=None)
    )
    await session.exec(
        sa_delete(Whisper).where(
            col(Whisper.sender_id).is_(None),
            col(Whisper.recipient_id).is_(None),
        )
    )
