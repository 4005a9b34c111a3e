"""Reporting users and whispers: proofs checked and stripped, repeats merged, automatic
protection that fresh accounts cannot buy.

The reported person never learns who reported them: no field, export or event names the
reporter to anyone but moderators. A whisper report names the whisper, not its sender: the
moderators see who sent it, the reporter never does (nor the decision, which could tell).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import func, or_, text, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from src.models import ModerationAction, User, UserReport, Whisper
from src.models.reports import REPORT_REASONS, REPORT_STATUSES
from src.models.rules import counts_toward_hold
from src.resolvers.auth import rate_limit
from src.resolvers.errors import InvalidInput, NotFound, UserFacingError
from src.resolvers.images import CleanImage, clean_image
from src.resolvers.indexing import enqueue
from src.resolvers.pagination import Page, newest_first
from src.resolvers.profiles import clean_text
from src.resolvers.users import require_registered
from src.resolvers.whispers import received_whisper
from src.services import Services
from src.storage import StorageError
from src.storage.base import new_key

log = logging.getLogger(__name__)

MAX_PROOFS = 4
MAX_DETAILS = 1000
MERGE_WINDOW = timedelta(days=1)
HOLD_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class NewReport:
    """reportUser (`reported_user_id`) or reportWhisper (`whisper_id`)."""

    reason: str
    reported_user_id: str | None = None
    whisper_id: str | None = None
    details: str | None = None
    proofs: list[Any] = field(default_factory=list)  # uploaded files (async `read`)


@dataclass(frozen=True)
class Filed:
    report: UserReport
    new_keys: list[str]  # proofs stored by this call (for the media check)


def _too_many(already: int = 0) -> UserFacingError:
    message = f"At most {MAX_PROOFS} proof images per report"
    if already:
        message += f"; this report already has {already}"
    return UserFacingError(message + ".", code="TOO_MANY_PROOFS", field="proofs")


async def _read_proofs(uploads: list[Any], max_bytes: int) -> list[bytes]:
    """Each upload's bytes, refusing anything over `max_bytes` without reading all of it."""
    blobs = []
    for upload in uploads:
        read = getattr(upload, "read", None)
        if read is None:  # e.g. a string sent as a JSON variable instead of a file
            raise InvalidInput("Proofs must be sent as file uploads.", field="proofs")
        data = await read(max_bytes + 1)  # spooled to disk past 1 MB: read in a thread
        if len(data) > max_bytes:
            raise UserFacingError(
                f"Each proof image is at most {max_bytes // (1024 * 1024)} MB.",
                code="PROOF_TOO_LARGE",
                field="proofs",
            )
        blobs.append(data)
    return blobs


async def _target(session: AsyncSession, reporter: User, raw_id: str) -> uuid.UUID:
    try:
        target = uuid.UUID(raw_id)
    except ValueError:
        raise NotFound("No such user.", field="reportedUserId") from None
    if target == reporter.id:
        raise UserFacingError(
            "You cannot report yourself.", code="CANNOT_REPORT_SELF", field="reportedUserId"
        )
    # Any account that ever existed, hidden from the reporter or not: a harassed person can
    # report someone who then blocked them, and the answer tells nothing the reporter did not
    # know (ids are random: only one they were shown answers anything but NOT_FOUND).
    found = await session.scalar(select(col(User.id)).where(col(User.id) == target))
    if found is None:
        raise NotFound("No such user.", field="reportedUserId")
    return target


async def report_user(
    session: AsyncSession, services: Services, reporter: User, data: NewReport
) -> Filed:
    """File a report about a user, or merge it into the reporter's pending report of the same
    person from the last day (proofs appended up to 4, details and reason updated).

    Every check runs before anything is stored: a refused report leaves no file behind.
    """
    require_registered(reporter)
    await rate_limit(services, "report:user", str(reporter.id))
    if data.reason not in REPORT_REASONS:
        raise InvalidInput("Unknown reason.", field="reason")
    target = await _target(session, reporter, data.reported_user_id or "")
    return await _file(session, services, reporter, data, target=target, whisper=None)


