"""A `whisperReceived` event's read as one SQL statement.

Every event re-authorizes its subscriber and reads what is new. Through the ORM that is a
pooled checkout with its ping, BEGIN, the viewer, the feed and ROLLBACK: five round trips and
about half of a server's CPU under workload C. Here it is one autocommit statement on the
compiled operations' pool — one snapshot in which the login is checked and the rows after the
cursor are read — built from the same rules as `users.load_viewer` and
`whispers.received_after` — `rules.login_valid` and `rules.shown_to_recipient` — compiled once
(tests/test_live_sql.py holds the two paths to the same rows; tests/test_two_worlds.py runs the
subscription through both).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Integer, Select, Uuid, bindparam, exists, select, true

from src.db import prepare
from src.models import Whisper, rules
from src.resolvers.whispers import LIVE_BATCH
from src.services import Services


def _statement() -> Select[Any]:
    u, w = rules.USERS.alias("u"), rules.WHISPERS.alias("w")
    viewer = bindparam("viewer", type_=Uuid)
    login = exists(
        select(u.c.id).where(rules.login_valid(viewer, bindparam("session", type_=Uuid), user=u))
    )
    v = select(login.label("ok")).subquery("v")
    cursor = [bindparam("at", type_=DateTime(timezone=True)), bindparam("last", type_=Uuid)]
    page = (
        select(w)
        .where(
            v.c.ok,
            rules.shown_to_recipient(viewer, whisper=w),
            rules.after([w.c.created_at, w.c.id], cursor, descending=False),
        )
        .order_by(w.c.created_at, w.c.id)
        .limit(bindparam("limit", type_=Integer))
        .lateral("page")
    )
    return select(v.c.ok, page).select_from(v.outerjoin(page, true()))


_READ = prepare(_statement())

_COLUMNS = tuple(Whisper.model_fields)


async def received_after(
    services: Services,
    viewer_id: uuid.UUID,
    session_id: uuid.UUID,
    cursor: tuple[datetime, uuid.UUID],
) -> list[Whisper] | None:
    """Whispers to the viewer after `cursor`, oldest first; None when the login has ended
    (revoked, banned, deleted)."""
    params = {
        "viewer": viewer_id,
        "session": session_id,
        "at": cursor[0],
        "last": cursor[1],
        "limit": LIVE_BATCH,
    }
    records = await services.read_pool.fetch(_READ.sql, *_READ.args(params))
    if not records or not records[0]["ok"]:
        return None
    return [Whisper(**{c: r[c] for c in _COLUMNS}) for r in records if r["id"] is not None]
