"""The account's lifecycle: registration with consent, phone binding, export and deletion.

Export and deletion are lists of one function per domain: a feature that stores personal data
adds its exporter and its eraser here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from src.auth.wechat import WechatError
from src.models import AuthSession, Consent, SmsCode, User, UserProfile
from src.resolvers.ai_sessions import erase_ai, export_ai
from src.resolvers.auth import parse_phone, rate_limit, revoke_all_sessions
from src.resolvers.blocks import erase_blocks, export_blocks
from src.resolvers.calendar import local_day
from src.resolvers.content import SCENE_PROFILE, check_text
from src.resolvers.errors import InvalidInput, UserFacingError
from src.resolvers.indexing import enqueue
from src.resolvers.matches import erase_swipes_and_matches, export_swipes_and_matches
from src.resolvers.media_checks import erase_media_checks
from src.resolvers.profiles import (
    GENDERS,
    clean_https_url,
    clean_nickname,
    erase_profile,
    export_profile,
    parse_birth_date,
)
from src.resolvers.reports import erase_reports, export_reports
from src.resolvers.whispers import erase_whispers, export_whispers
from src.services import Services


@dataclass(frozen=True)
class Registration:
    accepted_policy_version: str
    nickname: str
    avatar_url: str | None = None
    gender: str | None = None
    birth_date: str | None = None


async def register(
    session: AsyncSession, services: Services, user: User, data: Registration
) -> User:
    """Record consent to the privacy guide and the basic profile; the account becomes usable."""
    settings = services.settings
    if user.registered_at is not None:
        raise UserFacingError("This account is already registered.", code="ALREADY_EXISTS")
    if data.accepted_policy_version != settings.privacy_policy_version:
        raise InvalidInput(
            f"Accept the current privacy guide (version {settings.privacy_policy_version}).",
            field="acceptedPolicyVersion",
        )
    gender = data.gender or "UNDISCLOSED"
    if gender not in GENDERS:
        raise InvalidInput("Unknown gender.", field="gender")
    now = services.clock()
    nickname = clean_nickname(data.nickname)
    await check_text(session, services, user, {"nickname": nickname}, scene=SCENE_PROFILE)
    profile = UserProfile(
        user_id=user.id,
        nickname=nickname,
        avatar_url=clean_https_url(data.avatar_url, "avatarUrl"),
        gender=gender,
        birth_date=parse_birth_date(
            data.birth_date, min_age=settings.min_age, today=local_day(now)
        ),
    )
    session.add(profile)
    session.add(Consent(user_id=user.id, policy_version=data.accepted_policy_version))
    user.registered_at = now
    session.add(user)
    await session.flush()
    await enqueue(session, user.id)
    return user


async def bind_phone(session: AsyncSession, services: Services, user: User, code: str) -> User:
    """Bind the phone number behind a `getPhoneNumber` code (one account per phone)."""
    await rate_limit(services, "bind_phone:user", str(user.id))
    code = code.strip()
    if not 1 <= len(code) <= 256:
        raise InvalidInput("The phone code is empty or too long.", field="code")
    if code.startswith("dev:") and services.settings.dev_login_enabled:
        raw = code[4:]
    elif not services.settings.wechat_configured:
        raise UserFacingError(
            "WeChat is not configured; in development use code 'dev:<phone>'.",
            code="INVALID_CODE",
            field="code",
        )
    else:
        try:
            raw = await services.wechat.phone_number(code)
        except WechatError as exc:
            if exc.kind == "invalid_code":
                raise UserFacingError(
                    "The phone code is invalid or already used.", code="INVALID_CODE", field="code"
                ) from None
            raise UserFacingError(
                "WeChat is not answering; please try again.", code="WECHAT_UNAVAILABLE"
            ) from None
    phone = parse_phone(services, raw)
    if user.phone == phone:
        return user
    taken = await session.scalar(
        select(col(User.id)).where(col(User.phone) == phone, col(User.id) != user.id)
    )
    if taken is not None:
        raise UserFacingError(
            "This phone number belongs to another account.", code="ALREADY_EXISTS", field="code"
        )
    user.phone = phone
    session.add(user)
    await session.flush()
    return user


async def _erase_login_state(session: AsyncSession, user: User) -> None:
    if user.phone:
        await session.exec(delete(SmsCode).where(col(SmsCode.phone) == user.phone))


async def _erase_profile(session: AsyncSession, user: User) -> None:
    await erase_profile(session, user.id)


async def _erase_blocks(session: AsyncSession, user: User) -> None:
    await erase_blocks(session, user.id)


async def _erase_whispers(session: AsyncSession, user: User) -> None:
    await erase_whispers(session, user.id)


async def _erase_swipes(session: AsyncSession, user: User) -> None:
    await erase_swipes_and_matches(session, user.id)


async def _erase_reports(session: AsyncSession, user: User) -> None:
    await erase_reports(session, user.id)
    await erase_media_checks(session, user.id)


async def _erase_ai(session: AsyncSession, user: User) -> None:
    await erase_ai(session, user.id)


ERASERS: list[Callable[[AsyncSession, User], Awaitable[None]]] = [
    _erase_login_state,
    _erase_profile,
    _erase_blocks,
    _erase_whispers,
    _erase_swipes,
    _erase_reports,
    _erase_ai,
]


async def delete_account(session: AsyncSession, user: User, now: datetime) -> None:
    """Remove or anonymize everything personal (PIPL), revoke every session, and free the
    openid and phone for a future account. The row stays as "a deleted user" so that what
    others received keeps its shape."""
    await revoke_all_sessions(session, user.id, now)
    for erase in ERASERS:
        await erase(session, user)
    user.status = "deleted"
    user.wechat_openid = None
    user.wechat_unionid = None
    user.phone = None
    session.add(user)
    await session.flush()
    await enqueue(session, user.id)  # the worker removes the point


async def _export_account(session: AsyncSession, user: User) -> dict[str, Any]:
    consents = await session.exec(
        select(Consent).where(col(Consent.user_id) == user.id).order_by(col(Consent.accepted_at))
    )
    sessions = await session.exec(
        select(AuthSession)
        .where(col(AuthSession.user_id) == user.id)
        .order_by(col(AuthSession.created_at))
    )
    return {
        "account": {
            "id": str(user.id),
            "phone": user.phone,
            "wechatOpenid": user.wechat_openid,
            "wechatUnionid": user.wechat_unionid,
            "status": user.status,
            "role": user.role,
            "registeredAt": _iso(user.registered_at),
            "createdAt": _iso(user.created_at),
        },
        "consents": [
            {"policyVersion": c.policy_version, "acceptedAt": _iso(c.accepted_at)} for c in consents
        ],
        "sessions": [
            {"createdAt": _iso(s.created_at), "revokedAt": _iso(s.revoked_at)} for s in sessions
        ],
    }


async def _export_profile(session: AsyncSession, user: User) -> dict[str, Any]:
    return await export_profile(session, user.id)


async def _export_blocks(session: AsyncSession, user: User) -> dict[str, Any]:
    return await export_blocks(session, user.id)


async def _export_whispers(session: AsyncSession, user: User) -> dict[str, Any]:
    return await export_whispers(session, user.id)


async def _export_swipes(session: AsyncSession, user: User) -> dict[str, Any]:
    return await export_swipes_and_matches(session, user.id)


async def _export_reports(session: AsyncSession, user: User) -> dict[str, Any]:
    return await export_reports(session, user.id)


async def _export_ai(session: AsyncSession, user: User) -> dict[str, Any]:
    return await export_ai(session, user.id)


EXPORTERS: list[Callable[[AsyncSession, User], Awaitable[dict[str, Any]]]] = [
    _export_account,
    _export_profile,
    _export_blocks,
    _export_whispers,
    _export_swipes,
    _export_reports,
    _export_ai,
]


async def export_my_data(session: AsyncSession, user: User, now: datetime) -> dict[str, Any]:
    """Everything stored about the user, as JSON-ready data (PIPL's right of access)."""
    data: dict[str, Any] = {"exportedAt": _iso(now)}
    for export in EXPORTERS:
        data.update(await export(session, user))
    return data


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
