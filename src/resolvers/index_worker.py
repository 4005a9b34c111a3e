"""The index worker each server process runs (VECTOR_WORKER): opens the versioned index,
starts its maintenance (`indexing.maintain`: a background build, or a catch-up with
PostgreSQL), applies the outbox, and optimizes the index now and then.

While the index cannot be opened (the store is down, or another process holds the embedded
index) discovery answers from PostgreSQL and says it is degraded; the worker logs the reason
once, not every round, and retries with backoff.
"""

from __future__ import annotations

import asyncio
import logging

from src.config import Settings
from src.resolvers import indexing
from src.services import Services

log = logging.getLogger(__name__)

IDLE_PAUSE_S = 0.3
MAX_PAUSE_S = 10.0
HELD_ELSEWHERE = (
    "the vector index is open in another process (the embedded index serves one process per "
    "DATA_DIR; set QDRANT_URL to share one): discovery here answers from PostgreSQL, degraded"
)


def workers_refusal(settings: Settings, workers: int) -> str | None:
    """Why `serve --workers N` must not start (None: it may). The embedded index is one
    process's: others would answer every discovery from PostgreSQL, degraded."""
    if workers > 1 and not settings.qdrant_url:
        return (
            f"qiaoqiao serve: --workers {workers} needs QDRANT_URL (a Qdrant server all workers "
            "share); the embedded vector index serves one process"
        )
    return None


def trouble(exc: BaseException) -> str:
    """A one-line reason, the same for the same lasting problem."""
    if "already open in another vector store" in str(exc):
        return HELD_ELSEWHERE
    return type(exc).__name__


async def open_index(services: Services) -> None:
    """Without the worker: open the index to serve what is there."""
    try:
        await services.vectors.ensure_open()
    except Exception as exc:
        log.warning("vector index unavailable: %s", trouble(exc))


async def warm_up(services: Services) -> None:
    """Before serving a process without the worker (MCP over stdio): open the index and load
    the model, so that the first search does not spend its time budget on them."""
    await open_index(services)
    try:
        await services.embedder.load()
    except Exception as exc:
        log.warning("embedding model unavailable: %s", type(exc).__name__)


class IndexWorker:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.maintenance: asyncio.Task[None] | None = None
        self.optimizing: asyncio.Task[None] | None = None
        self.since_optimize = 0
        self.trouble: str | None = None  # what was last logged
        self.pause = IDLE_PAUSE_S

    async def run(self) -> None:
        try:
            while True:
                if not await self.round():
                    await asyncio.sleep(self.pause)
        finally:
            for task in (self.maintenance, self.optimizing):
                if task is not None:
                    task.cancel()

    async def round(self) -> int:
        """Open, maintain, apply one outbox batch; returns the rows done (0: none were due)."""
        done = 0
        try:
            await self.services.vectors.ensure_open()
            self._maintain()
            if self.services.vectors.writable:
                done = await indexing.process_outbox(self.services)
            await indexing.check_backfill(self.services)
            if self.trouble is not None:
                log.info("indexing resumed")
            self.trouble, self.pause = None, IDLE_PAUSE_S
        except Exception as exc:  # rows stay queued; try again later
            reason = trouble(exc)
            if reason != self.trouble:
                log.warning("indexing paused: %s", reason)
                self.trouble = reason
            self.pause = min(self.pause * 2, MAX_PAUSE_S)
        self._optimize(done)
        return done

    def _maintain(self) -> None:
        task = self.maintenance
        if task is not None and not task.done():
            return
        if task is not None:
            if task.cancelled() or (failure := task.exception()) is None:
                return  # done for this process's life
            log.warning("index maintenance failed, retrying: %s", trouble(failure))
        self.maintenance = asyncio.create_task(indexing.maintain(self.services))

    def _optimize(self, done: int) -> None:
        self.since_optimize += done
        if self.since_optimize >= self.services.settings.vector_optimize_every and (
            self.optimizing is None or self.optimizing.done()
        ):
            self.since_optimize = 0
            self.optimizing = asyncio.create_task(self.services.vectors.optimize())
