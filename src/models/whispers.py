"""Whispers: short messages, anonymous until the sender reveals."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from src.models.base import created_at, timestamptz, uuid_pk


class Whisper(SQLModel, table=True):
    __tablename__ = "whispers"
    __table_args__ = (
        CheckConstraint("char_length(content) BETWEEN 1 AND 500", name="content_length"),
        CheckConstraint("sender_id IS NULL OR sender_id <> recipient_id", name="not_self"),
        UniqueConstraint("sender_id", "idempotency_key"),
        # Inbox and outbox, newest first, keyset-paginated.
        Index("ix_whispers_recipient_id_created_at", "recipient_id", "created_at", "id"),
        Index("ix_whispers_sender_id_created_at", "sender_id", "created_at", "id"),
        Index(
            "ix_whispers_recipient_id_unread",
            "recipient_id",
            "created_at",
            postgresql_where=text("read_at IS NULL"),
        ),
    )

    id: uuid.UUID = uuid_pk()
    # SET NULL: a deleted sender becomes "a deleted user"; the whisper stays with its recipient.
    sender_id: uuid.UUID | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    # Null once the recipient deleted their account (the sender keeps their copy), and for a
    # withheld reply to a deleted sender: either way nobody's inbox holds it.
    recipient_id: uuid.UUID | None = Field(
        default=None, foreign_key="users.id", ondelete="SET NULL"
    )
    content: str = Field(sa_type=Text)
    is_anonymous: bool = Field(default=True)
    revealed_at: datetime | None = timestamptz()
    read_at: datetime | None = timestamptz()
    reply_to_id: uuid.UUID | None = Field(
        default=None, foreign_key="whispers.id", ondelete="SET NULL", index=True
    )
    idempotency_key: str | None = Field(default=None, sa_type=Text)
    # A reply to an anonymous, unrevealed whisper whose hidden sender could not receive it
    # (blocks, whisperSender blocks, banned, deleted): stored like any sent whisper, so the
    # replier cannot tell, but never shown to its recipient, announced or pushed.
    withheld: bool = Field(default=False, sa_column_kwargs={"server_default": text("false")})
    created_at: datetime = created_at()
