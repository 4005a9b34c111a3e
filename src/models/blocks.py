"""Blocks between users, and profile text waiting for a human review."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, Index, Text
from sqlmodel import Field, SQLModel

from src.models.base import created_at, text_array, timestamptz, uuid_pk


class UserBlock(SQLModel, table=True):
    """`blocker` blocked `blocked`: each is hidden from the other, whispers and matches stop."""

    __tablename__ = "user_blocks"
    __table_args__ = (
        CheckConstraint("blocker_id <> blocked_id", name="not_self"),
        # "Who blocked me?" is the reverse lookup.
        Index("ix_user_blocks_blocked_id", "blocked_id"),
    )

    blocker_id: uuid.UUID = Field(primary_key=True, foreign_key="users.id", ondelete="CASCADE")
    blocked_id: uuid.UUID = Field(primary_key=True, foreign_key="users.id", ondelete="CASCADE")
    created_at: datetime = created_at()


class WhisperSenderBlock(SQLModel, table=True):
    """`blocker` blocked the sender of one whisper they received, without learning who it was.

    Kept apart from `user_blocks`, which feeds every visibility rule: this one only refuses the
    sender's whispers (and delivery of the blocker's replies' answers) to the blocker, so
    nothing the blocker sees changes. `sender_id` is copied from the whisper at block time and
    never shown to the blocker."""

    __tablename__ = "whisper_sender_blocks"
    __table_args__ = (
        # The send-time check: "did R block S through one of S's whispers?"
        Index("ix_whisper_sender_blocks_blocker_id_sender_id", "blocker_id", "sender_id"),
    )

    blocker_id: uuid.UUID = Field(primary_key=True, foreign_key="users.id", ondelete="CASCADE")
    whisper_id: uuid.UUID = Field(primary_key=True, foreign_key="whispers.id", ondelete="CASCADE")
    sender_id: uuid.UUID | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    created_at: datetime = created_at()


class ContentReview(SQLModel, table=True):
    """Text saved without a content-security verdict (WeChat unavailable, or 'review')."""

    __tablename__ = "content_reviews"

    id: uuid.UUID = uuid_pk()
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    fields: list[str] = text_array()
    reason: str = Field(sa_type=Text)
    resolved_at: datetime | None = timestamptz()
    created_at: datetime = created_at()
