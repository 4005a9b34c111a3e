"""Moderation: deciding reports, warnings, bans, discovery holds and roles. Every step is
recorded in `moderation_actions` (who, when, what, to whom, on which report)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from src import events
from src.auth.phone import InvalidPhone, normalize_phone
from src.models import ModerationAction, User, UserReport
from src.models.reports import REPORT_ACTIONS
from src.models.users import USER_ROLES
from src.resolvers.auth import revoke_all_sessions
from src.resolvers.errors import InvalidInput, NotFound, UserFacingError
from src.resolvers.indexing import enqueue
from src.resolvers.profiles import clean_text

MAX_NOTE = 1000


@dataclass(frozen=True)
class Resolution:
    report_id: str
    status: str
    action: str
    note: str | None = None


def record(
    session: AsyncSession,
    *,
    target_id: uuid.UUID,
    action: str,
    moderator_id: uuid.UUID | None = None,
    report_id: uuid.UUID | None = None,
    note: str | None = None,
) -> None:
    session.add(
        ModerationAction(
            moderator_id=moderator_id,
            target_id=target_id,
            report_id=report_id,
            action=action,
            note=note,
        )
    )


async def resolve_report(
    session: AsyncSession, moderator: User, data: Resolution, now: datetime
) -> UserReport:
    """Decide a pending report. RESOLVED takes an action (NONE, WARN, BAN); DISMISSED takes
    NONE. NONE and WARN lift an automatic discovery hold; BAN bans at once."""
    try:
        report_id = uuid.UUID(data.report_id)
    except ValueError:
        raise NotFound("No such report.", field="reportId") from None
    if data.status not in ("RESOLVED", "DISMISSED"):
        raise InvalidInput("Resolve to RESOLVED or DISMISSED.", field="status")
    if data.action not in REPORT_ACTIONS:
        raise InvalidInput("Unknown action.", field="action")
    if data.status == "DISMISSED" and data.action != "NONE":
        raise InvalidInput("A dismissed report takes the action NONE.", field="action")
    note = clean_text(data.note, "note", MAX_NOTE)
    report = (
        await session.exec(
            select(UserReport).where(col(UserReport.id) == report_id).with_for_update()
        )
    ).first()
    if report is None:
        raise NotFound("No such report.", field="reportId")
    if moderator.id in (report.reported_id, report.reporter_id):
        # Nobody judges their own case, either side of it.
        raise UserFacingError(
            "Another moderator must decide a report about you or by you.",
            code="FORBIDDEN",
            field="reportId",
        )
    if report.status != "PENDING":
        raise UserFacingError(
            "This report was already decided.", code="ALREADY_RESOLVED", field="reportId"
        )
    target = (
        await session.exec(select(User).where(col(User.id) == report.reported_id).with_for_update())
    ).first()
    if target is None:  # a whisper report whose sender deleted their account since
        if data.action == "BAN":
            raise InvalidInput("The reported account no longer exists.", field="action")
    elif data.action == "BAN":
        await ban_user(session, moderator, target, now, report_id=report.id, note=note)
    else:
        await lift_hold(session, target)
        record(
            session,
            moderator_id=moderator.id,
            target_id=target.id,
            report_id=report.id,
            action="DISMISS" if data.status == "DISMISSED" else data.action,
            note=note,
        )
    report.status = data.status
    report.decision = data.action
    report.note = note
    report.moderator_id = moderator.id
    report.resolved_at = now
    session.add(report)
    await session.flush()
    return report


async def ban_user(
    session: AsyncSession,
    moderator: User,
    target: User,
    now: datetime,
    *,
    report_id: uuid.UUID | None = None,
    note: str | None = None,
) -> None:
    """Ban at once, in the caller's transaction: the account is suspended, every login and
    refresh token revoked, open sockets told to re-check (they close with 4403), and the
    point leaves the vector index. Everything that shows people requires status 'active'."""
    if target.id == moderator.id:
        raise InvalidInput("You cannot ban yourself.", field="action")
    if target.role != "user" and moderator.role != "admin":
        raise UserFacingError("Only an administrator may ban staff.", code="FORBIDDEN")
    if target.status == "active":
        target.status = "banned"
    target.moderation_hold_at = None
    session.add(target)
    await session.flush()
    await revoke_all_sessions(session, target.id, now)
    await events.publish(session, events.ACCOUNT, [target.id])
    await enqueue(session, target.id)
    record(
        session,
        moderator_id=moderator.id,
        target_id=target.id,
        report_id=report_id,
        action="BAN",
        note=note,
    )


async def lift_hold(session: AsyncSession, target: User) -> None:
    if target.moderation_hold_at is not None:
        target.moderation_hold_at = None
        session.add(target)
        await session.flush()
        await enqueue(session, target.id)


async def grant_role(
    session: AsyncSession, who: str, role: str, *, phone_region: str = "+86"
) -> tuple[User, str]:
    """Set the role of the user with id or phone number `who`; returns (user, old role).

    Raises NotFound (no such active account) or InvalidInput (unknown role).
    """
    if role not in USER_ROLES:
        raise InvalidInput(f"The role is one of: {', '.join(USER_ROLES)}.", field="role")
    query = select(User).where(col(User.status) != "deleted")
    try:
        query = query.where(col(User.id) == uuid.UUID(who))
    except ValueError:
        try:
            query = query.where(col(User.phone) == normalize_phone(who, phone_region))
        except InvalidPhone:
            raise NotFound(f"{who!r} is neither a user id nor a phone number.") from None
    user = (await session.exec(query.with_for_update())).first()
    if user is None:
        raise NotFound(f"No account with id or phone {who!r}.")
    old = user.role
    if old != role:
        await session.exec(update(User).where(col(User.id) == user.id).values(role=role))
        user.role = role
        record(session, target_id=user.id, action="GRANT_ROLE", note=f"{old} -> {role} (CLI)")
        await session.flush()
    return user, old
