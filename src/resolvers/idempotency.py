"""Idempotency keys: the same key from the same user for the same operation returns the first
result, never a second effect — also when the retries arrive at the same moment."""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from src.models import IdempotencyKey
from src.resolvers.errors import InvalidInput

_KEY = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def check_key(key: str) -> str:
    if not _KEY.match(key):
        raise InvalidInput(
            "idempotencyKey is 1-64 letters, digits or _ . : -", field="idempotencyKey"
        )
    return key


async def claim(
    session: AsyncSession, user_id: uuid.UUID, operation: str, key: str
) -> dict[str, Any] | None:
    """Claim `key`, or return the result stored by whoever claimed it first.

    A concurrent claimer waits on PostgreSQL's unique index until the first transaction ends:
    then it sees the stored result (first committed) or claims the key itself (first failed).
    The claim lives in the caller's transaction, so a failed operation frees its key.
    """
    claimed = await session.scalar(
        insert(IdempotencyKey)
        .values(user_id=user_id, operation=operation, key=check_key(key))
        .on_conflict_do_nothing()
        .returning(col(IdempotencyKey.key))
    )
    if claimed is not None:
        return None
    stored = await session.scalar(
        select(col(IdempotencyKey.result)).where(
            col(IdempotencyKey.user_id) == user_id,
            col(IdempotencyKey.operation) == operation,
            col(IdempotencyKey.key) == key,
        )
    )
    return dict(stored or {})


async def remember(
    session: AsyncSession, user_id: uuid.UUID, operation: str, key: str, result: dict[str, Any]
) -> None:
    await session.exec(
        update(IdempotencyKey)
        .where(
            col(IdempotencyKey.user_id) == user_id,
            col(IdempotencyKey.operation) == operation,
            col(IdempotencyKey.key) == key,
        )
        .values(result=result)
    )
