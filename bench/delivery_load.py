"""The load generator of bench.delivery: logins, subscribed websockets, paced whisper sends.

One asyncio process drives everything. The hot paths stay small: a socket only stamps the
arrival time (time.time_ns) and keeps the raw message; the sender only stamps, POSTs and keeps
the answer. Matching receipts to sends happens afterwards, in bench.delivery_report.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.typing import Subprotocol

from bench.harness import BenchError
from bench.http_post import PostClient

LOGIN = (
    "mutation ($code: String!) "
    "{ wechatLogin(code: $code) { accessToken me { id } errors { code } } }"
)
SEND = (
    "mutation ($input: SendWhisperInput!) "
    "{ sendWhisper(input: $input) { whisper { id } errors { code message } } }"
)
SUBSCRIBE = "subscription { whisperReceived { id content } }"
PROTOCOL = Subprotocol("graphql-transport-ws")


@dataclass
class Account:
    name: str
    token: str
    user_id: str


@dataclass
class Send:
    """One whisper as the sender saw it."""

    seq: int
    recipient: int  # Socket.index of the recipient
    server: int  # index of the server the POST went to
    sent_ns: int  # time.time_ns() just before the POST (also written into the content)
    done_ns: int = 0  # when the HTTP answer was read
    whisper_id: str | None = None
    error: str | None = None


@dataclass
class Socket:
    """One subscribed websocket of one recipient, and everything it heard."""

    index: int
    account: Account
    server: int
    ws: ClientConnection | None = None
    opened_s: float = 0.0  # connect + init/ack + subscribe, seconds
    failure: str | None = None
    received: list[tuple[int, bytes | str]] = field(default_factory=list)  # (time_ns, raw)
    events: list[str] = field(default_factory=list)  # errors, completes, closes, odd messages
    text_frames: int = 0
    binary_frames: int = 0


def content_of(tag: str, seq: int, sent_ns: int) -> str:
    return f"bench {tag} seq={seq} t={sent_ns}"


def parse_content(content: str) -> tuple[str, int, int] | None:
    """(tag, seq, sent_ns) of a whisper this benchmark wrote, else None."""
    parts = content.split()
    if len(parts) != 4 or parts[0] != "bench":
        return None
    try:
        return parts[1], int(parts[2].removeprefix("seq=")), int(parts[3].removeprefix("t="))
    except ValueError:
        return None


async def _post(client: httpx.AsyncClient, url: str, query: str, variables: dict) -> dict:
    resp = await client.post(url, json={"query": query, "variables": variables})
    if resp.status_code != 200:
        raise BenchError(f"HTTP {resp.status_code}: {resp.text[:300]}")
    return resp.json()


async def login_all(urls: list[str], names: list[str], concurrency: int = 16) -> list[Account]:
    """Log every name in with `dev:<name>`, spread over the servers; fails on the first error."""
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=30, limits=limits, trust_env=False) as client:

        async def one(i: int, name: str) -> Account:
            async with gate:
                doc = await _post(client, urls[i % len(urls)], LOGIN, {"code": f"dev:{name}"})
            login = (doc.get("data") or {}).get("wechatLogin") or {}
            if doc.get("errors") or login.get("errors") or not login.get("accessToken"):
                raise BenchError(f"login of {name} failed: {orjson.dumps(doc).decode()[:300]}")
            return Account(name, login["accessToken"], login["me"]["id"])

        return list(await asyncio.gather(*(one(i, n) for i, n in enumerate(names))))


async def _handshake(sock: Socket, url: str, deflate: bool) -> None:
    ws = await connect(
        url,
        subprotocols=[PROTOCOL],
        compression="deflate" if deflate else None,
        proxy=None,
        ping_interval=None,  # the server's own pings are answered by the library
        open_timeout=30,
        max_queue=None,
    )
    sock.ws = ws
    init = {"type": "connection_init", "payload": {"authorization": f"Bearer {sock.account.token}"}}
    await ws.send(orjson.dumps(init).decode())
    raw = await asyncio.wait_for(ws.recv(), 30)
    if isinstance(raw, bytes):
        sock.binary_frames += 1
    else:
        sock.text_frames += 1
    ack = orjson.loads(raw)
    if ack.get("type") != "connection_ack":
        raise BenchError(f"expected connection_ack, got {ack}")
    sub = {"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE}}
    await ws.send(orjson.dumps(sub).decode())


async def _listen(sock: Socket) -> None:
    """Stamp every `next`; answer pings; note anything else. Ends when the socket closes."""
    ws = sock.ws
    assert ws is not None
    received = sock.received
    try:
        async for raw in ws:
            now = time.time_ns()
            # graphql-transport-ws messages are JSON text; count what the server really sends.
            if isinstance(raw, bytes):
                sock.binary_frames += 1
                is_next = b'"next"' in raw
            else:
                sock.text_frames += 1
                is_next = '"next"' in raw
            if is_next:  # parsed later, off the hot path
                received.append((now, raw))
                continue
            try:
                msg = orjson.loads(raw)
                kind = msg.get("type")
            except (orjson.JSONDecodeError, AttributeError):
                sock.events.append(f"unparsable: {raw[:200]!r}")
                continue
            if kind == "ping":
                await ws.send('{"type":"pong"}')
            elif kind != "pong":
                sock.events.append(f"{kind}: {str(msg.get('payload'))[:200]}")
    except ConnectionClosed as exc:
        if exc.rcvd is not None and exc.rcvd.code != 1000:
            sock.events.append(f"closed by server: {exc.rcvd.code} {exc.rcvd.reason}")


async def open_sockets(
    socks: list[Socket], urls: list[str], concurrency: int, deflate: bool
) -> list[asyncio.Task[None]]:
    """Connect, authenticate and subscribe every socket (`concurrency` handshakes at a time);
    returns the listener tasks of those that opened. Failures are kept on the socket."""
    gate = asyncio.Semaphore(concurrency)
    listeners: list[asyncio.Task[None]] = []

    async def one(sock: Socket) -> None:
        async with gate:
            began = time.perf_counter()
            try:
                await _handshake(sock, urls[sock.server], deflate)
            except (OSError, TimeoutError, WebSocketException, BenchError, ValueError) as exc:
                sock.failure = f"{type(exc).__name__}: {exc}"[:300]
                if sock.ws is not None:
                    await sock.ws.close()
                    sock.ws = None
                return
            sock.opened_s = time.perf_counter() - began
        listeners.append(asyncio.create_task(_listen(sock)))

    await asyncio.gather(*(one(s) for s in socks))
    return listeners


async def close_sockets(socks: list[Socket], listeners: list[asyncio.Task[None]]) -> None:
    await asyncio.gather(*(s.ws.close() for s in socks if s.ws is not None), return_exceptions=True)
    _, pending = await asyncio.wait(listeners, timeout=15) if listeners else (set(), set())
    for task in pending:
        task.cancel()


@dataclass
class SendPlan:
    tag: str
    rate: float
    duration: float
    recipients: list[Socket]  # only sockets that opened
    senders: list[Account]
    seed: int = 1


async def send_load(plan: SendPlan, urls: list[str], max_connections: int) -> list[Send]:
    """Open-loop sends: whisper `seq` is due at start + seq/rate, whatever earlier ones do
    (a slow server delays the answers, never the schedule). Server `seq % len(urls)` gets it,
    over at most `max_connections` keep-alive connections per server (bench.http_post: httpx
    cost the generator ~3 ms of CPU per request); a send waiting for a connection has its
    clock running, so the wait is counted."""
    rng = random.Random(plan.seed)
    total = round(plan.rate * plan.duration)
    clients = [PostClient(url, max_connections) for url in urls]
    sends: list[Send] = []

    async def one(send: Send, token: str, recipient_id: str) -> None:
        send.sent_ns = time.time_ns()
        variables = {
            "input": {
                "recipientId": recipient_id,
                "content": content_of(plan.tag, send.seq, send.sent_ns),
                "anonymous": True,
            }
        }
        body = orjson.dumps({"query": SEND, "variables": variables})
        try:
            status, answer = await clients[send.server].post(
                body, {"Authorization": f"Bearer {token}"}
            )
            if status != 200:
                raise BenchError(f"HTTP {status}: {answer[:300]!r}")
            doc = orjson.loads(answer)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, BenchError, ValueError) as exc:
            send.error = f"{type(exc).__name__}: {exc}"[:200]
            return
        finally:
            send.done_ns = time.time_ns()
        payload = (doc.get("data") or {}).get("sendWhisper") or {}
        if doc.get("errors") or payload.get("errors") or not payload.get("whisper"):
            errors = doc.get("errors") or payload.get("errors")
            send.error = orjson.dumps(errors).decode()[:200]
        else:
            send.whisper_id = payload["whisper"]["id"]

    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05
    tasks = []
    try:
        for seq in range(total):
            delay = start + seq / plan.rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            sender = plan.senders[seq % len(plan.senders)]
            target = plan.recipients[rng.randrange(len(plan.recipients))]
            send = Send(seq, target.index, seq % len(urls), 0)
            sends.append(send)
            tasks.append(asyncio.create_task(one(send, sender.token, target.account.user_id)))
        await asyncio.gather(*tasks)
    finally:
        for client in clients:
            await client.aclose()
    return sends
