"""Workload C, whisper delivery: sendWhisper over HTTP → `whisperReceived` on open websockets.

    .venv/bin/python -m bench.delivery [--sockets 1000] [--duration 10] [--rate 100]
    .venv/bin/python -m bench.delivery --production [--wechat-check-ms 30]

Steps: recreate the database `qq_bench_delivery`, `qiaoqiao migrate`, `qiaoqiao seed-demo`
(recipients + senders). Then per setup — 2 uvicorn processes (the issue's setup: sockets split
half/half, sends alternating between them, events crossing through PostgreSQL LISTEN/NOTIFY),
then 1 process (the peer) — start the servers on free 127.0.0.1 ports, log everyone in, open
one subscribed websocket per recipient, send whispers at a fixed rate for a fixed time, wait
for stragglers, stop the servers. Prints a table and writes it as Markdown to
bench/results/delivery-<date>-<time>.md. See bench/README.md.

`--production`: the servers run as production does (APP_ENV=production, WeChat configured, so
every whisper passes WeChat's content check and logins go through `jscode2session`), against
bench/fake_wechat.py in a process of its own, whose content check answers after
`--wechat-check-ms`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import httpx

from bench import delivery_report as report
from bench.commit_probe import CommitProbe
from bench.delivery_load import (
    Send,
    SendPlan,
    Socket,
    close_sockets,
    login_all,
    open_sockets,
    send_load,
)
from bench.harness import (
    ROOT,
    BenchError,
    Server,
    cpu_seconds,
    free_port,
    machine_busy,
    postgres_cpu_seconds,
    recreate_database,
    rss_kb,
    running,
    venv_bin,
    wait_answer,
    wait_idle,
)

DB_NAME = "qq_bench_delivery"
DATABASE_URL = f"postgresql://postgres@127.0.0.1:5432/{DB_NAME}"
# The benchmark sends far more than a person may: lift the limits, for its servers only.
RATE_LIMITS = {"login:ip": [100000, 60], "whisper:user": [100000, 60]}
QUOTA_LIMITS = {
    "BASIC": {"WHISPER": 100000, "SWIPE": 50, "AI_REQUEST": 20, "DISCOVERY": 30},
    "PRO": {"WHISPER": 100000, "SWIPE": 500, "AI_REQUEST": 200, "DISCOVERY": 300},
}
HEALTH = b'{"query": "{ health }"}'


def server_env(wechat_url: str | None = None) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": DATABASE_URL,
        "APP_ENV": "development",
        "LOG_LEVEL": "WARNING",
        "RATE_LIMITS": json.dumps(RATE_LIMITS),
        "QUOTA_LIMITS": json.dumps(QUOTA_LIMITS),
        # Not measured here: the seeded users would be embedded (minutes of CPU) under load.
        "VECTOR_WORKER": "false",
    }
    if wechat_url is not None:
        env.update(production_env(wechat_url))
    return env


def production_env(wechat_url: str) -> dict[str, str]:
    """What production must be given to start, pointing WeChat at the fake. The SMS and
    storage settings are never used by a whisper; they only satisfy production's checks."""
    return {
        "APP_ENV": "production",
        "SECRET_KEY": "bench-" + "k" * 40,
        "WECHAT_APP_ID": "wx-bench",
        "WECHAT_APP_SECRET": "bench-secret",
        "WECHAT_API_BASE": wechat_url,
        "SMS_PROVIDER": "tencent",
        "TENCENT_SECRET_ID": "bench",
        "TENCENT_SECRET_KEY": "bench",
        "TENCENT_SMS_APP_ID": "1",
        "TENCENT_SMS_SIGN_NAME": "bench",
        "TENCENT_SMS_TEMPLATE_ID": "1",
        "PUBLIC_BASE_URL": "https://bench.invalid",
    }


def fake_wechat_argv(port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.fake_wechat:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]


