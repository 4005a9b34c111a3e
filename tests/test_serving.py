"""A server process as `qiaoqiao serve` runs it (SECURITY.md 34, 36): the client IP is the
socket peer whatever headers say; no endpoint buffers more than its limit; slow clients are cut."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import httpx
import pytest

from src.config import Settings
from tests.helpers import LOGIN, GraphQLClient
from tests.served import Served, served

MB = 1024 * 1024


async def test_rotating_x_forwarded_for_does_not_lift_the_login_limit(
    settings: Settings, tmp_path: Path
) -> None:
    """login:ip allows 30 an hour here; 35 logins, each claiming another forwarded IP."""
    # Limits count in fixed windows (floor(now / length)): 35 logins split across two windows
    # would each stay under 30. The default minute was crossed now and then under load; an
    # hour's window is crossed only near its end, which the test waits out.
    if (left := 3600 - time.time() % 3600) < 120:
        await asyncio.sleep(left + 0.05)
    async with (
        served(settings, tmp_path / "serve.log", RATE_LIMITS='{"login:ip": [30, 3600]}') as server,
        httpx.AsyncClient(base_url=server.url, timeout=10) as http,
    ):
        gql = GraphQLClient(http)
        codes = []
        for i in range(35):
            response = await gql(
                LOGIN,
                {"code": f"dev:xff{i}"},
                headers={"x-forwarded-for": f"198.51.100.{i}", "x-real-ip": f"203.0.113.{i}"},
            )
            errors = response.data["wechatLogin"]["errors"] if response.data else response.errors
            codes.append(errors[0]["code"] if errors else "OK")
    assert codes.count("OK") == 30, codes
    assert codes[30:] == ["RATE_LIMITED"] * 5


async def _send_chunked(server: Served, path: str, total: int) -> tuple[bytes, int]:
    """POST `total` bytes in 1 MB chunks (no Content-Length: the server learns the size only
    by reading); returns what the server answered and how much it took before closing."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(
        f"POST {path} HTTP/1.1\r\nhost: {server.host}\r\ncontent-type: application/json\r\n"
        "transfer-encoding: chunked\r\n\r\n".encode()
    )
    answer = asyncio.create_task(reader.read(65536))
    chunk = b"%x\r\n" % MB + b"{" * MB + b"\r\n"
    sent = 0
    with contextlib.suppress(ConnectionError):
        while sent < total and not answer.done():
            writer.write(chunk)
            await writer.drain()
            sent += MB
    try:
        data = await asyncio.wait_for(answer, 10)
    except (ConnectionError, TimeoutError):
        data = b""
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()
    return data, sent


async def test_a_300_mb_notification_is_refused_without_growing_memory(
    settings: Settings, tmp_path: Path
) -> None:
    async with served(settings, tmp_path / "serve.log") as server:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        writer.write(
            b"POST /pay/notify HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n" % (300 * MB)
        )
        declared = await asyncio.wait_for(reader.read(65536), 5)
        writer.close()
        before = server.rss_bytes()
        peak = before
        sampling = True

        async def sample() -> None:
            nonlocal peak
            while sampling:
                peak = max(peak, server.rss_bytes())
                await asyncio.sleep(0.02)

        sampler = asyncio.create_task(sample())
        data, sent = await _send_chunked(server, "/pay/notify", 300 * MB)
        await asyncio.sleep(0.3)
        sampling = False
        await sampler
        peak = max(peak, server.rss_bytes())
    assert declared.startswith(b"HTTP/1.1 413"), declared[:100]
    # The answer may be lost to the reset of a connection closed mid-upload: the log has it.
    assert data.startswith(b"HTTP/1.1 413") or not data, data[:100]
    assert "POST /pay/notify 413" in server.log.read_text()
    assert sent < 300 * MB, "the server read the whole body"
    assert peak - before < 10 * MB, (before, peak)