async def report_whisper(
    session: AsyncSession, services: Services, reporter: User, data: NewReport
) -> Filed:
    """File a report about the sender of a whisper the reporter received, whoever it is (or
    merge it into their pending report of the same whisper from the last day). The same
    answer whatever the sender's state — deleted, banned, blocked either way — and NOT_FOUND
    for a whisper the reporter did not receive, exactly as for an unknown id. Whisper reports
    never count toward the automatic hold: the reporter could watch who disappears."""
    require_registered(reporter)
    await rate_limit(services, "report:user", str(reporter.id))
    if data.reason not in REPORT_REASONS:
        raise InvalidInput("Unknown reason.", field="reason")
    try:
        whisper_id = uuid.UUID(str(data.whisper_id))
    except ValueError:
        raise NotFound("No such whisper.", field="whisperId") from None
    whisper = await received_whisper(session, reporter.id, whisper_id)
    if whisper is None:
        raise NotFound("No such whisper.", field="whisperId")
    return await _file(session, services, reporter, data, target=whisper.sender_id, whisper=whisper)


async def _file(
    session: AsyncSession,
    services: Services,
    reporter: User,
    data: NewReport,
    *,
    target: uuid.UUID | None,
    whisper: Whisper | None,
) -> Filed:
    settings = services.settings
    # Seen by moderators only, and quoting abuse is the point: no content check here.
    details = clean_text(data.details, "details", MAX_DETAILS)
    if len(data.proofs) > MAX_PROOFS:
        raise _too_many()
    blobs = await _read_proofs(data.proofs, settings.proof_max_bytes)
    images: list[CleanImage] = [
        await asyncio.to_thread(clean_image, blob, max_pixels=settings.proof_max_pixels)
        for blob in blobs
    ]
    # One report at a time per reported person (or whisper): merges and the hold count stay
    # exact.
    subject = f"report:{target}" if whisper is None else f"report-whisper:{whisper.id}"
    await session.scalar(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": subject})
    now = services.clock()
    # A user report merges with user reports of that person, a whisper report with reports
    # of that whisper: merging across would tell the reporter who sent it.
    same = (
        (col(UserReport.kind) == "user", col(UserReport.reported_id) == target)
        if whisper is None
        else (col(UserReport.kind) == "whisper", col(UserReport.whisper_id) == whisper.id)
    )
    existing = (
        await session.exec(
            select(UserReport)
            .where(
                col(UserReport.reporter_id) == reporter.id,
                *same,
                col(UserReport.status) == "PENDING",
                col(UserReport.created_at) > now - MERGE_WINDOW,
            )
            .order_by(col(UserReport.created_at).desc())
            .limit(1)
            .with_for_update()
        )
    ).first()
    if existing is not None and len(existing.proof_keys) + len(images) > MAX_PROOFS:
        raise _too_many(len(existing.proof_keys))
    keys = await _store(services, images)
    try:
        if existing is not None:
            existing.reason = data.reason
            if details is not None:
                existing.details = details
            existing.proof_keys = [*existing.proof_keys, *keys]
            existing.updated_at = now
            report = existing
        else:
            report = UserReport(
                reporter_id=reporter.id,
                reported_id=target,
                kind="user" if whisper is None else "whisper",
                whisper_id=whisper.id if whisper else None,
                whisper_content=whisper.content if whisper else None,
                reason=data.reason,
                details=details,
                proof_keys=keys,
                # the merge window and the hold's 24 hours count from it, on the one clock
                created_at=now,
            )
        session.add(report)
        await session.flush()
        if whisper is None and target is not None:
            await _hold_if_reported_by_many(session, services, target)
    except BaseException:
        await _discard(services, keys)
        raise
    return Filed(report=report, new_keys=keys)


async def _store(services: Services, images: list[CleanImage]) -> list[str]:
    keys: list[str] = []
    try:
        for image in images:
            key = new_key(image.extension)
            await services.storage.put(key, image.data, image.content_type)
            keys.append(key)
    except StorageError as exc:
        log.warning("storing a proof failed: %s", exc)
        await _discard(services, keys)
        raise UserFacingError(
            "The proof images could not be stored; please try again.", code="UPLOAD_FAILED"
        ) from None
    return keys


async def _discard(services: Services, keys: list[str]) -> None:
    for key in keys:
        try:
            await services.storage.delete(key)
        except StorageError:
            log.warning("could not remove an orphaned proof")


async def _hold_if_reported_by_many(
    session: AsyncSession, services: Services, target: uuid.UUID
) -> None:
    """Enough distinct established reporters (`rules.counts_toward_hold`) with pending
    reports within 24 h hide the person from discovery until a moderator decides (their own
    `discoverable` choice is left alone)."""
    now = services.clock()
    settings = services.settings
    reporters = await session.scalar(
        select(func.count(func.distinct(col(UserReport.reporter_id))))
        .join(User, col(User.id) == col(UserReport.reporter_id))
        .where(
            col(UserReport.reported_id) == target,
            col(UserReport.status) == "PENDING",
            col(UserReport.created_at) > now - HOLD_WINDOW,
            counts_toward_hold(now, settings.report_hold_min_account_age_h),
        )
    )
    if (reporters or 0) < services.settings.report_hold_threshold:
        return
    held = await session.scalar(
        update(User)
        .where(
            col(User.id) == target,
            col(User.moderation_hold_at).is_(None),
            col(User.status) == "active",
        )
        .values(moderation_hold_at=now)
        .returning(col(User.id))
    )
    if held is not None:
        session.add(
            ModerationAction(
                target_id=target,
                action="HOLD",
                note=f"automatic: {reporters} established people reported them within 24 h",
            )
        )
        await enqueue(session, target)


async def reports_page(
    session: AsyncSession,
    moderator_id: uuid.UUID,
    *,
    status: str | None,
    first: int | None,
    after: str | None,
) -> Page[UserReport]:
    """The moderators' queue, newest first, optionally of one status. Never the reports about
    the moderator (that would name who reported them) nor the reports they made (a whisper
    report would name its sender): those are for other moderators."""
    query = select(UserReport).where(
        or_(col(UserReport.reported_id).is_(None), col(UserReport.reported_id) != moderator_id),
        or_(col(UserReport.reporter_id).is_(None), col(UserReport.reporter_id) != moderator_id),
    )
    if status is not None:
        if status not in REPORT_STATUSES:
            raise InvalidInput("Unknown status.", field="status")
        query = query.where(col(UserReport.status) == status)
    return await newest_first(session, query, UserReport, first=first, after=after)


async def own_reports_page(
    session: AsyncSession, reporter_id: uuid.UUID, *, first: int | None, after: str | None
) -> Page[UserReport]:
    """The reports the viewer made, newest first (never reports about them)."""
    query = select(UserReport).where(col(UserReport.reporter_id) == reporter_id)
    return await newest_first(session, query, UserReport, first=first, after=after)


async def erase_reports(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Account deletion: reports the user made stay for moderation (they are about someone
    else, with evidence) but no longer lead back to them. Reports about the user stay."""
    await session.exec(
        update(UserReport).where(col(UserReport.reporter_id) == user_id).values(reporter_id=None)
    )


async def export_reports(session: AsyncSession, user_id: uuid.UUID) -> dict[str, Any]:
    """The reports the user made, with their outcome. Reports about them are not theirs to
    see: that would tell them who reported them. A whisper report names the whisper, never
    its sender, and only whether it was decided (`reporter_status`)."""
    rows = await session.exec(
        select(UserReport)
        .where(col(UserReport.reporter_id) == user_id)
        .order_by(col(UserReport.created_at))
    )
    return {
        "reportsMade": [
            {
                "id": str(r.id),
                "reportedUserId": str(r.reported_id) if r.kind == "user" else None,
                "whisperId": str(r.whisper_id) if r.whisper_id else None,
                "reason": r.reason,
                "details": r.details,
                "proofCount": len(r.proof_keys),
                "status": reporter_status(r),
                "decision": reporter_decision(r),
                "createdAt": r.created_at.isoformat(),
            }
            for r in rows
        ]
    }


def reporter_status(report: UserReport) -> str:
    """The status its reporter sees. A whisper report is PENDING or RESOLVED, whatever was
    decided: a dismissal against a ban, timed with someone disappearing, would tell who sent
    the whisper."""
    if report.kind == "whisper" and report.status != "PENDING":
        return "RESOLVED"
    return report.status


def reporter_decision(report: UserReport) -> str | None:
    """The decision its reporter sees: none for a whisper report (see `reporter_status`)."""
    return None if report.kind == "whisper" else report.decision
