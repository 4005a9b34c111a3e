"""Accounts: who someone is to WeChat, their phone, and their standing."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, Index, Text, text
from sqlmodel import Field, SQLModel

from src.models.base import created_at, one_of, timestamptz, uuid_pk

USER_STATUSES = ("active", "banned", "deleted")
USER_ROLES = ("user", "moderator", "admin")


class User(SQLModel, table=True):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(one_of("status", USER_STATUSES), name="status"),
        CheckConstraint(one_of("role", USER_ROLES), name="role"),
        CheckConstraint(r"phone ~ '^\+[1-9][0-9]{6,14}$'", name="phone_e164"),
        # Browsing walks registered, active users newest first and stops after one page.
        Index(
            "ix_users_registered_at_id",
            text("registered_at DESC"),
            text("id DESC"),
            postgresql_where=text("status = 'active' AND registered_at IS NOT NULL"),
        ),
    )

    id: uuid.UUID = uuid_pk()
    wechat_openid: str | None = Field(default=None, sa_type=Text, unique=True)
    wechat_unionid: str | None = Field(default=None, sa_type=Text, unique=True)
    phone: str | None = Field(default=None, sa_type=Text, unique=True)
    status: str = Field(default="active", sa_type=Text)
    role: str = Field(default="user", sa_type=Text)
    # Null until `register` records consent and the basic profile.
    registered_at: datetime | None = timestamptz()
    # Set when enough distinct people reported the user: hidden from discovery until a
    # moderator decides. Separate from the user's own `discoverable` choice.
    moderation_hold_at: datetime | None = timestamptz()
    created_at: datetime = created_at()
