"""Real-time fan-out through PostgreSQL LISTEN/NOTIFY: no broker, every process hears every event.

Events carry ids only (`{"k": kind, "u": [user ids]}`) and are sent inside the transaction that
made the change, so they arrive at commit. Each process holds ONE dedicated listener connection
(not pooled) and wakes the subscriptions of the users an event names; a subscription then reads
what is new from the database itself, under the permissions in force at that moment. So a
missed wake-up (the listener reconnecting) costs nothing but latency: after reconnecting, every
subscription is woken to catch up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from typing import Any, cast

import asyncpg
import orjson
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

log = logging.getLogger(__name__)

CHANNEL = "qq_events"
WHISPER = "whisper"
MATCH = "match"
# Something about the account changed (ban, deletion, logout everywhere): every subscription
# of the user re-checks its permission at once.
ACCOUNT = "account"


def payload(kind: str, users: Iterable[uuid.UUID]) -> str:
    """The NOTIFY payload waking `users`' subscriptions of `kind` (the compiled send sends it
    from its own statement)."""
    return orjson.dumps({"k": kind, "u": [str(u) for u in users]}).decode()


async def publish(session: AsyncSession, kind: str, users: Iterable[uuid.UUID]) -> None:
    """Queue a wake-up for `users`; PostgreSQL delivers it when the transaction commits."""
    await session.scalar(
        text("SELECT pg_notify(:channel, :payload)"),
        {"channel": CHANNEL, "payload": payload(kind, users)},
    )


PRESENCE_HEARTBEAT_S = 30
PRESENCE_STALE_S = 90  # a process that stopped refreshing its sockets is presumed gone

_JOIN = text(
    "INSERT INTO socket_presence (id, user_id, process, seen_at)"
    " VALUES (:id, :user_id, :process, now())"
)
_LEAVE = text("DELETE FROM socket_presence WHERE id = :id")
_HEARTBEAT = text("UPDATE socket_presence SET seen_at = now() WHERE process = :process")
_FORGET_PROCESS = text("DELETE FROM socket_presence WHERE process = :process")
ONLINE = text(
    "SELECT EXISTS (SELECT 1 FROM socket_presence WHERE user_id = :user_id"
    " AND seen_at > now() - make_interval(secs => :stale))"
).bindparams(stale=PRESENCE_STALE_S)


class Wakeups:
    """One subscription's wake-up signal: set by the hub, cleared by the subscription."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.event.set()  # start awake: the first read catches up on what came before

    async def wait(self, seconds: float | None) -> bool:
        """True when woken, False when `seconds` passed first."""
        try:
            await asyncio.wait_for(self.event.wait(), seconds)
        except TimeoutError:
            return False
        self.event.clear()
        return True


class EventHub:
    def __init__(
        self,
        url: str,
        engine: AsyncEngine,
        *,
        max_sockets_per_user: int = 5,
        max_backoff_s: float = 10.0,
    ):
        self.dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self.engine = engine  # for presence rows, outside any request's transaction
        self.process = uuid.uuid4().hex
        self.max_sockets_per_user = max_sockets_per_user
        self.max_backoff_s = max_backoff_s
        self._subscribers: dict[tuple[str, str], set[Wakeups]] = defaultdict(set)
        self._sockets: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    @property
    def subscriptions(self) -> int:
        """Live subscriptions in this process (tests check that dropped sockets leave none)."""
        return sum(len(s) for s in self._subscribers.values())

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen_forever())
        self._heartbeat = asyncio.create_task(self._keep_presence_fresh())

    async def stop(self) -> None:
        for task in (self._task, self._heartbeat):
            if task:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        with contextlib.suppress(Exception):
            async with self.engine.begin() as conn:
                await conn.execute(_FORGET_PROCESS, {"process": self.process})

    async def join(self, user_id: uuid.UUID) -> uuid.UUID | None:
        """Count an open socket of `user_id` (None when they have too many here) and record
        it as presence, so other processes know the user is online."""
        if len(self._sockets[user_id]) >= self.max_sockets_per_user:
            return None
        socket_id = uuid.uuid4()
        self._sockets[user_id].add(socket_id)
        try:
            async with self.engine.begin() as conn:
                await conn.execute(
                    _JOIN, {"id": socket_id, "user_id": user_id, "process": self.process}
                )
        except Exception:  # presence is best effort: the socket works without it
            log.warning("could not record presence")
        return socket_id

    async def leave(self, user_id: uuid.UUID, socket_id: uuid.UUID) -> None:
        sockets = self._sockets.get(user_id)
        if sockets is not None:
            sockets.discard(socket_id)
            if not sockets:
                del self._sockets[user_id]
        with contextlib.suppress(Exception):
            async with self.engine.begin() as conn:
                await conn.execute(_LEAVE, {"id": socket_id})

    async def _keep_presence_fresh(self) -> None:
        while True:
            await asyncio.sleep(PRESENCE_HEARTBEAT_S)
            try:
                async with self.engine.begin() as conn:
                    await conn.execute(_HEARTBEAT, {"process": self.process})
            except Exception:
                log.warning("could not refresh presence")

    @contextlib.asynccontextmanager
    async def subscribe(self, kind: str, user_id: uuid.UUID) -> AsyncIterator[Wakeups]:
        """Wake-ups for `kind` events naming `user_id`, for as long as the block runs."""
        wakeups = Wakeups()
        key = (kind, str(user_id))
        self._subscribers[key].add(wakeups)
        try:
            yield wakeups
        finally:
            subscribers = self._subscribers.get(key)
            if subscribers is not None:
                subscribers.discard(wakeups)
                if not subscribers:
                    del self._subscribers[key]

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: object) -> None:
        try:
            event = orjson.loads(cast(str, payload))  # asyncpg passes NOTIFY payloads as text
            kind, users = event["k"], event["u"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.warning("ignoring a malformed event")
            return
        kinds = (WHISPER, MATCH) if kind == ACCOUNT else (kind,)
        for user in users:
            for each in kinds:
                for wakeups in self._subscribers.get((each, user), ()):
                    wakeups.event.set()

    def _wake_everyone(self) -> None:
        for subscribers in self._subscribers.values():
            for wakeups in subscribers:
                wakeups.event.set()

    async def _listen_forever(self) -> None:
        backoff = 0.2
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self.dsn, timeout=5)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                await conn.add_listener(CHANNEL, self._on_notify)
                self.connected.set()
                backoff = 0.2
                # Anything published while we were away is in the database: catch up now.
                self._wake_everyone()
                while not lost.is_set():
                    # A silent network loss would not terminate the connection: ping it.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), 15)
                    if not lost.is_set():
                        await conn.execute("SELECT 1", timeout=5)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # lost PostgreSQL: retry with backoff, never give up
                log.warning("event listener disconnected: %s", type(exc).__name__)
            finally:
                self.connected.clear()
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(conn.close(), 2)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff_s)
