"""Reaching people who are offline: a WeChat subscribe message when a whisper arrives.

Each message needs a one-time consent the user granted in the mini app (wx.requestSubscribe-
Message); the app reports them with `grantSubscribeMessages`, and each credit buys one send.
The notice says only that a whisper arrived: never who sent it, never the text.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from src import events
from src.auth.wechat import WechatError
from src.models import SubscribeCredit, User
from src.resolvers.errors import InvalidInput
from src.services import Services

log = logging.getLogger(__name__)

MAX_CREDITS = 50  # more consents than this are not kept

_SPEND = text(
    "UPDATE subscribe_credits SET credits = credits - 1"
    " WHERE user_id = :user_id AND template_id = :template AND credits > 0 RETURNING credits"
)


async def grant(
    session: AsyncSession, services: Services, user: User, template_ids: list[str]
) -> None:
    """Record one-time consents the user gave in the mini app, one credit per template id."""
    known = services.settings.wechat_subscribe_template_whisper
    for template_id in template_ids:
        if template_id != known:
            raise InvalidInput("Unknown subscribe message template.", field="templateIds")
        await session.exec(
            insert(SubscribeCredit)
            .values(user_id=user.id, template_id=template_id, credits=1)
            .on_conflict_do_update(
                index_elements=["user_id", "template_id"],
                set_={"credits": text(f"LEAST(subscribe_credits.credits + 1, {MAX_CREDITS})")},
            )
        )


def offline_notice_job(
    services: Services, recipient_id: uuid.UUID
) -> Callable[[], Awaitable[None]] | None:
    """The job to run after a whisper to `recipient_id` committed: when they have no socket
    open anywhere and a credit for the template, spend the credit and send the notice. None
    when notices are not configured.

    It decides in its own transaction, after the sender's answer has gone: whether the
    recipient is online must not change how long sending takes (for a reply to an anonymous
    whisper that would hint at who its hidden recipient is)."""
    settings = services.settings
    template = settings.wechat_subscribe_template_whisper
    if not template or not settings.wechat_configured:
        return None

    async def job() -> None:
        async with services.sessionmaker() as session, session.begin():
            if await session.scalar(events.ONLINE, {"user_id": recipient_id}):
                return
            openid = await session.scalar(
                select(col(User.wechat_openid)).where(col(User.id) == recipient_id)
            )
            if (
                not openid
                or await session.scalar(_SPEND, {"user_id": recipient_id, "template": template})
                is None
            ):
                return
        try:
            await services.wechat.send_subscribe_message(
                openid=openid,
                template_id=template,
                page=settings.wechat_subscribe_page,
                data={"thing1": "你收到一条新的悄悄话", "thing2": "打开悄悄查看"},
                state=settings.miniprogram_state,
            )
        except WechatError as exc:  # a notice is a courtesy: the whisper is delivered anyway
            log.warning("subscribe message not sent: %s", exc)

    return job
