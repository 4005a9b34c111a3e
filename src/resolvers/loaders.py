"""Per-request DataLoaders, named `<things>_by_<key>`. Built fresh for every operation."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

from aiodataloader import DataLoader
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from src.models import User

K = TypeVar("K")
V = TypeVar("V")


def _loader(fn: Callable[[Sequence[K]], Coroutine[Any, Any, list[V]]]) -> DataLoader[K, V]:
    return DataLoader(fn)


class Loaders:
    """Every loader of one request, sharing that request's session."""

    def __init__(self, session_factory: Callable[[], AsyncSession]):
        self._session = session_factory
        self.user_by_id: DataLoader[uuid.UUID, User | None] = _loader(self._users_by_id)

    async def _users_by_id(self, ids: Sequence[uuid.UUID]) -> list[User | None]:
        rows = await self._session().exec(select(User).where(User.id.in_(ids)))  # type: ignore[attr-defined]
        found = {u.id: u for u in rows}
        return [found.get(i) for i in ids]
