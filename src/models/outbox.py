"""The vector-index outbox: one row per change that may move a user's point."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Identity, Index, Text
from sqlmodel import Field, SQLModel

from src.models.base import created_at


class VectorOutbox(SQLModel, table=True):
    """Written in the same transaction as the change, so no change is lost if the vector store
    is down; the worker deletes a row only once the index reflects it."""

    __tablename__ = "vector_outbox"
    __table_args__ = (Index("ix_vector_outbox_next_attempt_at", "next_attempt_at", "id"),)

    id: int | None = Field(
        default=None,
        sa_type=BigInteger,
        primary_key=True,
        sa_column_kwargs={"server_default": Identity()},
    )
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    attempts: int = 0
    next_attempt_at: datetime = created_at()
    last_error: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = created_at()
