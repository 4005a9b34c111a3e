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
same viewer, recipient, rate-limit and quota conditions, built by the same function from the
rule book, `src/models/rules.py`): a send the
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
from typing import Any

from sqlalchemy import (
    CTE,
    Boolean,
    Date,
    DateTime,
    Integer,
    Select,
    Text,
    Uuid,
    and_,
    bindparam,
    case,
    exists,
    false,
    func,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import insert

from src import events
from src.db import prepare
from src.models import rules
from src.resolvers.calendar import local_day
from src.resolvers.content import SCENE_SOCIAL, text_passes
from src.resolvers.quotas import daily_limit
from src.resolvers.whispers import MAX_LENGTH
from src.services import Services

# Every value the statements take, by name (Uuid/DateTime/... so asyncpg is told each type).
_VIEWER = bindparam("viewer", type_=Uuid)
_SESSION = bindparam("session", type_=Uuid)
_RECIPIENT = bindparam("recipient", type_=Uuid)
_NOW = bindparam("now", type_=DateTime(timezone=True))
_HIT_KEY = bindparam("hit_key", type_=Text)
_HIT_START = bindparam("hit_start", type_=DateTime(timezone=True))
_HIT_EXPIRES = bindparam("hit_expires", type_=DateTime(timezone=True))
_ALLOWED = bindparam("allowed", type_=Integer)
_DAY = bindparam("day", type_=Date)

_COUNTERS, _QUOTAS = rules.RATE_LIMIT_COUNTERS, rules.USER_QUOTAS


def _checks() -> tuple[CTE, CTE, CTE]:
    """Who may send and to whom, and what the plan allows today — all from the rule book, and
    shared by the pre-check and the send so the two cannot disagree."""
    u, r, p = rules.USERS.alias("u"), rules.USERS.alias("r"), rules.PROFILES.alias("p")
    viewer = (
        select(u.c.id, u.c.wechat_openid)
        .where(rules.login_valid(_VIEWER, _SESSION, user=u), rules.registered(user=u))
        .cte("viewer")
    )
    recipient = (
        # `shown`: whether the answer may name its recipient to the sender.
        select(r.c.id, rules.visible_to(_VIEWER, user=r, profile=p).label("shown"))
        .select_from(r.outerjoin(p, p.c.user_id == r.c.id))
        .where(r.c.id == _RECIPIENT, rules.may_whisper(_VIEWER, user=r))
        .cte("recipient")
    )
    plan = select(
        case(
            (rules.is_pro(_VIEWER, _NOW), bindparam("pro_limit", type_=Integer)),
            else_=bindparam("basic_limit", type_=Integer),
        ).label("daily_limit")
    ).cte("plan")
    return viewer, recipient, plan


def _send() -> Select[Any]:
    viewer, recipient, plan = _checks()
    # The hit counts only when the viewer and the recipient pass; the quota is used only
    # within the rate limit.
    hit = rules.rate_limit_hit(
        _HIT_KEY, _HIT_START, _HIT_EXPIRES, when=viewer.join(recipient, true())
    ).cte("hit")
    quota = rules.quota_use(
        _VIEWER,
        _DAY,
        "WHISPER",
        1,
        plan.c.daily_limit,
        when=hit.join(plan, true()),
        only_if=hit.c.hits <= _ALLOWED,
    ).cte("quota")
    whispers = rules.WHISPERS
    sent = (
        insert(whispers)
        .from_select(
            ["id", "sender_id", "recipient_id", "content", "is_anonymous", "created_at"],
            select(
                bindparam("whisper", type_=Uuid),
                _VIEWER,
                _RECIPIENT,
                bindparam("content", type_=Text),
                bindparam("anonymous", type_=Boolean),
                _NOW,
            ).select_from(quota),
            include_defaults=False,  # `withheld` keeps its server default (false)
        )
        .returning(whispers.c.id)
        .cte("sent")
    )
    notify = func.pg_notify(bindparam("channel", type_=Text), bindparam("event", type_=Text))
    return select(
        exists(select(sent.c.id)).label("sent"),
        select(notify).select_from(sent).scalar_subquery().label("notified"),
        func.coalesce(select(recipient.c.shown).scalar_subquery(), false()).label("shown"),
    )


def _ready() -> Select[Any]:
    """The send's conditions without writing anything: whether it would go through now, and
    the sender's openid for the content check."""
    viewer, recipient, plan = _checks()
    counters, quotas = _COUNTERS, _QUOTAS
    hits = select(counters.c.hits).where(
        counters.c.key == _HIT_KEY, counters.c.window_start == _HIT_START
    )
    used = select(quotas.c.used).where(
        quotas.c.user_id == _VIEWER, quotas.c.day == _DAY, quotas.c.kind == "WHISPER"
    )
    return select(
        select(viewer.c.wechat_openid).scalar_subquery().label("openid"),
        and_(
            exists(select(viewer.c.id).select_from(viewer.join(recipient, true()))),
            func.coalesce(hits.scalar_subquery(), 0) < _ALLOWED,
            func.coalesce(used.scalar_subquery(), 0) < select(plan.c.daily_limit).scalar_subquery(),
        ).label("ready"),
    )


_SEND = prepare(_send())
_READY = prepare(_ready())


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
        "day": local_day(now),
        "basic_limit": daily_limit(settings, "BASIC", "WHISPER"),
        "pro_limit": daily_limit(settings, "PRO", "WHISPER"),
        "whisper": whisper_id,
        "now": now,
        "content": content,
        "anonymous": send.anonymous,
        "channel": events.CHANNEL,
        "event": events.payload(events.WHISPER, [recipient_id]),
    }
    if settings.wechat_configured:
        # Checked before the send's transaction opens: no connection waits on WeChat.
        ready = await services.read_pool.fetchrow(_READY.sql, *_READY.args(params))
        if ready is None or not ready["ready"]:
            return None
        if not await text_passes(services, ready["openid"], content, scene=SCENE_SOCIAL):
            return None
    row = await services.read_pool.write(
        _SEND.sql, *_SEND.args(params), keep=lambda r: bool(r["sent"])
    )
    if row is None:
        return None
    return Sent(whisper_id, recipient_id, content, send.anonymous, now, bool(row["shown"]))
