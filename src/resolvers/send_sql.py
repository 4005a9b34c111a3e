# ruff: noqa: S608 - SQL assembled from fixed fragments; every value is a bound parameter.
"""sendWhisper's common case as one SQL statement, for the compiled fast path.

A plain send — recipientId and content, no reply, no idempotency key — with rate limits kept in
PostgreSQL is, in `whispers.send_whisper`, about a dozen round trips through the ORM and the
interpreter, with WeChat's content check (tens of milliseconds) made while the transaction is
open. Here the check comes first, outside any transaction, and the send is then one statement
doing the same things in the same order: the rate-limit hit, the viewer and recipient checks,
the quota, the insert and the NOTIFY. Its transaction is kept only when the whisper was sent;
any refusal rolls all of it back (the rate-limit hit included) and returns None, and the caller
lets the interpreter answer, which gives the exact error and counts the hit once. A
differential test holds both paths to the same answers and rows.

With WeChat configured a read-only statement first asks whether the send would go through (the
same viewer, recipient, rate-limit and quota conditions, from the same SQL text): a send the
interpreter would refuse before its content check never reaches WeChat from here either (a
rate-limited sender cannot spend WeChat calls). Only a `pass` verdict goes on; `risky`,
`review` and an unavailable checker go to the interpreter, which asks again and answers (the
error, or the review queue) exactly as it always did.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime

import orjson

from src import events
from src.db import numbered_params
from src.resolvers.content import SCENE_SOCIAL, text_passes
from src.resolvers.quotas import daily_limit, quota_day
from src.resolvers.whispers import MAX_LENGTH
from src.services import Services

# Who may send and to whom, and what the plan allows today: shared by the pre-check and the
# send so the two cannot disagree.
_CHECKS = """
viewer AS (
    SELECT u.id, u.wechat_openid FROM users u JOIN auth_sessions s ON s.user_id = u.id
    WHERE u.id = :viewer AND s.id = :session AND s.revoked_at IS NULL
      AND u.status = 'active' AND u.registered_at IS NOT NULL
), recipient AS (
    -- anonymity.may_whisper; `shown`: profiles.visible_to for the answer's recipient
    SELECT r.id, (p.visibility = 'discoverable' AND r.moderation_hold_at IS NULL) AS shown
    FROM users r LEFT JOIN user_profiles p ON p.user_id = r.id
    WHERE r.id = :recipient AND r.id <> :viewer AND r.status = 'active'
      AND r.registered_at IS NOT NULL
      AND NOT EXISTS (
          SELECT 1 FROM user_blocks b
          WHERE (b.blocker_id = :viewer AND b.blocked_id = r.id)
             OR (b.blocker_id = r.id AND b.blocked_id = :viewer))
      AND NOT EXISTS (
          SELECT 1 FROM whisper_sender_blocks k
          WHERE k.blocker_id = r.id AND k.sender_id = :viewer)
), plan AS (
    SELECT CASE WHEN EXISTS (
        SELECT 1 FROM memberships m
        WHERE m.user_id = :viewer AND m.plan = 'PRO' AND m.valid_from <= :now
          AND m.valid_until > :now
    ) THEN :pro_limit::int ELSE :basic_limit::int END AS daily_limit
)"""

_SEND = f"""
WITH {_CHECKS}, hit AS (
    INSERT INTO rate_limit_counters (key, window_start, hits, expires_at)
    SELECT :hit_key, :hit_start, 1, :hit_expires FROM viewer, recipient
    ON CONFLICT (key, window_start) DO UPDATE SET hits = rate_limit_counters.hits + 1
    RETURNING hits
), quota AS (
    INSERT INTO user_quotas (user_id, day, kind, used, daily_limit)
    SELECT :viewer, :day, 'WHISPER', 1, plan.daily_limit FROM hit, plan
    WHERE hit.hits <= :allowed AND plan.daily_limit >= 1
    ON CONFLICT (user_id, day, kind) DO UPDATE
        SET used = user_quotas.used + 1, daily_limit = EXCLUDED.daily_limit
        WHERE user_quotas.used + 1 <= EXCLUDED.daily_limit
    RETURNING used
), sent AS (
    INSERT INTO whispers (id, sender_id, recipient_id, content, is_anonymous, created_at)
    SELECT :whisper, :viewer, :recipient, :content, :anonymous, :now FROM quota
    RETURNING id
)
SELECT EXISTS (SELECT 1 FROM sent) AS sent, (SELECT pg_notify(:channel, :event) FROM sent)
       AS notified, coalesce((SELECT shown FROM recipient), false) AS shown
"""

# The send's conditions without writing anything: whether it would go through now, and the
# sender's openid for the content check.
_READY = f"""
WITH {_CHECKS}
SELECT (SELECT wechat_openid FROM viewer) AS openid,
       EXISTS (SELECT 1 FROM viewer, recipient)
       AND coalesce((SELECT hits FROM rate_limit_counters
                     WHERE key = :hit_key AND window_start = :hit_start), 0) < :allowed
       AND coalesce((SELECT used FROM user_quotas
                     WHERE user_id = :viewer AND day = :day AND kind = 'WHISPER'), 0)
           < (SELECT daily_limit FROM plan) AS ready
"""


_SEND_SQL, _SEND_ORDER = numbered_params(_SEND)
_READY_SQL, _READY_ORDER = numbered_params(_READY)


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
    return services.rate_limiter.in_postgres


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
    params = {
        "viewer": send.viewer_id,
        "session": send.session_id,
        "recipient": recipient_id,
        "hit_key": window.key,
        "hit_start": window.starts_at,
        "hit_expires": window.ends_at,
        "allowed": window.allowed,
        "day": quota_day(now),
        "basic_limit": daily_limit(settings, "BASIC", "WHISPER"),
        "pro_limit": daily_limit(settings, "PRO", "WHISPER"),
        "whisper": whisper_id,
        "now": now,
        "content": content,
        "anonymous": send.anonymous,
        "channel": events.CHANNEL,
        "event": orjson.dumps({"k": events.WHISPER, "u": [str(recipient_id)]}).decode(),
    }
    if settings.wechat_configured:
        # Checked before the send's transaction opens: no connection waits on WeChat.
        ready = await services.read_pool.fetchrow(
            _READY_SQL, *(params[name] for name in _READY_ORDER)
        )
        if ready is None or not ready["ready"]:
            return None
        if not await text_passes(services, ready["openid"], content, scene=SCENE_SOCIAL):
            return None
    row = await services.read_pool.write(
        _SEND_SQL, *(params[name] for name in _SEND_ORDER), keep=lambda r: bool(r["sent"])
    )
    if row is None:
        return None
    return Sent(whisper_id, recipient_id, content, send.anonymous, now, bool(row["shown"]))
