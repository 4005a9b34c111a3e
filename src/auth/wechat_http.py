"""A keep-alive HTTP/1.1 client for WeChat's JSON APIs: one origin, small JSON bodies.

Every whisper in production makes one WeChat call (the content check), so its cost is paid on
the send path: through httpx it took ~1.6 ms of CPU per call, most of it in layers this use does
not need (request and URL models, auth and redirect hooks, a pool that polls each idle socket
for readability before every request). Here a connection is an asyncio protocol that learns at
once when the server closes it, and httptools (C, the parser uvicorn uses) reads the answers:
~0.16 ms of CPU per content check (2,000 calls against bench/fake_wechat.py, 8 at a time).

Same trust as httpx: TLS uses `httpx.create_ssl_context()` (certifi, or SSL_CERT_FILE). No
proxy support: WeChat's API is reached directly.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import httptools
import httpx

# How long an unused connection is kept (httpx's default): WeChat's servers close idle ones.
KEEPALIVE_S = 5.0
# WeChat's answers are small JSON documents: anything past these is cut off as an error rather
# than held in memory.
MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 1024 * 1024


class HttpTimeout(Exception):
    """No connection, or no answer, within its timeout."""


class HttpTransportError(Exception):
    """Refused, reset, closed before the whole answer, or not HTTP."""


@dataclass(frozen=True)
class Timeouts:
    connect: float
    read: float  # the whole answer, once the request is written
    pool: float  # waiting for a free connection slot


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection, one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[Answer] | None = None
        self.chunks: list[bytes] = []
        self.in_head = True  # the answer's status line and headers are not all read yet
        self.head_bytes = 0
        self.body_bytes = 0
        self.closed = False
        self.reusable = False
        self.idle_since = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's are not subclasses of asyncio.Transport).
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.in_head:
            self.head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            self._fail(HttpTransportError(f"malformed answer: {exc!r}"))
            self.close()
            return
        # httptools buffers a header until it ends: bound what it may hold, and the body.
        if self._too_large():
            self._fail(HttpTransportError("answer too large"))
            self.close()

    def _too_large(self) -> bool:
        return (self.in_head and self.head_bytes > MAX_HEADER_BYTES) or (
            self.body_bytes > MAX_BODY_BYTES
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(HttpTransportError("connection closed before the answer"))

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.chunks = []
        self.body_bytes = 0

    def on_headers_complete(self) -> None:
        self.in_head = False

    def on_body(self, body: bytes) -> None:
        self.body_bytes += len(body)
        if self.body_bytes <= MAX_BODY_BYTES:  # past it, data_received ends the connection
            self.chunks.append(body)

    def on_message_complete(self) -> None:
        self.in_head, self.head_bytes = True, 0  # for the next answer on this connection
        if self.body_bytes > MAX_BODY_BYTES:
            return  # data_received fails the request
        self.reusable = self.parser.should_keep_alive()
        answer = Answer(self.parser.get_status_code(), b"".join(self.chunks))
        self.chunks = []
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(answer)

    def _fail(self, exc: Exception) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)

    async def exchange(self, request: bytes, read_timeout: float) -> Answer:
        assert self.transport is not None
        self.reusable = False
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        try:
            async with asyncio.timeout(read_timeout):
                return await self.waiter
        except TimeoutError:
            raise HttpTimeout("no answer within the read timeout") from None
        finally:
            self.waiter = None

    def usable(self, now: float) -> bool:
        return not self.closed and now - self.idle_since < KEEPALIVE_S

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


class KeepAliveClient:
    """Requests to one origin (`base_url`, which may carry a path prefix) over a pool of at most
    `max_connections` kept-alive connections."""

    def __init__(self, base_url: str, *, max_connections: int = 100) -> None:
        url = urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.host = url.hostname
        self.port = url.port or (443 if url.scheme == "https" else 80)
        default_port = self.port == (443 if url.scheme == "https" else 80)
        self.host_header = url.netloc.rpartition("@")[2] if not default_port else self.host
        self.prefix = url.path.rstrip("/")
        self.tls = url.scheme == "https"
        self._ssl: ssl.SSLContext | None = None  # made on first use: loading it takes ~40 ms
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(max_connections)

    async def request(
        self, method: str, target: str, body: bytes | None, timeouts: Timeouts
    ) -> Answer:
        """`target`: path and query under the base URL, already encoded."""
        head = (
            f"{method} {self.prefix}{target} HTTP/1.1\r\nHost: {self.host_header}\r\n"
            "User-Agent: qiaoqiao\r\nAccept: application/json\r\n"
        )
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        request = (head + "\r\n").encode("ascii") + (body or b"")
        try:
            async with asyncio.timeout(timeouts.pool):
                await self._slots.acquire()
        except TimeoutError:
            raise HttpTimeout("no free connection") from None
        try:
            conn = self._take_idle() or await self._connect(timeouts.connect)
            try:
                return await conn.exchange(request, timeouts.read)
            finally:
                # `reusable` only once an answer was read whole and the server keeps the
                # connection: after a timeout or a cancellation a late answer could otherwise
                # be read as the next request's.
                if conn.reusable and not conn.closed:
                    conn.idle_since = time.monotonic()
                    self._idle.append(conn)
                else:
                    conn.close()
        finally:
            self._slots.release()

    def _take_idle(self) -> _Connection | None:
        """The most recently used live connection; expired ones at the far end are closed."""
        now = time.monotonic()
        while self._idle and not self._idle[0].usable(now):
            self._idle.pop(0).close()
        while self._idle:
            conn = self._idle.pop()
            if conn.usable(now):
                return conn
            conn.close()
        return None

    async def _connect(self, seconds: float) -> _Connection:
        loop = asyncio.get_running_loop()
        if self.tls and self._ssl is None:
            self._ssl = httpx.create_ssl_context()
        try:
            async with asyncio.timeout(seconds):
                _, conn = await loop.create_connection(
                    _Connection,
                    self.host,
                    self.port,
                    ssl=self._ssl,
                    server_hostname=self.host if self.tls else None,
                )
        except TimeoutError:
            raise HttpTimeout("no connection within the connect timeout") from None
        except OSError as exc:  # refused, unreachable, TLS failures (ssl.SSLError)
            raise HttpTransportError(f"cannot connect: {exc}") from None
        return conn

    async def aclose(self) -> None:
        while self._idle:
            self._idle.pop().close()