def qiaoqiao(*args: str) -> None:
    done = subprocess.run(
        [venv_bin("qiaoqiao"), *args],
        cwd=ROOT,
        env=server_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"qiaoqiao {' '.join(args)} failed:\n{done.stderr[-3000:]}")


def prepare_database(users: int) -> str:
    """Fresh database, migrated and seeded with `users` demo users; the PostgreSQL version."""
    version = asyncio.run(recreate_database(DB_NAME))
    print(f"database {DB_NAME}: migrate, seed-demo --users {users} --seed 1", flush=True)
    qiaoqiao("migrate")
    qiaoqiao("seed-demo", "--users", str(users), "--seed", "1")
    return version


def uvicorn_argv(port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "src.app:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]


def recipient_names(n: int) -> list[str]:
    return [f"demo-{i:06d}" for i in range(n)]


def sender_names(n: int, senders: int) -> list[str]:
    return [f"demo-{i:06d}" for i in range(n, n + senders)]


Cpu = tuple[list[float], float, float, tuple[float, float, float]]


def _cpu_now(pids: list[int]) -> Cpu:
    return (
        [cpu_seconds(p) for p in pids],
        cpu_seconds(os.getpid()),
        postgres_cpu_seconds(),
        machine_busy(),
    )


def _cpu_shares(pids: list[int], began: Cpu, wall: float) -> dict[str, float]:
    """Share of one core each server, this load generator, PostgreSQL, the hypervisor (CPU
    time stolen for other VMs) and the rest used."""
    servers0, own0, pg0, (busy0, _, stolen0) = began
    shares = {
        f"server {i}": (cpu_seconds(p) - c) / wall
        for i, (p, c) in enumerate(zip(pids, servers0, strict=True))
    }
    shares["load generator"] = (cpu_seconds(os.getpid()) - own0) / wall
    busy_now, _, stolen_now = machine_busy()
    busy = (busy_now - busy0) / wall
    shares["PostgreSQL"] = (postgres_cpu_seconds() - pg0) / wall
    shares["stolen by the hypervisor"] = (stolen_now - stolen0) / wall
    shares["anything else"] = max(0.0, busy - sum(shares.values()))
    shares[f"whole machine ({os.cpu_count()} cores)"] = busy
    return shares


async def drive(
    setup: report.Setup,
    urls: list[str],
    pids: list[int],
    args: argparse.Namespace,
    tag: str,
    probe: CommitProbe,
) -> None:
    """Log in, open the sockets, send, wait, close; fill `setup`. `probe` samples PostgreSQL's
    durable COMMITs from the warm-up to the end of the timed sends."""
    n = args.sockets
    accounts = await login_all(urls, recipient_names(n) + sender_names(n, args.senders))
    print(f"  logged in {len(accounts)} users", flush=True)
    socks = [Socket(i, acc, i % len(urls)) for i, acc in enumerate(accounts[:n])]
    await asyncio.to_thread(wait_idle, pids)
    before = [rss_kb(p) for p in pids]
    began = time.perf_counter()
    ws_urls = [_ws_url(u) for u in urls]
    listeners = await open_sockets(socks, ws_urls, args.open_concurrency, args.deflate)
    try:
        setup.open_wall_s = time.perf_counter() - began
        opened = [s for s in socks if s.ws is not None]
        setup.opened = len(opened)
        setup.open_failures = Counter(s.failure.split(":", 1)[0] for s in socks if s.failure)
        times = [s.opened_s * 1000 for s in opened]
        setup.open_p50_ms = statistics.median(times) if times else 0.0
        setup.open_max_ms = max(times, default=0.0)
        print(f"  {len(opened)}/{n} sockets subscribed in {setup.open_wall_s:.1f} s", flush=True)
        if not opened:
            raise BenchError(f"no socket opened: {dict(setup.open_failures)}")
        # Subscriptions start after `subscribe` with a read of their own: let them all finish.
        await asyncio.to_thread(wait_idle, pids)
        await asyncio.sleep(args.settle)
        setup.rss_kb = [
            (b, rss_kb(p), sum(1 for s in opened if s.server == i))
            for i, (p, b) in enumerate(zip(pids, before, strict=True))
        ]
        warm_sends: list[Send] = []
        probe.start()
        if args.warmup > 0:
            # New connections, first statements on each pooled connection, first events on
            # each socket: a fresh server's first second is not its steady state.
            print(f"  warm-up: {args.rate:g}/s for {args.warmup:g} s (not timed)", flush=True)
            warm = SendPlan(f"{tag}w", args.rate, args.warmup, opened, accounts[n:], seed=-1)
            warm_sends = await send_load(warm, urls, args.connections)
            await asyncio.sleep(args.settle)
        plan = SendPlan(tag, args.rate, args.duration, opened, accounts[n:], seed=args.seed)
        cpu0 = _cpu_now(pids)
        t0 = time.perf_counter()
        print(f"  sending {args.rate:g}/s for {args.duration:g} s", flush=True)
        sends = await send_load(plan, urls, args.connections)
        setup.send_wall_s = time.perf_counter() - t0
        setup.cpu = _cpu_shares(pids, cpu0, setup.send_wall_s)
        await asyncio.to_thread(probe.stop)
        setup.probe = probe.samples
        await asyncio.sleep(args.wait)
    finally:
        await asyncio.to_thread(probe.stop)
        await close_sockets(socks, listeners)
    report.analyze(setup, tag, socks, sends, other_phase=f"{tag}w")
    if args.warmup > 0:
        setup.warmup = report.Setup(setup.processes, sockets=setup.sockets)
        report.analyze(setup.warmup, f"{tag}w", socks, warm_sends, other_phase=tag)


def run_setup(processes: int, args: argparse.Namespace, logs: Path, tag: str) -> report.Setup:
    setup = report.Setup(processes, sockets=args.sockets)
    print(f"== {setup.name}", flush=True)
    servers: list[Server] = []
    try:
        with contextlib.ExitStack() as stack:
            wechat_url = None
            if args.production:
                port = free_port()
                env = {**os.environ, "FAKE_WECHAT_CHECK_MS": f"{args.wechat_check_ms:g}"}
                log = logs / f"{tag}-wechat.log"
                fake = stack.enter_context(running("fake WeChat", fake_wechat_argv(port), env, log))
                wechat_url = f"http://127.0.0.1:{port}"
                wait_get(fake, f"{wechat_url}/stats")
                print(f"  fake WeChat: pid {fake.proc.pid}, port {port}", flush=True)
            ports = []
            for i in range(processes):
                port = free_port()
                log = logs / f"{tag}-server{i}.log"
                server = stack.enter_context(
                    running(f"server {i}", uvicorn_argv(port), server_env(wechat_url), log)
                )
                servers.append(server)
                ports.append(port)
                print(f"  server {i}: pid {server.proc.pid}, port {port}", flush=True)
            for server, port in zip(servers, ports, strict=True):
                url = f"http://127.0.0.1:{port}/graphql"
                resp = wait_answer(server, url, HEALTH, {"content-type": "application/json"})
                if resp.status_code != 200 or b"errors" in resp.content:
                    raise BenchError(f"{server.name}: {{ health }} answered {resp.text[:300]}")
            pids = [s.proc.pid for s in servers]
            runner = _runner()
            with runner:
                runner.run(
                    drive(
                        setup,
                        [f"http://127.0.0.1:{p}/graphql" for p in ports],
                        pids,
                        args,
                        tag,
                        CommitProbe(DATABASE_URL, logs / f"{tag}-commit-probe.json"),
                    )
                )
            dead = [s for s in servers if not s.alive()]
            if dead:
                raise BenchError(f"{dead[0].name} died during the run:\n{dead[0].log_tail()}")
            if wechat_url is not None:
                checks = httpx.get(f"{wechat_url}/stats").json()["checks"]
                setup.notes.append(f"WeChat content checks answered: {checks}")
                print(f"  {setup.notes[-1]}", flush=True)
    except (BenchError, httpx.HTTPError, OSError, subprocess.SubprocessError) as exc:
        logs_text = "\n".join(f"--- {s.name} log ---\n{s.log_tail()}" for s in servers)
        setup.failure = f"{type(exc).__name__}: {exc}\n{logs_text}"
        print(f"  FAILED: {exc}", flush=True)
    return setup


def wait_get(server: Server, url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if not server.alive():
            raise BenchError(f"{server.name} exited:\n{server.log_tail()}")
        try:
            httpx.get(url, timeout=2.0).raise_for_status()
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise BenchError(f"{server.name} did not answer {url}") from None
            time.sleep(0.2)


def _runner() -> asyncio.Runner:
    """An event loop for the load generator: uvloop when installed (it is, with uvicorn)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.Runner()
    return asyncio.Runner(loop_factory=uvloop.new_event_loop)


def _ws_url(url: str) -> str:
    return url.replace("http://", "ws://", 1)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.delivery", description=__doc__)
    add = parser.add_argument
    add("--sockets", type=int, default=1000, help="recipients, one websocket each (1000)")
    add("--duration", type=float, default=10, help="seconds of sending (10)")
    add("--rate", type=float, default=100, help="whispers per second (100)")
    add("--senders", type=int, default=20, help="users sending the whispers (20)")
    add("--wait", type=float, default=3, help="seconds to wait for stragglers (3)")
    add("--settle", type=float, default=1, help="seconds between subscribing and sending (1)")
    add("--warmup", type=float, default=2, help="seconds of untimed sends before timing (2)")
    add("--connections", type=int, default=32, help="HTTP connections per server (32)")
    add("--open-concurrency", type=int, default=50, help="websocket handshakes at once (50)")
    add("--setups", default="2,1", help="server processes per setup, in order (2,1)")
    add("--deflate", action="store_true", help="negotiate permessage-deflate on the sockets")
    add("--seed", type=int, default=1, help="random seed for recipients (1)")
    add("--production", action="store_true", help="production settings, WeChat's content check")
    add("--wechat-check-ms", type=float, default=30, help="the fake content check's delay (30)")
    args = parser.parse_args(argv)
    try:
        args.setups = [int(p) for p in args.setups.split(",")]
    except ValueError:
        parser.error("--setups takes numbers of processes, e.g. 2,1")
    if args.sockets < 1 or args.senders < 1 or args.rate <= 0 or args.duration <= 0:
        parser.error("--sockets, --senders, --rate and --duration must be positive")
    if args.warmup < 0:
        parser.error("--warmup cannot be negative")
    if any(p < 1 for p in args.setups):
        parser.error("a setup needs at least one process")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = datetime.now()
    loadavg = os.getloadavg()  # other work on this machine skews every figure: note it
    try:
        postgres = prepare_database(args.sockets + args.senders)
    except (BenchError, OSError) as exc:
        print(f"bench.delivery: {exc}", file=sys.stderr)
        return 1
    setups = []
    with tempfile.TemporaryDirectory(prefix="bench-delivery-") as tmp:
        for processes in args.setups:
            tag = f"{started:%H%M%S}-{processes}p"
            setups.append(run_setup(processes, args, Path(tmp), tag))
    command = "python -m bench.delivery " + " ".join(sys.argv[1:] if argv is None else argv)
    print()
    print(report.console_table(setups))
    for line in report.verdicts(setups):
        print(line)
    for line in report.warnings(setups):
        print(f"warning: {line}")
    path = report.write_markdown(setups, args, started, command.strip(), postgres, loadavg)
    print(f"\nwritten to {path.relative_to(ROOT)}")
    return 0 if all(not s.failure for s in setups) else 2


if __name__ == "__main__":
    sys.exit(main())
