"""Plumbing shared by the benchmarks: free ports, server processes, wrk, tools.

Every process started here is stopped by its PID (and, for servers that fork workers, by the
process group it leads), also when the benchmark fails half-way.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
LUA = BENCH / "post.lua"
NODE_DIR = BENCH / ".node"
NODE_PACKAGES = ["node@22", "postgraphile@5"]


class BenchError(RuntimeError):
    """A step failed in a way worth one readable line, not a traceback."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def venv_bin(name: str) -> str:
    """A console script of the interpreter running us (the project's .venv)."""
    return str(Path(sys.executable).parent / name)


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self) -> str:
        return _tail(self.log)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def stop(server: Server, grace: float = 10.0) -> None:
    """SIGTERM the server's PID, then its process group (forked workers); SIGKILL stragglers."""
    pid = server.proc.pid
    if server.alive():
        os.kill(pid, signal.SIGTERM)
        try:
            server.proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            server.proc.wait()
    # The process led its own group (start_new_session): anything left in it is ours.
    if _group_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while _group_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


@contextlib.contextmanager
def running(
    name: str, argv: list[str], env: dict[str, str], log: Path, cwd: Path = ROOT
) -> Iterator[Server]:
    """Start `argv` in its own session, logging to `log`; always stop it on exit."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        server = Server(name, proc, log)
        try:
            yield server
        finally:
            stop(server)


def wait_answer(
    server: Server, url: str, body: bytes, headers: dict[str, str], timeout: float = 90.0
) -> httpx.Response:
    """POST `body` until the server answers at all; fail early when the process died."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=10.0) as client:
        while True:
            if not server.alive():
                raise BenchError(
                    f"{server.name} exited with {server.proc.returncode}:\n{server.log_tail()}"
                )
            try:
                return client.post(url, content=body, headers=headers)
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise BenchError(
                        f"{server.name} did not answer within {timeout:.0f} s:\n{server.log_tail()}"
                    ) from None
                time.sleep(0.25)


@dataclass
class WrkResult:
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    detail: dict[str, int]
    output: str


def run_wrk(
    url: str,
    body: str,
    auth: str | None,
    duration: int,
    connections: int,
    threads: int = 2,
    *,
    script: Path = LUA,
    script_env: dict[str, str] | None = None,
) -> WrkResult:
    """Load `url` with wrk + post.lua (or `script`, given `script_env`); bad answers are
    counted by the script, not guessed."""
    env = {**os.environ, "BENCH_BODY": body, "BENCH_AUTH": auth or "", **(script_env or {})}
    argv = [
        "wrk",
        f"-t{min(threads, connections)}",
        f"-c{connections}",
        f"-d{duration}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    try:
        done = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=duration + 60, check=False
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"wrk did not finish within {duration + 60} s") from None
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH_RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    raw = json.loads(line.removeprefix("BENCH_RESULT "))
    detail = {k: raw[k] for k in ("non2xx", "gql_errors", "socket_errors", "timeouts")}
    return WrkResult(
        requests=raw["requests"],
        rps=raw["requests"] / (raw["duration_us"] / 1e6),
        p50_ms=raw["p50_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        errors=sum(detail.values()),
        detail=detail,
        output=done.stdout.replace(line, "").strip(),
    )


def ensure_wrk() -> str:
    """The wrk binary, installed with apt-get when missing."""
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk not found: apt-get install -y wrk", flush=True)
    install = ["apt-get", "install", "-y", "wrk"]
    if subprocess.run(install, check=False, stdout=subprocess.DEVNULL).returncode != 0:
        subprocess.run(["apt-get", "update"], check=False, stdout=subprocess.DEVNULL)
        subprocess.run(install, check=False, stdout=subprocess.DEVNULL)
    found = shutil.which("wrk")
    if not found:
        raise BenchError("wrk is missing and `apt-get install -y wrk` did not install it")
    return found


def ensure_postgraphile() -> tuple[str, str]:
    """(node 22 binary, postgraphile CLI script) under bench/.node, installed with npm."""
    node = NODE_DIR / "node_modules" / "node" / "bin" / "node"
    cli = NODE_DIR / "node_modules" / "postgraphile" / "dist" / "cli-run.js"
    if not (node.exists() and cli.exists()):
        npm = shutil.which("npm")
        if npm is None:
            raise BenchError("npm is not installed, so PostGraphile 5 and Node 22 cannot be")
        NODE_DIR.mkdir(exist_ok=True)
        print(f"installing {' '.join(NODE_PACKAGES)} into {NODE_DIR} ...", flush=True)
        done = subprocess.run(
            [npm, "install", "--prefix", str(NODE_DIR), "--no-audit", "--no-fund", *NODE_PACKAGES],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0 or not (node.exists() and cli.exists()):
            raise BenchError(f"npm install failed:\n{done.stderr[-2000:]}")
    version = subprocess.run(
        [str(node), "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    if not version.startswith("v") or int(version[1:].split(".")[0]) < 22:
        raise BenchError(f"{node} is {version or 'not runnable'}; PostGraphile 5 needs Node >= 22")
    return str(node), str(cli)


def tool_version(argv: list[str], cwd: Path = ROOT) -> str:
    """First line of a tool's version output, or '?'."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=20)
        if done.stdout.strip():  # `wrk -v` prints its version and exits 1
            return done.stdout.strip().splitlines()[0]
    return "?"


ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


async def recreate_database(name: str, admin_dsn: str = ADMIN_DSN) -> str:
    """Drop and create the database `name` (a benchmark's own); returns PostgreSQL's version."""
    import asyncpg  # only the benchmarks that need a database pay for the import

    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
        return await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()


def rss_kb(pid: int) -> int:
    """Resident memory of one process (VmRSS in /proc/PID/status), in kB; 0 when unknown."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time one process has used so far (/proc/PID/stat); 0.0 when unknown."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


def machine_busy() -> tuple[float, float, float]:
    """(busy, total, stolen) CPU seconds of the whole machine so far (/proc/stat), to diff
    later; stolen: time the hypervisor gave this VM's CPUs to someone else (in busy too)."""
    with contextlib.suppress(OSError, ValueError):
        ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
        steal = ticks[7] if len(ticks) > 7 else 0
        hz = os.sysconf("SC_CLK_TCK")
        return (sum(ticks) - idle) / hz, sum(ticks) / hz, steal / hz
    return 0.0, 0.0, 0.0


def wait_idle(
    pids: list[int], below: float = 0.05, window: float = 0.3, timeout: float = 20.0
) -> float:
    """Block until `pids` together use under `below` of one core over `window` seconds (or
    `timeout` passed); returns the seconds waited."""
    began = time.monotonic()
    while True:
        before = sum(cpu_seconds(pid) for pid in pids)
        time.sleep(window)
        used = sum(cpu_seconds(pid) for pid in pids) - before
        waited = time.monotonic() - began
        if used / window < below or waited >= timeout:
            return waited


def postgres_cpu_seconds() -> float:
    """CPU time used so far by the processes named `postgres` (server and backends) that are
    alive now; a backend that exits between two readings takes its share with it."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            text = stat.read_text()
            if text[text.index("(") + 1 : text.rindex(")")] == "postgres":
                total += cpu_seconds(int(stat.parent.name))
    return total
