"""Plans and daily quotas."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import CheckConstraint, Index, Text
from sqlmodel import Field, SQLModel

from src.models.base import created_at, one_of, timestamptz, uuid_pk

PLANS = ("BASIC", "PRO")
QUOTA_KINDS = ("WHISPER", "SWIPE", "AI_REQUEST", "DISCOVERY")


class Membership(SQLModel, table=True):
    """A period of a paid plan; BASIC is the absence of a current PRO period."""

    __tablename__ = "memberships"
    __table_args__ = (
        CheckConstraint(one_of("plan", PLANS), name="plan"),
        CheckConstraint("valid_until > valid_from", name="period"),
        Index("ix_memberships_user_id_valid_until", "user_id", "valid_until"),
    )

    id: uuid.UUID = uuid_pk()
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE")
    plan: str = Field(sa_type=Text)
    valid_from: datetime = timestamptz(nullable=False)
    valid_until: datetime = timestamptz(nullable=False)
    # The payment order that bought it (the orders table comes with WeChat Pay).
    source: str | None = Field(default=None, sa_type=Text, unique=True)
    created_at: datetime = created_at()


class UserQuota(SQLModel, table=True):
    """Use of one metered kind by one user on one Asia/Shanghai day."""

    __tablename__ = "user_quotas"
    __table_args__ = (
        CheckConstraint(one_of("kind", QUOTA_KINDS), name="kind"),
        CheckConstraint("used >= 0", name="used_non_negative"),
        CheckConstraint("daily_limit >= 0", name="limit_non_negative"),
    )

    # The composite primary key is the "one row per user, day and kind" guarantee.
    user_id: uuid.UUID = Field(primary_key=True, foreign_key="users.id", ondelete="CASCADE")
    day: date = Field(primary_key=True)
    kind: str = Field(primary_key=True, sa_type=Text)
    used: int = 0
    daily_limit: int
