"""Logging in and out: WeChat, SMS codes, development login, refresh-token rotation."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from src.auth.phone import InvalidPhone, mask_phone, normalize_phone
from src.auth.ratelimit import LimitExceeded
from src.auth.sms import SmsDeliveryError
from src.auth.tokens import derive_key, hash_refresh_token, new_refresh_token
from src.auth.wechat import WechatError
from src.models import AuthSession, RefreshToken, SmsCode, User
from src.models.rules import login_valid
from src.resolvers.errors import InvalidInput, RateLimited, UserFacingError
from src.services import Services

log = logging.getLogger(__name__)

_DEV_NAME = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_SMS_CODE = re.compile(r"^\d{6}$")


@dataclass(frozen=True)
class Login:
    access_token: str
    refresh_token: str
    expires_in: int
    is_new_user: bool
    user: User


async def rate_limit(services: Services, name: str, subject: str) -> None:
    """Count a hit; raises RateLimited (a payload error with a retry time) when over."""
    try:
        await services.rate_limiter.hit(name, subject)
    except LimitExceeded as exc:
        raise RateLimited(exc.retry_after) from None


async def start_session(
    session: AsyncSession, services: Services, user: User, *, is_new_user: bool
) -> Login:
    """A new login: a session (the refresh-token family), a refresh token and an access token."""
    auth_session = AuthSession(user_id=user.id)
    session.add(auth_session)
    refresh = await _add_refresh_token(session, services, auth_session.id, services.clock())
    access = services.tokens.issue_access(user.id, auth_session.id)
    await session.flush()
    return Login(access.token, refresh, access.expires_in, is_new_user, user)


async def _add_refresh_token(
    session: AsyncSession, services: Services, session_id: uuid.UUID, now: datetime
) -> str:
    token, token_hash = new_refresh_token()
    ttl = timedelta(days=services.settings.refresh_token_ttl_days)
    session.add(RefreshToken(session_id=session_id, token_hash=token_hash, expires_at=now + ttl))
    return token


def _check_can_log_in(user: User) -> None:
    if user.status == "banned":
        raise UserFacingError("This account is suspended.", code="ACCOUNT_SUSPENDED")


async def _user_by(
    session: AsyncSession, column: str, value: str, extra: dict[str, object] | None = None
) -> tuple[User, bool]:
    """Find the account with `column = value`, creating it on first login (race-safe)."""
    values = {"id": uuid.uuid4(), column: value, **(extra or {})}
    created = await session.scalar(
        insert(User)
        .values(**values)
        .on_conflict_do_nothing(index_elements=[column])
        .returning(col(User.id))
    )
    user = await session.scalar(select(User).where(getattr(User, column) == value))
    assert user is not None
    return user, created is not None


async def wechat_login(session: AsyncSession, services: Services, *, code: str, ip: str) -> Login:
    """Log in with a `wx.login` code (or `dev:<name>` in development), creating the account."""
    await rate_limit(services, "login:ip", ip)
    code = code.strip()
    if not 1 <= len(code) <= 128:
        raise InvalidInput("The login code is empty or too long.", field="code")
    settings = services.settings
    if code.startswith("dev:") and settings.dev_login_enabled:
        name = code[4:]
        if not _DEV_NAME.match(name):
            raise InvalidInput("Development names are 1-32 letters, digits, - or _.", field="code")
        openid, unionid = f"dev:{name}", None
    elif not settings.wechat_configured:
        raise UserFacingError(
            "WeChat login is not configured; in development use code 'dev:<name>'.",
            code="INVALID_CODE",
            field="code",
        )
    else:
        try:
            wx = await services.wechat.code_to_session(code)
        except WechatError as exc:
            raise _wechat_failure(exc) from None
        openid, unionid = wx.openid, wx.unionid
    user, is_new = await _user_by(session, "wechat_openid", openid, {"wechat_unionid": unionid})
    _check_can_log_in(user)
    return await start_session(session, services, user, is_new_user=is_new)


def _wechat_failure(exc: WechatError) -> UserFacingError:
    if exc.kind == "invalid_code":
        return UserFacingError(
            "The WeChat code is invalid or already used.", code="INVALID_CODE", field="code"
        )
    if exc.kind == "rejected":
        return UserFacingError("WeChat refused this login.", code="WECHAT_REJECTED")
    return UserFacingError("WeChat is not answering; please try again.", code="WECHAT_UNAVAILABLE")


def parse_phone(services: Services, raw: str) -> str:
    try:
        return normalize_phone(raw, services.settings.default_phone_region)
    except InvalidPhone:
        raise InvalidInput("Not a valid mobile phone number.", field="phone") from None


def _code_hash(services: Services, phone: str, code: str) -> str:
    key = derive_key(services.settings.secret_key.get_secret_value(), "sms")
    return hmac.new(key, f"{phone}:{code}".encode(), hashlib.sha256).hexdigest()


async def send_sms_code(session: AsyncSession, services: Services, *, phone: str, ip: str) -> int:
    """Text a fresh login code; returns the seconds before another may be requested."""
    settings = services.settings
    phone = parse_phone(services, phone)
    await rate_limit(services, "sms_send:ip", ip)
    # One sender per phone at a time, so the resend interval and the caps hold under races.
    await session.scalar(text("SELECT pg_advisory_xact_lock(hashtext(:p))"), {"p": phone})
    now = services.clock()
    day_ago = now - timedelta(days=1)
    last = await session.scalar(
        select(func.max(col(SmsCode.created_at))).where(col(SmsCode.phone) == phone)
    )
    if last is not None:
        wait = settings.sms_resend_after_s - int((now - last).total_seconds())
        if wait > 0:
            raise RateLimited(wait)
    for column, value, cap in (
        (col(SmsCode.phone), phone, settings.sms_daily_per_phone),
        (col(SmsCode.ip), ip, settings.sms_daily_per_ip),
    ):
        sent = await session.scalar(
            select(func.count()).where(column == value, col(SmsCode.created_at) > day_ago)
        )
        if (sent or 0) >= cap:
            raise RateLimited(24 * 3600)
    # Only the newest code works: older unused ones die now.
    await session.exec(
        update(SmsCode)
        .where(col(SmsCode.phone) == phone, col(SmsCode.consumed_at).is_(None))
        .values(consumed_at=now)
    )
    code = f"{secrets.randbelow(1_000_000):06d}"
    session.add(
        SmsCode(
            phone=phone,
            code_hash=_code_hash(services, phone, code),
            ip=ip,
            created_at=now,  # the resend wait and the daily caps count from it
            expires_at=now + timedelta(seconds=settings.sms_code_ttl_s),
        )
    )
    await session.flush()
    try:
        await services.sms.send_code(phone, code, settings.sms_code_ttl_s // 60)
    except SmsDeliveryError as exc:
        log.warning("SMS to %s failed: %s", mask_phone(phone), exc)
        raise UserFacingError(
            "The text message could not be sent; please try again.", code="SMS_UNAVAILABLE"
        ) from None
    return settings.sms_resend_after_s


async def _check_sms_code(services: Services, phone: str, code: str) -> None:
    """Verify and spend the phone's current code in a transaction of its own, so a wrong try
    is counted even though the login itself then fails and rolls back."""
    settings = services.settings
    failure: UserFacingError | None = None
    async with services.side_engine.begin() as conn:
        row = (
            await conn.execute(
                select(
                    col(SmsCode.id),
                    col(SmsCode.code_hash),
                    col(SmsCode.attempts),
                    col(SmsCode.expires_at),
                )
                .where(col(SmsCode.phone) == phone, col(SmsCode.consumed_at).is_(None))
                .order_by(col(SmsCode.created_at).desc())
                .limit(1)
                .with_for_update()
            )
        ).first()
        now = services.clock()
        if row is None:
            failure = UserFacingError(
                "No valid code for this number; request a new one.", code="INVALID_CODE"
            )
        elif row.expires_at <= now:
            failure = UserFacingError("The code has expired.", code="CODE_EXPIRED")
        elif hmac.compare_digest(row.code_hash, _code_hash(services, phone, code)):
            await conn.execute(
                update(SmsCode).where(col(SmsCode.id) == row.id).values(consumed_at=now)
            )
        else:
            attempts = row.attempts + 1
            burned = attempts >= settings.sms_max_attempts
            await conn.execute(
                update(SmsCode)
                .where(col(SmsCode.id) == row.id)
                .values(attempts=attempts, consumed_at=now if burned else None)
            )
            failure = (
                UserFacingError(
                    "Too many wrong codes; request a new one.", code="TOO_MANY_ATTEMPTS"
                )
                if burned
                else UserFacingError("The code is wrong.", code="INVALID_CODE", field="code")
            )
    if failure is not None:
        raise failure


async def sms_login(
    session: AsyncSession, services: Services, *, phone: str, code: str, ip: str
) -> Login:
    """Log in with a texted code, creating the account for a new phone number."""
    phone = parse_phone(services, phone)
    await rate_limit(services, "sms_login:ip", ip)
    await rate_limit(services, "sms_login:phone", phone)
    code = code.strip()
    if not _SMS_CODE.match(code):
        raise InvalidInput("The code is 6 digits.", field="code")
    await _check_sms_code(services, phone, code)
    user, is_new = await _user_by(session, "phone", phone)
    _check_can_log_in(user)
    return await start_session(session, services, user, is_new_user=is_new)


def _invalid_refresh() -> UserFacingError:
    return UserFacingError(
        "The refresh token is invalid, expired or revoked; log in again.",
        code="INVALID_TOKEN",
        field="refreshToken",
    )


async def refresh(session: AsyncSession, services: Services, *, token: str, ip: str) -> Login:
    """Rotate a refresh token. Presenting an already-rotated one revokes its whole family."""
    await rate_limit(services, "refresh:ip", ip)
    token_hash = hash_refresh_token(token.strip())
    now = services.clock()
    session_id = await session.scalar(
        update(RefreshToken)
        .where(
            col(RefreshToken.token_hash) == token_hash,
            col(RefreshToken.used_at).is_(None),
            col(RefreshToken.expires_at) > now,
        )
        .values(used_at=now)
        .returning(col(RefreshToken.session_id))
    )
    if session_id is None:
        await _revoke_if_reused(services, token_hash)
        raise _invalid_refresh()
    # Whoever the login belongs to: the row is its own viewer.
    user = await session.scalar(select(User).where(login_valid(col(User.id), session_id)))
    if user is None:
        raise _invalid_refresh()
    new_token = await _add_refresh_token(session, services, session_id, now)
    access = services.tokens.issue_access(user.id, session_id)
    await session.flush()
    return Login(access.token, new_token, access.expires_in, False, user)


async def _revoke_if_reused(services: Services, token_hash: str) -> None:
    # Its own transaction: the revocation must stick although the refresh fails.
    async with services.side_engine.begin() as conn:
        revoked = await conn.scalar(
            update(AuthSession)
            .where(
                col(AuthSession.id)
                == select(col(RefreshToken.session_id))
                .where(
                    col(RefreshToken.token_hash) == token_hash,
                    col(RefreshToken.used_at).is_not(None),
                )
                .scalar_subquery(),
                col(AuthSession.revoked_at).is_(None),
            )
            .values(revoked_at=services.clock())
            .returning(col(AuthSession.id))
        )
    if revoked is not None:
        log.warning("refresh token reused: session %s revoked", revoked)


async def logout(session: AsyncSession, *, token: str, now: datetime) -> None:
    """Revoke the session the refresh token belongs to (its access tokens die with it)."""
    revoked = await session.scalar(
        update(AuthSession)
        .where(
            col(AuthSession.id)
            == select(col(RefreshToken.session_id))
            .where(col(RefreshToken.token_hash) == hash_refresh_token(token.strip()))
            .scalar_subquery(),
            col(AuthSession.revoked_at).is_(None),
        )
        .values(revoked_at=now)
        .returning(col(AuthSession.id))
    )
    if revoked is None:
        raise _invalid_refresh()


async def revoke_all_sessions(session: AsyncSession, user_id: uuid.UUID, now: datetime) -> None:
    """End every login of the user at once (ban, account deletion)."""
    await session.exec(
        update(AuthSession)
        .where(col(AuthSession.user_id) == user_id, col(AuthSession.revoked_at).is_(None))
        .values(revoked_at=now)
    )


async def dev_login(session: AsyncSession, services: Services, name: str) -> Login:
    """The development user `name` (created on first use), for `qiaoqiao token`."""
    if not services.settings.dev_login_enabled:
        raise UserFacingError("Development login is off.", code="FORBIDDEN")
    if not _DEV_NAME.match(name):
        raise InvalidInput("Development names are 1-32 letters, digits, - or _.", field="name")
    user, is_new = await _user_by(session, "wechat_openid", f"dev:{name}")
    _check_can_log_in(user)
    return await start_session(session, services, user, is_new_user=is_new)
