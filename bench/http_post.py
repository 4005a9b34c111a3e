"""A lean HTTP/1.1 keep-alive POST client for the delivery benchmark's load generator.

The load generator shares two cores with the servers it measures. httpx spends ~3 ms of CPU per
request here (its connection pool rescans every connection per request, and its async-library
detection retries a failing import each call), which at 100 sends/s took most of a core and
stalled the generator's own event loop by 50–150 ms — latency that belonged to the generator,
not the server. This client writes a prepared request on a reused connection and reads a
`Content-Length` answer: tens of microseconds per request.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

from bench.harness import BenchError

# uvicorn closes a keep-alive connection idle for 5 s; one idle longer than this is not reused,
# so a POST never races the server's close (and is never retried: it is not idempotent).
IDLE_REUSE_S = 2.0


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.idle_since = 0.0

    def close(self) -> None:
        self.writer.close()


class PostClient:
    """POSTs to one URL over at most `connections` keep-alive connections; extra callers wait
    for a free connection (the wait counts in their latency, as it should)."""

    def __init__(self, url: str, connections: int, timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname or not parts.port:
            raise BenchError(f"PostClient needs http://host:port/path, got {url}")
        self._host, self._port = parts.hostname, parts.port
        self._head = (
            f"POST {parts.path or '/'} HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\n"
            "Content-Type: application/json\r\n"
        ).encode()
        self._timeout = timeout
        self._slots = asyncio.Semaphore(connections)
        self._idle: list[_Conn] = []
        self._all: set[_Conn] = set()

    async def post(self, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        """(status, body) of one POST; raises OSError/TimeoutError/BenchError on failure."""
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        request = b"".join(
            (self._head, extra.encode(), b"Content-Length: %d\r\n\r\n" % len(body), body)
        )
        async with self._slots:
            conn = await self._checkout()
            try:
                status, answer, keep = await asyncio.wait_for(
                    self._exchange(conn, request), self._timeout
                )
            except BaseException:
                self._drop(conn)
                raise
            if keep:
                conn.idle_since = time.monotonic()
                self._idle.append(conn)
            else:
                self._drop(conn)
            return status, answer

    async def _checkout(self) -> _Conn:
        while self._idle:
            conn = self._idle.pop()
            if time.monotonic() - conn.idle_since < IDLE_REUSE_S:
                return conn
            self._drop(conn)
        return await self._connect()

    async def _connect(self) -> _Conn:
        reader, writer = await asyncio.open_connection(self._host, self._port)
        conn = _Conn(reader, writer)
        self._all.add(conn)
        return conn

    def _drop(self, conn: _Conn) -> None:
        self._all.discard(conn)
        conn.close()

    @staticmethod
    async def _exchange(conn: _Conn, request: bytes) -> tuple[int, bytes, bool]:
        conn.writer.write(request)
        head = await conn.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        try:
            status = int(lines[0].split(" ", 2)[1])
        except (IndexError, ValueError):
            raise BenchError(f"not an HTTP answer: {lines[0][:100]!r}") from None
        fields = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                fields[name.strip().lower()] = value.strip()
        if "content-length" not in fields:
            raise BenchError(f"answer without Content-Length: {fields}")
        answer = await conn.reader.readexactly(int(fields["content-length"]))
        return status, answer, fields.get("connection", "").lower() != "close"

    async def aclose(self) -> None:
        for conn in list(self._all):
            self._drop(conn)
        self._idle.clear()
