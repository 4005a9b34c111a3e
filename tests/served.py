"""`qiaoqiao serve` in a process of its own, on the test's database: for what only a real server
process shows (its uvicorn options, its memory, a blocked event loop that an in-process server
would share with the test)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from src.config import Settings
from tests.helpers import free_port

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Served:
    url: str
    host: str
    port: int
    pid: int
    log: Path

    def rss_bytes(self) -> int:
        """The server process's resident memory now."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")


@contextlib.asynccontextmanager
async def served(settings: Settings, log: Path, **env: str) -> AsyncIterator[Served]:
    """Serve `settings`' database with `qiaoqiao serve` (environment overrides in `env`, e.g.
    HTTP_HEADER_TIMEOUT_S="1"); stop it with SIGTERM, or SIGKILL when it does not listen."""
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if k not in ("APP_ENV", "DATABASE_URL")}
    environ.update(
        DATABASE_URL=settings.database_url.get_secret_value() if settings.database_url else "",
        DATA_DIR=str(settings.data_dir),
        MODEL_DIR=str(settings.model_dir),
        VECTOR_WORKER="false",
        **env,
    )
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            *[sys.executable, "-m", "src.cli", "serve", "--port", str(port)],
            env=environ,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=out,
        )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(600):
                if proc.returncode is not None:
                    raise RuntimeError(f"serve exited; its log is {log}")
                try:
                    if (await client.get("/health", timeout=1)).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise TimeoutError("serve did not answer")
        yield Served(f"http://127.0.0.1:{port}", "127.0.0.1", port, proc.pid, log)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:  # a frozen event loop ignores SIGTERM (issue 16, C1)
                proc.kill()
                await proc.wait()
