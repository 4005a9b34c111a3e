"""Content security for text other users will see (WeChat msg_sec_check v2)."""

from __future__ import annotations

import logging

from sqlmodel.ext.asyncio.session import AsyncSession

from src.auth.wechat import WechatError
from src.models import ContentReview, User
from src.resolvers.errors import UserFacingError
from src.services import Services

log = logging.getLogger(__name__)

SCENE_PROFILE = 1
SCENE_SOCIAL = 4


async def check_text(
    session: AsyncSession,
    services: Services,
    user: User,
    texts: dict[str, str],
    *,
    scene: int,
) -> None:
    """Refuse risky text with CONTENT_REJECTED (naming the field). Text WeChat wants reviewed,
    or could not judge, is accepted and queued for a moderator — or refused, per settings.

    Does nothing unless WeChat is configured (development has no checker to ask).
    """
    if not services.settings.wechat_configured or not user.wechat_openid:
        return
    to_review: list[str] = []
    for field, content in texts.items():
        if not content:
            continue
        try:
            verdict = await services.wechat.check_text(
                openid=user.wechat_openid, content=content, scene=scene
            )
        except WechatError as exc:
            log.warning("content check failed: %s", exc)
            if services.settings.content_check_unavailable == "reject":
                raise UserFacingError(
                    "Text cannot be checked right now; please try again.",
                    code="WECHAT_UNAVAILABLE",
                    field=field,
                ) from None
            log.warning("content check unavailable; %s queued for review", field)
            to_review.append(field)
            continue
        if verdict == "risky":
            raise UserFacingError(
                "This text breaks the content rules.", code="CONTENT_REJECTED", field=field
            )
        if verdict == "review":
            to_review.append(field)
    if to_review:
        session.add(ContentReview(user_id=user.id, fields=to_review, reason="unchecked"))


async def text_passes(services: Services, openid: str | None, content: str, *, scene: int) -> bool:
    """Whether `check_text` would accept `content` of the user with `openid` outright, with
    nothing to queue: the verdict a compiled write asks for before its transaction opens.
    False for risky, for review and when WeChat cannot judge (the caller then lets
    `check_text` decide, which says why or queues the review)."""
    if not services.settings.wechat_configured or not openid or not content:
        return True
    try:
        verdict = await services.wechat.check_text(openid=openid, content=content, scene=scene)
    except WechatError as exc:
        log.warning("content check failed: %s", exc)
        return False
    return verdict == "pass"
