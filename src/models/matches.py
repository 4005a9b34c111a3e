"""Matches (two likes), and the subscribe-message credits users grant for offline delivery."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, Index, Text, text
from sqlmodel import Field, SQLModel

from src.models.base import created_at, timestamptz, uuid_pk


class UserMatch(SQLModel, table=True):
    """Two users who liked each other; `user_a` < `user_b`, so a pair has one spelling."""

    __tablename__ = "user_matches"
    __table_args__ = (
        CheckConstraint("user_a_id < user_b_id", name="ordered_pair"),
        # One live match per pair, also when both like at the same moment.
        Index(
            "uq_user_matches_live_pair",
            "user_a_id",
            "user_b_id",
            unique=True,
            postgresql_where=text("ended_at IS NULL"),
        ),
        Index("ix_user_matches_user_b_id", "user_b_id"),
    )

    id: uuid.UUID = uuid_pk()
    user_a_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE")
    user_b_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE")
    ended_at: datetime | None = timestamptz()
    created_at: datetime = created_at()


class SubscribeCredit(SQLModel, table=True):
    """One-time consents (wx.requestSubscribeMessage) a user granted for a template: each
    buys exactly one subscribe message."""

    __tablename__ = "subscribe_credits"
    __table_args__ = (CheckConstraint("credits >= 0", name="credits_non_negative"),)

    user_id: uuid.UUID = Field(primary_key=True, foreign_key="users.id", ondelete="CASCADE")
    template_id: str = Field(primary_key=True, sa_type=Text)
    credits: int = 0


class SocketPresence(SQLModel, table=True):
    """Open subscription sockets, kept fresh by each server process: who is online anywhere."""

    __tablename__ = "socket_presence"
    __table_args__ = (Index("ix_socket_presence_user_id_seen_at", "user_id", "seen_at"),)

    id: uuid.UUID = uuid_pk()
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE")
    process: str = Field(sa_type=Text)
    seen_at: datetime = created_at()
