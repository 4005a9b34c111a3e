"""The typed per-request context: session, viewer and dataloaders."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import strawberry
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from src.resolvers.loaders import Loaders
from src.services import Services


@dataclass
class Context:
    request: Request | WebSocket
    response: Response | None
    services: Services
    viewer_id: uuid.UUID | None = None
    _session: AsyncSession | None = field(default=None, repr=False)
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders(lambda: self.session)

    @property
    def session(self) -> AsyncSession:
        """The operation's one session, opened on first use (`{ health }` never touches it)."""
        if self._session is None:
            self._session = self.services.sessionmaker()
        return self._session

    async def finish(self, *, commit: bool) -> None:
        """End the operation's transaction: commit when it succeeded, else roll back."""
        session, self._session = self._session, None
        if session is None:
            return
        try:
            if commit:
                await session.commit()
            else:
                await session.rollback()
        finally:
            await session.close()


Info = strawberry.Info[Context, None]