@pytest.mark.parametrize(
    ("path", "limit"),
    [
        ("/pay/notify", 64 * 1024),
        ("/wechat/callback", 64 * 1024),
        ("/mcp", 1 * MB),
        ("/graphql", 1 * MB),
        ("/proofs/x", 64 * 1024),
        ("/health", 64 * 1024),
    ],
)
async def test_every_endpoint_reads_at_most_its_limit(
    http: httpx.AsyncClient, path: str, limit: int
) -> None:
    """Declared too large: 413 at once. Streamed (no Content-Length): refused once the limit is
    passed, or before reading (no token, a GET-only route); never read to the end."""
    chunk = 16 * 1024
    pulled = 0

    async def stream() -> object:
        nonlocal pulled
        for _ in range(4 * limit // chunk):
            pulled += chunk
            yield b"{" * chunk

    json = {"content-type": "application/json"}
    declared = await http.post(path, content=b"{" * (limit + 1), headers=json)
    streamed = await http.post(path, content=stream(), headers=json)
    assert declared.status_code == 413
    assert declared.headers["connection"] == "close"
    assert 400 <= streamed.status_code < 500
    assert pulled <= limit + 2 * chunk, pulled


async def _closed_within(
    server: Served, seconds: float, dribble: bytes, every: float, first: bytes = b""
) -> tuple[float, bytes]:
    """Open a connection, send `first`, then `dribble` one byte every `every` seconds; the
    time until the server closes it (`seconds` when it does not) and what it answered."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    started = time.perf_counter()
    writer.write(first)

    async def drip() -> None:
        with contextlib.suppress(ConnectionError):
            for byte in dribble:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(every)

    dripping = asyncio.create_task(drip())
    data = b""
    try:
        async with asyncio.timeout(seconds):
            while chunk := await reader.read(4096):
                data += chunk
    except TimeoutError:
        return seconds, data
    except ConnectionError:
        pass
    finally:
        dripping.cancel()
        writer.close()
    return time.perf_counter() - started, data


async def test_slow_clients_are_cut(settings: Settings, tmp_path: Path) -> None:
    """Header timeout 1 s, body 2 s (no pause over 1 s), keep-alive 1 s."""
    timeouts = {
        "HTTP_HEADER_TIMEOUT_S": "1",
        "HTTP_BODY_TIMEOUT_S": "2",
        "HTTP_KEEPALIVE_TIMEOUT_S": "1",
    }
    headers = b"GET /health HTTP/1.1\r\nhost: x\r\n" + b"x-slow: " + b"a" * 100 + b"\r\n\r\n"
    post = b"POST /pay/notify HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n"
    async with served(settings, tmp_path / "serve.log", **timeouts) as server:
        cases = {
            "silent": _closed_within(server, 5, b"", 1),
            "slowloris": _closed_within(server, 5, headers, 0.1),
            "slow body": _closed_within(server, 5, b" " * 100, 0.05, first=post),
            "pause": _closed_within(server, 5, b"", 0, first=post + b"{"),
            "kept alive": _closed_within(server, 5, b"", 0, first=headers),
        }
        running = {name: asyncio.create_task(case) for name, case in cases.items()}
        async with httpx.AsyncClient(base_url=server.url) as http:
            answered = await http.get("/health")  # a normal client meanwhile
            started = time.perf_counter()
            await asyncio.sleep(2)
            again = await http.get("/health")
        results = {name: await task for name, task in running.items()}
    took = {name: round(seconds, 2) for name, (seconds, _) in results.items()}
    assert answered.status_code == again.status_code == 200
    assert time.perf_counter() - started > 1
    assert 0.8 < took["silent"] < 2, took
    assert 0.8 < took["slowloris"] < 2, took  # headers half sent after 1 s
    assert 1.8 < took["slow body"] < 3.5, took  # one byte every 50 ms: 2 s, then 408
    assert 0.8 < took["pause"] < 2.5, took  # no byte for 1 s: 408
    assert 0.8 < took["kept alive"] < 2, took  # answered, then idle for 1 s
    assert results["kept alive"][1].startswith(b"HTTP/1.1 200")
    for name in ("slow body", "pause"):
        assert results[name][1].startswith(b"HTTP/1.1 408"), results[name][1][:100]
