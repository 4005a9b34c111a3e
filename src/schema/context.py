"""The typed per-request context: session, viewer and dataloaders."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import strawberry
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from src.auth.tokens import AccessClaims, InvalidToken
from src.config import Settings
from src.models import User
from src.resolvers.errors import Unauthenticated
from src.resolvers.loaders import Loaders
from src.resolvers.users import load_viewer
from src.services import Services

_UNSET: Any = object()
log = logging.getLogger(__name__)
EXPIRED = "The access token has expired; refresh it."


def now() -> float:
    return time.time()


@dataclass
class Context:
    request: Request | WebSocket
    response: Response | WebSocket | None  # strawberry passes the socket itself on websockets
    services: Services
    claims: AccessClaims | None = None
    # Set when a token was presented but refused: guarded fields say so instead of "log in".
    auth_problem: str | None = None
    # graphql-transport-ws `connection_init` payload (websockets only).
    connection_params: dict[str, Any] | None = None
    # Work to start once the operation's transaction has committed (never before, never if
    # it rolls back): e.g. notices to people who are offline.
    after_commit: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # An operation on a websocket: the socket's context, whose login a refresh may renew.
    socket: Context | None = field(default=None, repr=False)
    _session: AsyncSession | None = field(default=None, repr=False)
    _viewer: Any = field(default=_UNSET, repr=False)
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders(lambda: self.session, lambda: self.services.clock())

    @property
    def session(self) -> AsyncSession:
        """The operation's one session, opened on first use (`{ health }` never touches it)."""
        if self._session is None:
            self._session = self.services.sessionmaker()
        return self._session

    def for_operation(self) -> Context:
        """A context for one operation on a websocket: the socket's login, but a session,
        viewer and loaders of its own. Operations on one socket run concurrently and end at
        different times; sharing the socket's context, one would commit or close another's
        session and read a viewer loaded (and expired) by the handshake."""
        claims, problem = self.claims, self.auth_problem
        if claims is not None and claims.expires_at <= now():
            # As over HTTP: an expired token is no login (SECURITY.md 35). The socket closes
            # at expiry unless refreshed; an operation arriving meanwhile is refused.
            claims, problem = None, EXPIRED
        return Context(
            request=self.request,
            response=self.response,
            services=self.services,
            claims=claims,
            auth_problem=problem,
            connection_params=self.connection_params,
            socket=self,
        )

    async def renew(self, authorization: object) -> bool:
        """A websocket's login renewed by a fresh access token of the same user (sent in a
        `ping`); False, leaving the login as it was, for anything else — another user, an
        invalid or expired token, an ended login."""
        before = (self.claims, self.auth_problem)
        if not isinstance(authorization, str) or before[0] is None:
            return False
        self.authenticate(authorization)
        claims = self.claims
        if claims is not None and claims.user_id == before[0].user_id:
            async with self.services.sessionmaker() as session:
                if await load_viewer(session, claims.user_id, claims.session_id) is not None:
                    return True
        self.claims, self.auth_problem = before
        return False

    def fresh_state(self) -> None:
        """Forget the viewer, session and loader caches: each subscription event is a request
        of its own, re-authorized and read anew (a socket may live for hours)."""
        self._viewer = _UNSET
        self.loaders = Loaders(lambda: self.session, lambda: self.services.clock())

    async def finish(self, *, commit: bool) -> None:
        """End the operation's transaction: commit when it succeeded, else roll back."""
        session, self._session = self._session, None
        if session is None:
            return
        jobs, self.after_commit = self.after_commit, []
        try:
            if commit:
                await session.commit()
            else:
                await session.rollback()
                jobs = []
        finally:
            await session.close()
        for job in jobs:
            run_in_background(job)

    def authenticate(self, authorization: str | None) -> None:
        """Read `Bearer <access token>`; a refused token is remembered, not raised."""
        self.claims, self.auth_problem = None, None
        if not authorization:
            return
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            self.auth_problem = "Malformed Authorization header; use 'Bearer <token>'."
            return
        try:
            self.claims = self.services.tokens.verify_access(token.strip())
        except InvalidToken:
            self.auth_problem = "The access token is invalid or expired; refresh it."

    async def viewer(self) -> User | None:
        """The logged-in, active user, loaded at most once per request."""
        if self._viewer is _UNSET:
            claims = self.claims
            self._viewer = (
                await load_viewer(self.session, claims.user_id, claims.session_id)
                if claims
                else None
            )
        return self._viewer

    async def require_viewer(self) -> User:
        user = await self.viewer()
        if user is None:
            raise Unauthenticated(self.auth_problem or "You must be logged in.")
        return user

    @property
    def settings(self) -> Settings:
        return self.services.settings

    @property
    def client_platform(self) -> str | None:
        """What the mini app reports from wx.getSystemInfo().platform (ios, android, ...)."""
        return client_platform(self.request.headers)

    @property
    def client_ip(self) -> str:
        return client_ip(self.request, self.services.settings)


def client_platform(headers: Mapping[str, str]) -> str | None:
    """The X-WX-Platform header, normalized (also read by the compiled reads, per request)."""
    value = headers.get("x-wx-platform")
    return value.strip().lower()[:20] if value else None


_background: set[asyncio.Task[None]] = set()


def run_in_background(job: Callable[[], Awaitable[None]]) -> None:
    async def run() -> None:
        try:
            await job()
        except Exception:  # a follow-up never fails the request that caused it
            log.exception("post-commit job failed")

    task = asyncio.create_task(run())
    _background.add(task)  # keep a reference until done, or the task may vanish
    task.add_done_callback(_background.discard)


def client_ip(conn: HTTPConnection, settings: Settings) -> str:
    """The caller's IP: from the configured trusted-proxy header only, else the socket peer."""
    if settings.trusted_proxy_header:
        value = conn.headers.get(settings.trusted_proxy_header, "")
        hops = [h.strip() for h in value.split(",") if h.strip()]
        if len(hops) >= settings.trusted_proxy_hops:
            return hops[-settings.trusted_proxy_hops][:64]
    return conn.client.host if conn.client else "unknown"


Info = strawberry.Info[Context, None]
