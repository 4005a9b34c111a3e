"""A `whisperReceived` event's read as one SQL statement.

Every event re-authorizes its subscriber and reads what is new. Through the ORM that is a
pooled checkout with its ping, BEGIN, the viewer, the feed and ROLLBACK: five round trips and
about half of a server's CPU under workload C. Here it is one autocommit statement on the
compiled operations' pool — one snapshot in which the login is checked and the rows after the
cursor are read — with exactly the conditions of `users.load_viewer` and
`whispers.received_after`, i.e. `anonymity.shown_to_recipient` (tests/test_live_sql.py holds the
two paths to the same rows; tests/test_two_worlds.py runs the subscription through both).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from src.models import Whisper
from src.resolvers.whispers import LIVE_BATCH
from src.services import Services

_SQL = """
SELECT v.ok, w.*
FROM (
    SELECT EXISTS (
        SELECT 1 FROM users u JOIN auth_sessions s ON s.user_id = u.id
        WHERE u.id = $1 AND u.status = 'active' AND s.id = $2 AND s.revoked_at IS NULL
    ) AS ok
) v
LEFT JOIN LATERAL (
    SELECT w.* FROM whispers w
    WHERE v.ok AND w.recipient_id = $1 AND (w.created_at, w.id) > ($3, $4)
      AND NOT w.withheld
      -- anonymity.shown_to_recipient: blocks hide only senders the viewer knows
      AND ((w.is_anonymous AND w.revealed_at IS NULL) OR w.sender_id IS NULL OR NOT EXISTS (
          SELECT 1 FROM user_blocks b
          WHERE (b.blocker_id = $1 AND b.blocked_id = w.sender_id)
             OR (b.blocker_id = w.sender_id AND b.blocked_id = $1)))
    ORDER BY w.created_at, w.id
    LIMIT $5
) w ON true
"""

_COLUMNS = tuple(Whisper.model_fields)


async def received_after(
    services: Services,
    viewer_id: uuid.UUID,
    session_id: uuid.UUID,
    cursor: tuple[datetime, uuid.UUID],
) -> list[Whisper] | None:
    """Whispers to the viewer after `cursor`, oldest first; None when the login has ended
    (revoked, banned, deleted)."""
    records = await services.read_pool.fetch(_SQL, viewer_id, session_id, *cursor, LIVE_BATCH)
    if not records or not records[0]["ok"]:
        return None
    return [Whisper(**{c: r[c] for c in _COLUMNS}) for r in records if r["id"] is not None]
