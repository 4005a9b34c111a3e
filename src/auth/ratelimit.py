"""Fixed-window rate limits shared by every server process: in PostgreSQL by default (no extra
service), in Redis when REDIS_URL is set.

Each check is one upsert in its own short transaction (or one Redis round trip): a hit counts
even when the operation it guards fails and rolls back, and 100 aliased calls in one document
are 100 hits.
"""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from redis.asyncio import Redis
from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncEngine

from src.models.rules import rate_limit_hit

log = logging.getLogger(__name__)

# name -> (requests, window in seconds). Override any of them with RATE_LIMITS.
DEFAULT_LIMITS: dict[str, tuple[int, int]] = {
    "login:ip": (30, 60),
    "sms_send:ip": (5, 60),
    "sms_login:ip": (30, 600),
    "sms_login:phone": (10, 600),
    "refresh:ip": (60, 60),
    "bind_phone:user": (10, 3600),
    "whisper:user": (30, 60),
    "swipe:user": (120, 60),
    "discover:user": (60, 60),
    "feed:user": (30, 60),  # pages of the browse feed (`users`): slows scraping of profiles
    "institution:user": (5, 86_400),  # proposeInstitution
    "report:user": (20, 3600),
    "block:user": (30, 3600),  # blockUser, unblockUser and blockWhisperSender together
    "ai:user": (20, 60),  # chat, AI search, profile suggestions (on top of the daily quota)
    "mcp:user": (120, 60),  # every MCP tool call
}

_UPSERT = rate_limit_hit(bindparam("key"), bindparam("window_start"), bindparam("expires_at"))
_CLEANUP = text("DELETE FROM rate_limit_counters WHERE expires_at < now()")


class LimitExceeded(Exception):
    def __init__(self, retry_after: int):
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Window:
    """The current fixed window of one limit for one subject."""

    key: str
    allowed: int
    start: float
    length: int

    @property
    def starts_at(self) -> datetime:
        return datetime.fromtimestamp(self.start, UTC)

    @property
    def ends_at(self) -> datetime:
        return datetime.fromtimestamp(self.start + self.length, UTC)


class RateLimiter:
    def __init__(
        self,
        engine: AsyncEngine,
        overrides: dict[str, tuple[int, int]] | None = None,
        redis: Redis | None = None,
    ):
        self.engine = engine
        self.redis = redis
        self.limits = {**DEFAULT_LIMITS, **(overrides or {})}

    @property
    def in_postgres(self) -> bool:
        return self.redis is None

    def window(self, name: str, subject: str, now: float) -> Window:
        allowed, length = self.limits[name]
        start = math.floor(now / length) * length
        return Window(f"{name}:{subject}", allowed, start, length)

    async def hit(self, name: str, subject: str) -> None:
        """Count one request of `subject` (an IP, phone or user id) against limit `name`.

        Raises LimitExceeded with the seconds until the window ends.
        """
        now = time.time()
        window = self.window(name, subject, now)
        hits = await (self._redis_hit if self.redis else self._pg_hit)(window)
        if hits is not None and hits > window.allowed:
            raise LimitExceeded(max(1, math.ceil(window.start + window.length - now)))

    async def _redis_hit(self, window: Window) -> int:
        assert self.redis is not None
        redis_key = f"qq:rl:{window.key}:{int(window.start)}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(redis_key)
            pipe.expire(redis_key, window.length + 1)
            hits, _ = await pipe.execute()
        return int(hits)

    async def _pg_hit(self, window: Window) -> int | None:
        async with self.engine.begin() as conn:
            hits = await conn.scalar(
                _UPSERT,
                {"key": window.key, "window_start": window.starts_at, "expires_at": window.ends_at},
            )
            if random.random() < 0.01:  # noqa: S311 - sampling, not security
                await conn.execute(_CLEANUP)
        return hits
