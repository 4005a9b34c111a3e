"""graphql-transport-ws with logins that expire (SECURITY.md 19, 35).

A socket lives for hours; its access token for 15 minutes. When the token expires the server
closes the socket with 4403, unless the client has renewed it first: a `ping` whose payload
carries a fresh access token of the same user, `{"type": "ping", "payload": {"authorization":
"Bearer <accessToken>"}}`, answered by a `pong`. `ping` with a payload is part of the protocol,
so strict clients (graphql-ws) send it through their own API and ignore nothing; a message type
of our own would make them close the socket. A refused token closes the socket with 4403.
Between refreshes every operation still checks its login as HTTP does (Context.for_operation).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    PingMessage,
)

from src.schema.context import Context, now


class ExpiringLoginHandler(BaseGraphQLTransportWSHandler[Context, None]):
    _expiry: asyncio.Task[None] | None = None

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        await super().handle_connection_init(message)
        if self.connection_acknowledged and self._expiry is None:
            self._expiry = asyncio.create_task(self._close_at_expiry())

    async def handle_ping(self, message: PingMessage) -> None:
        payload: Any = message.get("payload")
        if isinstance(payload, dict) and self.connection_acknowledged:
            token = payload.get("authorization", payload.get("Authorization"))
            if token is not None and not await self.context.renew(token):
                await self.websocket.close(code=4403, reason="Forbidden")
                return
        await super().handle_ping(message)

    async def _close_at_expiry(self) -> None:
        while (claims := self.context.claims) is not None:
            left = claims.expires_at - now()
            if left <= 0:
                break
            await asyncio.sleep(left)  # a renewal moves expires_at on: wait again
        await self.websocket.close(code=4403, reason="token expired")

    async def shutdown(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._expiry
        await super().shutdown()
