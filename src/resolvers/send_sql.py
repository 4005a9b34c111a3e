"""sendWhisper's common case as one SQL statement, for the compiled fast path.

A plain send — recipientId and content, no reply, no idempotency key — with rate limits kept in
PostgreSQL and no WeChat configured (so no content check and no offline notice) is, in
`whispers.send_whisper`, about a dozen round trips through the ORM and the interpreter. Here it
is one statement doing the same things in the same order: the rate-limit hit, the viewer and
recipient checks, the quota, the insert and the NOTIFY. Its transaction is kept only when the
whisper was sent; any refusal rolls all of it back (the rate-limit hit included) and returns
None, and the caller lets the interpreter answer, which gives the exact error and counts the
hit once. A differential test holds both paths to the same answers and rows.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime

import orjson

from src import events
from src.resolvers.quotas import daily_limit, quota_day
from src.resolvers.whispers import MAX_LENGTH
from src.services import Services

_SQL = """
WITH viewer AS (
    SELECT u.id FROM users u JOIN auth_sessions s ON s.user_id = u.id
    WHERE u.id = $1 AND s.id = $2 AND s.revoked_at IS NULL
      AND u.status = 'active' AND u.registered_at IS NOT NULL
), recipient AS (
    -- anonymity.may_whisper; `shown`: profiles.visible_to for the answer's recipient
    SELECT r.id, (p.visibility = 'discoverable' AND r.moderation_hold_at IS NULL) AS shown
    FROM users r LEFT JOIN user_profiles p ON p.user_id = r.id
    WHERE r.id = $3 AND r.id <> $1 AND r.status = 'active' AND r.registered_at IS NOT NULL
      AND NOT EXISTS (
          SELECT 1 FROM user_blocks b
          WHERE (b.blocker_id = $1 AND b.blocked_id = r.id)
             OR (b.blocker_id = r.id AND b.blocked_id = $1))
      AND NOT EXISTS (
          SELECT 1 FROM whisper_sender_blocks k WHERE k.blocker_id = r.id AND k.sender_id = $1)
), hit AS (
    INSERT INTO rate_limit_counters (key, window_start, hits, expires_at)
    SELECT $4, $5, 1, $6 FROM viewer, recipient
    ON CONFLICT (key, window_start) DO UPDATE SET hits = rate_limit_counters.hits + 1
    RETURNING hits
), plan AS (
    SELECT CASE WHEN EXISTS (
        SELECT 1 FROM memberships m
        WHERE m.user_id = $1 AND m.plan = 'PRO' AND m.valid_from <= $12 AND m.valid_until > $12
    ) THEN $10::int ELSE $9::int END AS daily_limit
), quota AS (
    INSERT INTO user_quotas (user_id, day, kind, used, daily_limit)
    SELECT $1, $8, 'WHISPER', 1, plan.daily_limit FROM hit, plan
    WHERE hit.hits <= $7 AND plan.daily_limit >= 1
    ON CONFLICT (user_id, day, kind) DO UPDATE
        SET used = user_quotas.used + 1, daily_limit = EXCLUDED.daily_limit
        WHERE user_quotas.used + 1 <= EXCLUDED.daily_limit
    RETURNING used
), sent AS (
    INSERT INTO whispers (id, sender_id, recipient_id, content, is_anonymous, created_at)
    SELECT $11, $1, $3, $13, $14, $12 FROM quota
    RETURNING id
)
SELECT EXISTS (SELECT 1 FROM sent) AS sent, (SELECT pg_notify($15, $16) FROM sent) AS notified,
       coalesce((SELECT shown FROM recipient), false) AS shown
"""


@dataclass(frozen=True)
class PlainSend:
    viewer_id: uuid.UUID
    session_id: uuid.UUID
    recipient_id: str
    content: str
    anonymous: bool


@dataclass(frozen=True)
class Sent:
    id: uuid.UUID
    recipient_id: uuid.UUID
    content: str
    anonymous: bool
    created_at: datetime
    recipient_shown: bool  # the sender may see the recipient (else the answer's recipient is null)


def applies(services: Services) -> bool:
    """Whether the fast path can stand in for the interpreter with these settings."""
    return not services.settings.wechat_configured and services.rate_limiter.in_postgres


async def send_plain(services: Services, send: PlainSend) -> Sent | None:
    """The sent whisper, or None (nothing written) when the interpreter must answer."""
    content = send.content.strip()
    if not 1 <= len(content) <= MAX_LENGTH or not applies(services):
        return None
    try:
        recipient_id = uuid.UUID(send.recipient_id)
    except ValueError:
        return None
    settings, now = services.settings, services.clock()
    window = services.rate_limiter.window("whisper:user", str(send.viewer_id), time.time())
    whisper_id = uuid.uuid4()
    event = orjson.dumps({"k": events.WHISPER, "u": [str(recipient_id)]}).decode()
    row = await services.read_pool.write(
        _SQL,
        send.viewer_id,
        send.session_id,
        recipient_id,
        window.key,
        window.starts_at,
        window.ends_at,
        window.allowed,
        quota_day(now),
        daily_limit(settings, "BASIC", "WHISPER"),
        daily_limit(settings, "PRO", "WHISPER"),
        whisper_id,
        now,
        content,
        send.anonymous,
        events.CHANNEL,
        event,
        keep=lambda r: bool(r["sent"]),
    )
    if row is None:
        return None
    return Sent(whisper_id, recipient_id, content, send.anonymous, now, bool(row["shown"]))
