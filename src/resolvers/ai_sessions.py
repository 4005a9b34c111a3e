"""AI interactions, recorded as metadata only: never the prompt, the reply or personal data."""

from __future__ import annotations

import uuid

from sqlmodel.ext.asyncio.session import AsyncSession

from src.models import AISession


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
