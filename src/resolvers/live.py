"""What a subscription delivers next: rows newer than the last one it delivered, without gaps
or repeats — also when transactions commit out of the order of their timestamps (a row may
appear up to WINDOW late; rows already delivered are remembered for that long)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Generic, Protocol, TypeVar

from sqlmodel.ext.asyncio.session import AsyncSession

WINDOW = timedelta(seconds=10)
NIL = uuid.UUID(int=0)


class Row(Protocol):
    id: uuid.UUID
    created_at: datetime


R = TypeVar("R", bound=Row)
Fetch = Callable[[AsyncSession, uuid.UUID, tuple[datetime, uuid.UUID]], Awaitable[list[R]]]


@dataclass
class LiveFeed(Generic[R]):
    """`fetch(session, viewer, key)` returns rows after `key`, oldest first, at most a batch."""

    fetch: Fetch[R]
    viewer_id: uuid.UUID
    floor: tuple[datetime, uuid.UUID]
    seen: dict[uuid.UUID, datetime] = field(default_factory=dict)

    @classmethod
    async def start(
        cls,
        session: AsyncSession,
        fetch: Fetch[R],
        viewer_id: uuid.UUID,
        *,
        after: tuple[datetime, uuid.UUID] | None,
        now: datetime,
    ) -> LiveFeed[R]:
        """From the client's last cursor (replaying what it missed), or from now."""
        if after is not None:
            return cls(fetch, viewer_id, after)
        feed = cls(fetch, viewer_id, (now - WINDOW, NIL))
        # Rows from just before subscribing are not new; remember them so they are skipped.
        for row in await fetch(session, viewer_id, feed.floor):
            feed.seen[row.id] = row.created_at
        return feed

    def accept(self, fetched: list[R]) -> list[R]:
        """The rows of a read after `self.floor` not delivered yet; moves the floor on."""
        rows = [r for r in fetched if r.id not in self.seen]
        for row in rows:
            self.seen[row.id] = row.created_at
        if self.seen:
            newest = max(self.seen.values())
            self.floor = max(self.floor, (newest - WINDOW, NIL))
            self.seen = {k: v for k, v in self.seen.items() if v >= newest - 2 * WINDOW}
        return rows
