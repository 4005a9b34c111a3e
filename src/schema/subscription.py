"""Real-time delivery over graphql-transport-ws: each event is re-authorized and read anew."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable
from datetime import datetime
from enum import Enum

import strawberry

from src import events
from src.auth.permissions import AUTHENTICATED
from src.resolvers import live_sql, matches, whispers
from src.resolvers.live import Fetch, LiveFeed, R
from src.resolvers.pagination import decode_cursor
from src.schema.context import Context, Info
from src.schema.extensions import OperationTimeout
from src.schema.matches import Match
from src.schema.whispers import Whisper
from src.services import Services

log = logging.getLogger(__name__)


async def _close(ctx: Context, reason: str) -> None:
    # The login ended (expired, revoked, banned): the socket goes, not just this subscription.
    # Subscriptions here only run over websockets; the context types `request` for both kinds.
    await ctx.request.close(code=4403, reason=reason)  # type: ignore[call-arg]


class _Read(Enum):
    ORM = "read this event through the ORM"


_ORM = _Read.ORM
Cursor = tuple[datetime, uuid.UUID]
# `compiled(services, viewer id, session id, cursor)`: rows after `cursor`, None once the
# login has ended.
Compiled = Callable[[Services, uuid.UUID, uuid.UUID, Cursor], Awaitable[list[R] | None]]


async def _live(
    info: Info,
    kind: str,
    fetch: Fetch[R],
    after: Cursor | None,
    compiled: Compiled[R] | None = None,
) -> AsyncGenerator[tuple[R, uuid.UUID], None]:
    """Yield (row, viewer id) for every new row of the viewer's feed, until the login ends.
    `compiled(services, viewer id, session id, cursor)` is the same read (login check
    included) as one statement, returning None once the login has ended."""
    ctx = info.context
    socket = ctx.socket or ctx
    claims = ctx.claims
    assert claims is not None  # on_ws_connect refused sockets without a valid token
    async with ctx.services.hub.subscribe(kind, claims.user_id) as wakeups:
        feed: LiveFeed[R] | None = None
        while True:
            # The socket's login, renewed by a refresh (src/schema/ws_login.py) or not.
            claims = ctx.claims = socket.claims
            ttl = claims.expires_at - time.time() if claims else 0
            if claims is None or ttl <= 0:
                await _close(ctx, "token expired")
                return
            if not await wakeups.wait(ttl):
                continue
            try:
                # Each event's reads have the operation timeout (SECURITY.md 8); the event's
                # fields then resolve under PostgreSQL's statement_timeout.
                try:
                    async with asyncio.timeout(ctx.settings.operation_timeout_s):
                        fetched: list[R] | _Read | None = _ORM
                        if feed is not None and compiled is not None:
                            fetched = await _compiled_read(ctx, compiled, feed.floor)
                        if fetched is _ORM:
                            feed, fetched = await _orm_read(ctx, fetch, feed, after)
                        if feed is None or fetched is None:
                            await _close(ctx, "login ended")
                            return
                        rows = feed.accept(fetched)
                except TimeoutError:
                    raise OperationTimeout() from None
                # Rows leave one by one and the state goes with the transaction: a socket
                # waiting for its next event keeps none of this one's objects (the cyclic
                # collector would rescan them on every full pass).
                while rows:
                    yield rows.pop(0), claims.user_id
            finally:
                await ctx.finish(commit=False)
                ctx.fresh_state()


async def _orm_read(
    ctx: Context, fetch: Fetch[R], feed: LiveFeed[R] | None, after: Cursor | None
) -> tuple[LiveFeed[R] | None, list[R] | None]:
    """(feed, rows after its floor) through the ORM; rows are None once the login ended."""
    viewer = await ctx.viewer()
    if viewer is None:
        return feed, None
    if feed is None:
        now = ctx.services.clock()
        feed = await LiveFeed.start(ctx.session, fetch, viewer.id, after=after, now=now)
    return feed, await feed.fetch(ctx.session, viewer.id, feed.floor)


async def _compiled_read(
    ctx: Context, compiled: Compiled[R], cursor: Cursor
) -> list[R] | _Read | None:
    if not ctx.settings.compiled_queries:
        return _ORM
    claims = ctx.claims
    assert claims is not None
    try:
        return await compiled(ctx.services, claims.user_id, claims.session_id, cursor)
    except Exception:  # only a read: the ORM path answers it
        log.exception("compiled subscription read failed; reading through the ORM")
        return _ORM


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="New whispers to the viewer. `after`: the last whisper cursor the client "
        "saw; missed ones come first.",
        permission_classes=AUTHENTICATED,
    )
    async def whisper_received(
        self, info: Info, after: str | None = None
    ) -> AsyncGenerator[Whisper, None]:
        key = decode_cursor(after, datetime, uuid.UUID) if after else None
        async for row, viewer_id in _live(
            info, events.WHISPER, whispers.received_after, key, live_sql.received_after
        ):
            yield Whisper(row=row, viewer_id=viewer_id)

    @strawberry.subscription(
        description="Matches the moment they are made.", permission_classes=AUTHENTICATED
    )
    async def match_created(self, info: Info) -> AsyncGenerator[Match, None]:
        async for row, viewer_id in _live(info, events.MATCH, matches.matches_after, None):
            yield Match(row=row, viewer_id=viewer_id)
