"""Fixed-window rate limits kept in PostgreSQL, so every server process shares them.

Each check is one upsert in its own short transaction: a hit counts even when the operation it
guards fails and rolls back, and 100 aliased calls in one document are 100 hits.
"""

from __future__ import annotations

import logging
import math
import random
import time
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

# name -> (requests, window in seconds). Override any of them with RATE_LIMITS.
DEFAULT_LIMITS: dict[str, tuple[int, int]] = {
    "login:ip": (30, 60),
    "sms_send:ip": (5, 60),
    "sms_login:ip": (30, 600),
    "sms_login:phone": (10, 600),
    "refresh:ip": (60, 60),
    "bind_phone:user": (10, 3600),
}

_UPSERT = text(
    """
    INSERT INTO rate_limit_counters (key, window_start, hits, expires_at)
    VALUES (:key, :window_start, 1, :expires_at)
    ON CONFLICT (key, window_start) DO UPDATE SET hits = rate_limit_counters.hits + 1
    RETURNING hits
    """
)
_CLEANUP = text("DELETE FROM rate_limit_counters WHERE expires_at < now()")


class LimitExceeded(Exception):
    def __init__(self, retry_after: int):
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


class RateLimiter:
    def __init__(self, engine: AsyncEngine, overrides: dict[str, tuple[int, int]] | None = None):
        self.engine = engine
        self.limits = {**DEFAULT_LIMITS, **(overrides or {})}

    async def hit(self, name: str, subject: str) -> None:
        """Count one request of `subject` (an IP, phone or user id) against limit `name`.

        Raises LimitExceeded with the seconds until the window ends.
        """
        allowed, window = self.limits[name]
        now = time.time()
        start = math.floor(now / window) * window
        async with self.engine.begin() as conn:
            hits = await conn.scalar(
                _UPSERT,
                {
                    "key": f"{name}:{subject}",
                    "window_start": datetime.fromtimestamp(start, UTC),
                    "expires_at": datetime.fromtimestamp(start + window, UTC),
                },
            )
            if random.random() < 0.01:  # noqa: S311 - sampling, not security
                await conn.execute(_CLEANUP)
        if hits is not None and hits > allowed:
            raise LimitExceeded(max(1, math.ceil(start + window - now)))
