"""AI interactions, as metadata only: never the prompt, the reply or personal data."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, DateTime, Index, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from src.models.base import created_at, one_of, uuid_pk

AI_SESSION_KINDS = ("chat", "search", "suggestions")


class AISession(SQLModel, table=True):
    __tablename__ = "ai_sessions"
    __table_args__ = (
        CheckConstraint(one_of("kind", AI_SESSION_KINDS), name="kind"),
        CheckConstraint("latency_ms >= 0", name="latency_non_negative"),
        Index("ix_ai_sessions_user_id_created_at", "user_id", "created_at", "id"),
    )

    id: uuid.UUID = uuid_pk()
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE")
    kind: str = Field(sa_type=Text)
    latency_ms: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = created_at()


class AIChatTranscript(SQLModel, table=True):
    """The turns of one chat (its `ai_sessions` row), kept only while the conversation can go
    on: `expires_at` moves with each turn, and expired transcripts are deleted."""

    __tablename__ = "ai_chat_transcripts"

    ai_session_id: uuid.UUID = Field(
        primary_key=True, foreign_key="ai_sessions.id", ondelete="CASCADE"
    )
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    # OpenAI-style messages (user, assistant, tool), the system prompt excluded.
    messages: list[dict[str, Any]] = Field(
        default_factory=list, sa_type=JSONB, sa_column_kwargs={"nullable": False}
    )
    expires_at: datetime = Field(sa_type=DateTime(timezone=True), index=True)
