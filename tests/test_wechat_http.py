"""The keep-alive client under WeChat's calls (src/auth/wechat_http.py), against a raw TCP server
on 127.0.0.1 that answers exactly the bytes each test gives it: framing, connection reuse, a
server closing idle connections, cut and missing answers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest

from src.auth.wechat_http import HttpTimeout, HttpTransportError, KeepAliveClient, Timeouts

TIMEOUTS = Timeouts(connect=2, read=2, pool=2)
OK = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}'


@dataclass
class RawServer:
    """Answers each request it reads with `answer(n)` (n counts requests across connections);
    None closes the connection without answering. `close_after` closes a connection once it
    has answered that many requests."""

    answer: Callable[[int], bytes | None]
    close_after: int | None = None
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)
    port: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        answered = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                self.requests.append(head + await reader.readexactly(length))
                reply = self.answer(len(self.requests))
                if reply is None:
                    break
                writer.write(reply)
                await writer.drain()
                answered += 1
                if self.close_after is not None and answered >= self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def raw_server(server: RawServer) -> AsyncIterator[KeepAliveClient]:
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    server.port = listener.sockets[0].getsockname()[1]
    client = KeepAliveClient(f"http://127.0.0.1:{server.port}/base")
    try:
        yield client
    finally:
        await client.aclose()
        listener.close()


async def test_sequential_calls_share_one_connection() -> None:
    server = RawServer(lambda _n: OK)
    async with raw_server(server) as client:
        for _ in range(5):
            answer = await client.request("POST", "/wxa/x?access_token=T", b"{}", TIMEOUTS)
            assert (answer.status, answer.body) == (200, b'{"ok":true}')
    assert server.connections == 1
    first = server.requests[0]
    assert first.startswith(b"POST /base/wxa/x?access_token=T HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{server.port}\r\n".encode() in first
    assert first.endswith(b"Content-Length: 2\r\n\r\n{}")


async def test_a_connection_the_server_closed_while_idle_is_replaced() -> None:
    server = RawServer(lambda _n: OK, close_after=1)
    async with raw_server(server) as client:
        for _ in range(3):
            assert (await client.request("GET", "/a", None, TIMEOUTS)).status == 200
            await asyncio.sleep(0.05)  # the server's close arrives while the connection idles
    assert server.connections == 3


async def test_chunked_answers_are_read_whole_and_connection_close_is_honoured() -> None:
    chunked = (
        b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{"a"\r\n5\r\n:"b"}\r\n0\r\n\r\n'
    )
    closing = b"HTTP/1.1 503 Busy\r\nConnection: close\r\nContent-Length: 2\r\n\r\nno"
    server = RawServer(lambda n: chunked if n == 1 else closing)
    async with raw_server(server) as client:
        assert (await client.request("GET", "/a", None, TIMEOUTS)).body == b'{"a":"b"}'
        assert (await client.request("GET", "/a", None, TIMEOUTS)).status == 503
        assert (await client.request("GET", "/a", None, TIMEOUTS)).status == 503
    assert server.connections == 2  # the chunked answer kept its connection; `close` did not


@pytest.mark.parametrize(
    "reply",
    [None, b'HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{"cut', b"NOT HTTP AT ALL\r\n\r\n"],
    ids=["closed", "cut", "garbage"],
)
async def test_missing_cut_or_malformed_answers_are_transport_errors(reply: bytes | None) -> None:
    def answer(n: int) -> bytes | None:
        if n == 1:
            return reply
        return OK

    server = RawServer(answer, close_after=1)
    async with raw_server(server) as client:
        with pytest.raises(HttpTransportError):
            await client.request("GET", "/a", None, TIMEOUTS)
        assert (await client.request("GET", "/a", None, TIMEOUTS)).status == 200
    assert server.connections == 2


async def test_no_answer_is_a_timeout_and_its_connection_is_dropped() -> None:
    def answer(n: int) -> bytes | None:
        return b"" if n == 1 else OK  # the first request gets no bytes back

    server = RawServer(answer)
    async with raw_server(server) as client:
        with pytest.raises(HttpTimeout):
            await client.request("GET", "/a", None, Timeouts(connect=2, read=0.2, pool=2))
        assert (await client.request("GET", "/a", None, TIMEOUTS)).status == 200
    assert server.connections == 2  # a late answer could never be read as the next one's


async def test_an_unreachable_server_is_a_transport_error() -> None:
    listener = await asyncio.start_server(lambda _r, _w: None, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    listener.close()
    await listener.wait_closed()
    client = KeepAliveClient(f"http://127.0.0.1:{port}")
    with pytest.raises(HttpTransportError):
        await client.request("GET", "/a", None, TIMEOUTS)
