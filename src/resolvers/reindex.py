"""`qiaoqiao reindex`: every user's point recomputed, whether or not a server is running.

- The embedded index, no server holding it: a full rebuild into a fresh collection (stale
  points gone), then optimized.
- The embedded index held by a running server (one process may open it): every user is queued
  through the outbox, which that server drains; the command waits and shows progress.
- A Qdrant server (`QDRANT_URL`): every user is queued, and the command drains the outbox
  itself beside any running servers (rows are claimed with SKIP LOCKED, so each is done once).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from sqlalchemy import func
from sqlmodel import col, select

from src.models import User, VectorOutbox
from src.resolvers import indexing
from src.resolvers.errors import UserFacingError
from src.resolvers.index_worker import HELD_ELSEWHERE, trouble
from src.services import Services

Progress = Callable[[int, int], None]
STALL_S = 120.0  # no progress for this long while a server should be draining: give up


class ReindexFailed(UserFacingError):
    code = "REINDEX_FAILED"


async def reindex(services: Services, progress: Progress) -> str:
    """Run it; returns a one-line summary. `progress(done, total)` is called as it goes."""
    try:
        await services.vectors.ensure_open()
    except Exception as exc:
        if trouble(exc) != HELD_ELSEWHERE:
            raise
        done = await _queue_and_wait(services, progress, drain=False)
        return f"reindexed {done} users through the running server's outbox"
    if services.settings.qdrant_url:
        done = await _queue_and_wait(services, progress, drain=True)
        return f"reindexed {done} users"
    count = await indexing.rebuild(services, progress)
    await services.vectors.optimize()
    return f"indexed users: {count}"


async def _queue_and_wait(services: Services, progress: Progress, *, drain: bool) -> int:
    async with services.sessionmaker() as session, session.begin():
        ids = list(await session.exec(select(col(User.id)).order_by(col(User.id))))
        mark = await indexing.enqueue(session, *ids)
    if mark is None:
        return 0
    total, last_left, last_change = len(ids), None, time.monotonic()
    while True:
        if drain:
            await indexing.process_outbox(services)
        async with services.sessionmaker() as session:
            left = int(
                await session.scalar(select(func.count()).where(col(VectorOutbox.id) <= mark)) or 0
            )
        progress(total - min(left, total), total)
        if left == 0:
            return total
        if left != last_left:
            last_left, last_change = left, time.monotonic()
        elif time.monotonic() - last_change > STALL_S:
            raise ReindexFailed(
                f"{left} of {total} users still queued and none done for {STALL_S:.0f} s: is "
                "the server's vector worker off (VECTOR_WORKER=false) or its index down?"
            )
        if not drain:
            await asyncio.sleep(1.0)
