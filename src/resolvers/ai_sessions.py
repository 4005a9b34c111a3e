"""AI interactions, recorded as metadata only: never the prompt, the reply or personal data."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from src.models import AIChatTranscript, AISession
from src.resolvers.pagination import Page, newest_first


async def record(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    kind: str,
    latency_ms: int,
    model: str | None = None,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
) -> AISession:
    row = AISession(
        user_id=user_id,
        kind=kind,
        latency_ms=max(0, latency_ms),
        model=model,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
    )
    session.add(row)
    await session.flush()
    return row


async def list_sessions(
    session: AsyncSession, user_id: uuid.UUID, *, first: int | None, after: str | None
) -> Page[AISession]:
    """The user's own AI sessions, newest first."""
    query = select(AISession).where(AISession.user_id == user_id)
    return await newest_first(session, query, AISession, first=first, after=after)


async def erase_ai(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Account deletion: chat transcripts and the metadata of every AI request go."""
    await session.exec(delete(AIChatTranscript).where(AIChatTranscript.user_id == user_id))  # type: ignore[call-overload]
    await session.exec(delete(AISession).where(AISession.user_id == user_id))  # type: ignore[call-overload]


async def export_ai(session: AsyncSession, user_id: uuid.UUID) -> dict[str, Any]:
    rows = await session.exec(
        select(AISession).where(AISession.user_id == user_id).order_by(AISession.created_at)  # type: ignore[arg-type]
    )
    transcripts = await session.exec(
        select(AIChatTranscript).where(AIChatTranscript.user_id == user_id)
    )
    return {
        "aiSessions": [
            {
                "id": str(r.id),
                "kind": r.kind,
                "createdAt": r.created_at.isoformat(),
                "latencyMs": r.latency_ms,
                "model": r.model,
                "promptTokens": r.prompt_tokens,
                "completionTokens": r.completion_tokens,
            }
            for r in rows
        ],
        "aiChatTranscripts": [
            {
                "sessionId": str(t.ai_session_id),
                "expiresAt": t.expires_at.isoformat(),
                "messages": t.messages,
            }
            for t in transcripts
        ],
    }
