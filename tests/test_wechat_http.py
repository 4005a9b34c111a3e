"""The keep-alive client under WeChat's calls (src/auth/wechat_http.py): against a raw TCP server
on 127.0.0.1 that answers exactly the bytes each test gives it (framing, connection reuse, a
server closing idle connections, cut, missing, oversized answers, redirects), and against the
fake WeChat served over TLS with a throwaway certificate."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import SecretStr
from starlette.applications import Starlette

from src.auth.wechat import WechatClient, WechatError
from src.auth.wechat_http import HttpTimeout, HttpTransportError, KeepAliveClient, Timeouts
from src.config import Settings
from tests.fakes.wechat import FakeWechat
from tests.helpers import free_port

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


@pytest.mark.parametrize(
    "reply",
    [
        b"HTTP/1.1 200 OK\r\nX-Endless: " + b"a" * (200 * 1024),
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"".join(b"10000\r\n" + b"b" * 0x10000 + b"\r\n" for _ in range(24)),
        b"HTTP/1.1 200 OK\r\nContent-Length: 3000000\r\n\r\n" + b"c" * 3_000_000,
    ],
    ids=["endless-header", "endless-chunks", "huge-body"],
)
async def test_oversized_answers_are_cut_off(reply: bytes) -> None:
    server = RawServer(lambda _n: reply)
    async with raw_server(server) as client:
        started = asyncio.get_running_loop().time()
        with pytest.raises(HttpTransportError, match="too large"):
            await client.request("GET", "/a", None, Timeouts(connect=2, read=10, pool=2))
        assert asyncio.get_running_loop().time() - started < 5  # not the read timeout
        assert client._idle == []


def wechat_client(base_url: str) -> WechatClient:
    settings = Settings(
        _env_file=None,
        wechat_app_id="wx-fake-app",
        wechat_app_secret=SecretStr("wx-fake-secret"),
        wechat_api_base=base_url,
    )
    return WechatClient(settings, engine=None)  # type: ignore[arg-type] # login needs no token


async def test_a_redirect_is_not_followed() -> None:
    moved = (
        b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/elsewhere\r\n"
        b'Content-Type: application/json\r\nContent-Length: 18\r\n\r\n{"openid":"wrong"}'
    )
    server = RawServer(lambda _n: moved)
    async with raw_server(server):
        client = wechat_client(f"http://127.0.0.1:{server.port}")
        with pytest.raises(WechatError) as failed:
            await client.code_to_session("code")
        await client.aclose()
    assert failed.value.kind == "unavailable"
    assert len(server.requests) == 1  # neither followed nor retried


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "qiaoqiao test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@asynccontextmanager
async def tls_fake_wechat(directory: Path) -> AsyncIterator[tuple[FakeWechat, Path]]:
    """The fake WeChat served over TLS on 127.0.0.1; yields it and its certificate."""
    cert_file, key_file = self_signed(directory)
    fake = FakeWechat()
    port = free_port()
    config = uvicorn.Config(
        fake.app(),
        host="127.0.0.1",
        port=port,
        log_config=None,
        ssl_certfile=str(cert_file),
        ssl_keyfile=str(key_file),
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.025)
        fake.url = f"https://127.0.0.1:{port}"
        yield fake, cert_file
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=10)


async def test_https_with_the_trusted_certificate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with tls_fake_wechat(tmp_path) as (fake, cert_file):
        fake.add_login("code-1", "openid-tls")
        # How production is pointed at a private CA: the variable httpx reads too.
        monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
        client = wechat_client(fake.url)
        try:
            assert (await client.code_to_session("code-1")).openid == "openid-tls"
        finally:
            await client.aclose()


async def test_https_with_an_untrusted_certificate_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with tls_fake_wechat(tmp_path) as (fake, _cert_file):
        fake.add_login("code-1", "openid-tls")
        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
        monkeypatch.delenv("SSL_CERT_DIR", raising=False)
        client = wechat_client(fake.url)  # trusts certifi's roots only
        try:
            with pytest.raises(WechatError) as failed:
                await client.code_to_session("code-1")
        finally:
            await client.aclose()
    assert failed.value.kind == "unavailable"
    assert fake.calls_to("/sns/jscode2session") == 0  # nothing was sent over it


async def test_shutdown_closes_wechat_connections(
    wx_app: Starlette, fake_wechat: FakeWechat
) -> None:
    fake_wechat.add_login("code-1", "openid-1")
    async with wx_app.router.lifespan_context(wx_app):
        wechat = wx_app.state.services.wechat
        await wechat.code_to_session("code-1")
        kept = list(wechat.http._idle)
        assert len(kept) == 1 and not kept[0].closed
    assert kept[0].closed and kept[0].transport is not None and kept[0].transport.is_closing()
    assert wechat.http._idle == []
