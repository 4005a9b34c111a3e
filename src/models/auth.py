"""Login state: sessions and refresh tokens, SMS codes, consents, rate-limit counters and the
shared WeChat access token."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, Index, Text
from sqlmodel import Field, SQLModel

from src.models.base import created_at, timestamptz, uuid_pk


class AuthSession(SQLModel, table=True):
    """One login on one device: the family of its rotating refresh tokens."""

    __tablename__ = "auth_sessions"

    id: uuid.UUID = uuid_pk()
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    # Revoking the session revokes every token of the family, access tokens included.
    revoked_at: datetime | None = timestamptz()
    created_at: datetime = created_at()


class RefreshToken(SQLModel, table=True):
    __tablename__ = "refresh_tokens"

    id: uuid.UUID = uuid_pk()
    session_id: uuid.UUID = Field(foreign_key="auth_sessions.id", ondelete="CASCADE", index=True)
    # SHA-256 of the opaque token: a database leak does not leak usable tokens.
    token_hash: str = Field(sa_type=Text, unique=True)
    expires_at: datetime = timestamptz(nullable=False)
    # Set when rotated: presenting it again is reuse, and revokes the whole session.
    used_at: datetime | None = timestamptz()
    created_at: datetime = created_at()


class SmsCode(SQLModel, table=True):
    __tablename__ = "sms_codes"
    __table_args__ = (
        CheckConstraint("attempts >= 0", name="attempts_non_negative"),
        Index("ix_sms_codes_phone_created_at", "phone", "created_at"),
        Index("ix_sms_codes_ip_created_at", "ip", "created_at"),
    )

    id: uuid.UUID = uuid_pk()
    phone: str = Field(sa_type=Text)
    # HMAC of the code keyed by the server secret; the code itself is never stored.
    code_hash: str = Field(sa_type=Text)
    ip: str | None = Field(default=None, sa_type=Text)
    attempts: int = 0
    expires_at: datetime = timestamptz(nullable=False)
    consumed_at: datetime | None = timestamptz()
    created_at: datetime = created_at()


class Consent(SQLModel, table=True):
    """Which version of the privacy guide a user accepted, and when (PIPL)."""

    __tablename__ = "consents"

    id: uuid.UUID = uuid_pk()
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    policy_version: str = Field(sa_type=Text)
    accepted_at: datetime = created_at()


class RateLimitCounter(SQLModel, table=True):
    """Hits of one rate-limit key in one fixed window."""

    __tablename__ = "rate_limit_counters"
    __table_args__ = (Index("ix_rate_limit_counters_expires_at", "expires_at"),)

    key: str = Field(primary_key=True, sa_type=Text)
    window_start: datetime = Field(primary_key=True, sa_type=DateTime(timezone=True))
    hits: int = 0
    expires_at: datetime = timestamptz(nullable=False)


class WechatAccessToken(SQLModel, table=True):
    """The app's WeChat access_token, shared by every server process."""

    __tablename__ = "wechat_access_tokens"

    app_id: str = Field(primary_key=True, sa_type=Text)
    access_token: str = Field(sa_type=Text)
    expires_at: datetime = timestamptz(nullable=False)
