"""Swipes: who swiped whom and how; one row per ordered pair."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Identity, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from src.models.base import created_at, one_of, timestamptz

SWIPE_ACTIONS = ("LIKE", "PASS", "SUPER_LIKE")


class UserSwipe(SQLModel, table=True):
    __tablename__ = "user_swipes"
    __table_args__ = (
        CheckConstraint(one_of("action", SWIPE_ACTIONS), name="action"),
        CheckConstraint("swiper_id <> target_id", name="not_self"),
        UniqueConstraint("swiper_id", "target_id"),
        # "Did they like me back?" looks up the reverse pair by target.
        Index("ix_user_swipes_target_id_action", "target_id", "action"),
    )

    id: int | None = Field(
        default=None,
        sa_type=BigInteger,
        primary_key=True,
        sa_column_kwargs={"server_default": Identity()},
    )
    swiper_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE")
    target_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE")
    action: str = Field(sa_type=Text)
    created_at: datetime = created_at()
    updated_at: datetime | None = timestamptz()
