"""Who an MCP call acts for, and running it as that user in its own transaction.

Over HTTP the bearer token is the same access JWT GraphQL takes, checked by `JwtVerifier`
(401 without a valid one). Over stdio, the token given at start-up fixes the user; every call
still re-checks that the login is active, so logout, a ban or account deletion end it.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken, TokenVerifier
from sqlmodel.ext.asyncio.session import AsyncSession

from src.auth.tokens import InvalidToken
from src.models import User
from src.resolvers.auth import rate_limit
from src.resolvers.errors import PublicError, UserFacingError
from src.resolvers.users import load_viewer
from src.services import Services

log = logging.getLogger(__name__)

T = TypeVar("T")
ServicesRef = Callable[[], Services]
Later = list[Callable[[], Awaitable[None]]]


@dataclass(frozen=True)
class Identity:
    user_id: uuid.UUID
    session_id: uuid.UUID


class JwtVerifier(TokenVerifier):
    """Access JWTs of an active login (the GraphQL rules): anything else is refused (401)."""

    def __init__(self, services: ServicesRef):
        self.services = services

    async def verify_token(self, token: str) -> AccessToken | None:
        services = self.services()
        try:
            claims = services.tokens.verify_access(token)
        except InvalidToken:
            return None
        async with services.sessionmaker() as session:
            user = await load_viewer(session, claims.user_id, claims.session_id)
        if user is None:
            return None
        return AccessToken(
            token=token,
            client_id=str(claims.user_id),
            scopes=[],
            expires_at=claims.expires_at,
            subject=str(claims.user_id),
            claims={"sid": str(claims.session_id)},
        )


def current_identity(fixed: Identity | None) -> Identity | None:
    token = get_access_token()
    if token is not None and token.subject and token.claims:
        return Identity(uuid.UUID(token.subject), uuid.UUID(str(token.claims["sid"])))
    return fixed


_background: set[asyncio.Task[None]] = set()


def _start(job: Callable[[], Awaitable[None]]) -> None:
    async def run() -> None:
        try:
            await job()
        except Exception:  # a follow-up never fails the call that caused it
            log.exception("post-commit job failed")

    task = asyncio.create_task(run())
    _background.add(task)
    task.add_done_callback(_background.discard)


async def as_viewer(
    services: Services,
    identity: Identity | None,
    work: Callable[[AsyncSession, User, Later], Awaitable[T]],
    *,
    error: Callable[[str], Exception],
) -> T:
    """Run `work` as the logged-in user in one transaction, committed when it returns.

    Expected failures become `error(<CODE>: <message>)` for the client; unexpected ones are
    logged and answered with a generic message (never a stack trace or SQL).
    """
    if identity is None:
        raise error("UNAUTHENTICATED: no access token.")
    later: Later = []
    try:
        await rate_limit(services, "mcp:user", str(identity.user_id))
        async with services.sessionmaker() as session, session.begin():
            viewer = await load_viewer(session, identity.user_id, identity.session_id)
            if viewer is None:
                raise PublicError("The login has ended; log in again.", code="UNAUTHENTICATED")
            result = await work(session, viewer, later)
    except (UserFacingError, PublicError) as exc:
        message = exc.message if isinstance(exc, UserFacingError) else str(exc)
        raise error(f"{exc.code}: {message}") from None
    except Exception:
        log.exception("MCP call failed")
        raise error("INTERNAL_SERVER_ERROR: something went wrong.") from None
    for job in later:
        _start(job)
    return result


def plain(value: Any) -> Any:
    """JSON-ready: uuids and dates as strings."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
