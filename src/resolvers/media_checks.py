"""WeChat's asynchronous image check (media_check_async v2) for proofs and avatars.

Submitting happens after the request's commit and never fails it: WeChat down means the image
goes unchecked (moderators still see proofs). The verdict arrives later as a `wxa_media_check`
push event; `risky` flags the report for moderators or removes the avatar.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from sqlalchemy import all_, func, literal, update
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, delete
from sqlmodel.ext.asyncio.session import AsyncSession

from src.auth.wechat import WechatError
from src.models import MediaCheck, UserProfile, UserReport
from src.resolvers.content import SCENE_PROFILE, SCENE_SOCIAL
from src.resolvers.moderation import record
from src.services import Services

log = logging.getLogger(__name__)

PROOF_RISKY = "PROOF_RISKY"
VERDICTS = ("pass", "review", "risky")


def enabled(services: Services, openid: str | None) -> bool:
    return services.settings.wechat_configured and bool(openid)


async def _submit(
    services: Services,
    *,
    kind: str,
    user_id: uuid.UUID,
    openid: str,
    url: str,
    subject: str,
    scene: int,
    report_id: uuid.UUID | None = None,
) -> str | None:
    try:
        trace_id = await services.wechat.media_check_async(
            openid=openid, media_url=url, scene=scene
        )
    except WechatError as exc:
        log.warning("media check not submitted (%s): %s", kind, exc)
        return None
    async with services.sessionmaker() as session, session.begin():
        await session.exec(
            insert(MediaCheck)
            .values(
                trace_id=trace_id,
                kind=kind,
                user_id=user_id,
                report_id=report_id,
                subject=subject,
            )
            .on_conflict_do_nothing()
        )
    return trace_id


async def check_proofs(
    services: Services,
    *,
    report_id: uuid.UUID,
    uploader_id: uuid.UUID,
    openid: str | None,
    keys: list[str],
) -> None:
    """Send new proofs to the media check through signed links WeChat can fetch."""
    if not keys or not enabled(services, openid) or not services.settings.public_base_url:
        return
    for key in keys:
        url = services.proof_links.url(key, services.settings.proof_check_url_ttl_s)
        await _submit(
            services,
            kind="proof",
            user_id=uploader_id,
            openid=openid or "",
            url=url,
            subject=key,
            scene=SCENE_SOCIAL,
            report_id=report_id,
        )


async def check_avatar(
    services: Services, *, user_id: uuid.UUID, openid: str | None, url: str
) -> None:
    if enabled(services, openid):
        await _submit(
            services,
            kind="avatar",
            user_id=user_id,
            openid=openid or "",
            url=url,
            subject=url,
            scene=SCENE_PROFILE,
        )


async def apply_verdict(services: Services, event: dict[str, Any]) -> bool:
    """Apply a `wxa_media_check` event once; False when it is not one of ours."""
    if event.get("Event") != "wxa_media_check":
        return False
    if event.get("appid") not in (None, services.settings.wechat_app_id):
        return False
    trace_id = event.get("trace_id")
    result = event.get("result") or {}
    suggest = result.get("suggest") if isinstance(result, dict) else None
    if not isinstance(trace_id, str) or suggest not in VERDICTS:
        return False
    label = result.get("label")
    now = services.clock()
    async with services.sessionmaker() as session, session.begin():
        check = await session.scalar(
            update(MediaCheck)
            .where(col(MediaCheck.trace_id) == trace_id, col(MediaCheck.verdict) == "pending")
            .values(
                verdict=suggest,
                label=label if isinstance(label, int) else None,
                decided_at=now,
            )
            .returning(MediaCheck)
        )
        if check is None:  # unknown, or already applied (WeChat retries pushes)
            return False
        if suggest != "risky":
            return True
        if check.kind == "proof" and check.report_id is not None:
            await session.exec(
                update(UserReport)
                .where(
                    col(UserReport.id) == check.report_id,
                    literal(PROOF_RISKY) != all_(col(UserReport.flags)),
                )
                .values(flags=func.array_append(col(UserReport.flags), PROOF_RISKY))
            )
        elif check.kind == "avatar":
            removed = await session.scalar(
                update(UserProfile)
                .where(
                    col(UserProfile.user_id) == check.user_id,
                    col(UserProfile.avatar_url) == check.subject,
                )
                .values(avatar_url=None, updated_at=now)
                .returning(col(UserProfile.user_id))
            )
            if removed is not None:
                record(
                    session,
                    target_id=check.user_id,
                    action="AVATAR_REMOVED",
                    note=f"WeChat media check: risky (label {label})",
                )
    return True


async def erase_media_checks(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Account deletion: pending checks of the user's images go with them."""
    await session.exec(delete(MediaCheck).where(col(MediaCheck.user_id) == user_id))
