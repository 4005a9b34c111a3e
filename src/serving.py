"""How `qiaoqiao serve` runs uvicorn: who the client is, and how long a slow client may take.

- The client IP is the socket peer (SECURITY.md 34). uvicorn's own `proxy_headers` would
  rewrite it from `X-Forwarded-For` whenever the peer is 127.0.0.1 — any local reverse proxy, or
  a TCP proxy that passes the header through — so it stays off; TRUSTED_PROXY_HEADER and
  TRUSTED_PROXY_HOPS are the one way to read a proxy's header (src/schema/context.client_ip).
- Slow clients (SECURITY.md 36): uvicorn closes idle kept-alive connections, but waits for a
  request's headers forever — one byte every few seconds holds a connection (slowloris). The
  protocols below give the headers a deadline; bodies have theirs in src/request_guard.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from src.config import Settings, get_settings


class _HeaderDeadline(asyncio.Protocol):
    """Close a connection whose next request's headers have not all arrived within
    HTTP_HEADER_TIMEOUT_S of it opening or of the previous response ending.

    Mixed in before one of uvicorn's HTTP protocols, which set the attributes declared here."""

    cycle: Any  # the current request's cycle (each protocol has its own class), or None
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    _header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm_header_deadline()

    def on_response_complete(self) -> None:
        # Defined by the uvicorn protocol that follows this class in the MRO, not by asyncio's.
        super().on_response_complete()  # type: ignore[misc]
        self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
        waiting = self.cycle
        transport = self.transport

        def expire() -> None:
            idle = waiting is None or waiting.response_complete
            # A new request (headers complete) replaces the cycle; a websocket takes the
            # transport over; a pipelined request still running is not a slow client.
            if self.cycle is waiting and idle and transport.get_protocol() is self:
                transport.close()

        timeout = get_settings().http_header_timeout_s
        self._header_deadline = self.loop.call_later(timeout, expire)


# Classes at module level, named in uvicorn's options by import string: with --workers, the
# options are pickled to each worker process (which reads the same settings).
class H11WithDeadline(_HeaderDeadline, H11Protocol):
    pass


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - httptools comes with uvicorn[standard]
    HTTP_PROTOCOL = "src.serving:H11WithDeadline"
else:

    class HttpToolsWithDeadline(_HeaderDeadline, HttpToolsProtocol):
        pass

    HTTP_PROTOCOL = "src.serving:HttpToolsWithDeadline"


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """uvicorn.run / uvicorn.Config keywords for a server process."""
    return {
        "proxy_headers": False,
        "http": HTTP_PROTOCOL,
        "timeout_keep_alive": settings.http_keepalive_timeout_s,
    }
