"""AI interactions, recorded as metadata only: never the prompt, the reply or personal data."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, insert, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from src.models import AIChatTranscript, AISession
from src.resolvers.pagination import Page, newest_first
from src.services import Services


async def record(
    services: Services,
    user_id: uuid.UUID,
    *,
    kind: str,
    latency_ms: int,
    model: str | None = None,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
) -> uuid.UUID:
    """Record one AI request, committed at once whatever the operation does next (like its
    quota, SECURITY.md 33); returns its id."""
    async with services.side_engine.begin() as conn:
        result = await conn.execute(
            insert(AISession)
            .values(
                id=uuid.uuid4(),
                user_id=user_id,
                kind=kind,
                latency_ms=max(0, latency_ms),
                model=model,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
            )
            .returning(col(AISession.id))
        )
        return result.scalar_one()


async def add_usage(
    services: Services,
    row_id: uuid.UUID,
    *,
    latency_ms: int,
    model: str | None,
    prompt_tokens: int,
    completion_tokens: int,
) -> None:
    """Another turn of a recorded chat, committed at once like `record`."""
    values: dict[str, Any] = {
        "latency_ms": col(AISession.latency_ms) + max(0, latency_ms),
        "prompt_tokens": col(AISession.prompt_tokens) + prompt_tokens,
        "completion_tokens": col(AISession.completion_tokens) + completion_tokens,
    }
    if model:
        values["model"] = model
    async with services.side_engine.begin() as conn:
        await conn.execute(update(AISession).where(col(AISession.id) == row_id).values(**values))


async def list_sessions(
    session: AsyncSession, user_id: uuid.UUID, *, first: int | None, after: str | None
) -> Page[AISession]:
    """The user's own AI sessions, newest first."""
    query = select(AISession).where(col(AISession.user_id) == user_id)
    return await newest_first(session, query, AISession, first=first, after=after)


async def erase_ai(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Account deletion: chat transcripts and the metadata of every AI request go."""
    await session.exec(delete(AIChatTranscript).where(col(AIChatTranscript.user_id) == user_id))
    await session.exec(delete(AISession).where(col(AISession.user_id) == user_id))


async def export_ai(session: AsyncSession, user_id: uuid.UUID) -> dict[str, Any]:
    rows = await session.exec(
        select(AISession)
        .where(col(AISession.user_id) == user_id)
        .order_by(col(AISession.created_at))
    )
    transcripts = await session.exec(
        select(AIChatTranscript).where(col(AIChatTranscript.user_id) == user_id)
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
