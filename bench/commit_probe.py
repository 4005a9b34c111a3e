"""How long a durable COMMIT takes on this PostgreSQL, sampled beside a load.

    .venv/bin/python -m bench.commit_probe <dsn> <out.json> [--every-ms 20]

Every sendWhisper commits durably: its COMMIT waits for PostgreSQL's WAL flush. When the disk
holds flushes back (suspected, not yet caught, behind the rare delivery runs whose p99 jumps to
hundreds of ms; fdatasync takes ~0.1 ms here otherwise), every send in flight waits, whatever
the server does.
The probe commits one tiny transaction (`SELECT txid_current()` takes a transaction id, so its
COMMIT is flushed) every `--every-ms` on a connection of its own, in a process of its own (no
GIL shared with the load generator), until SIGTERM or SIGINT; then it writes
`[[started time_ns, milliseconds], ...]` to out.json. bench.delivery runs it during the timed
sends and says which slow deliveries were in flight while a probe COMMIT stalled.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg

STALL_MS = 20.0  # a probe COMMIT this slow is a stall: p50 0.3 ms, max < 10 ms when quiet


async def probe(dsn: str, every_s: float, stop: asyncio.Event) -> list[tuple[int, float]]:
    samples: list[tuple[int, float]] = []
    conn = await asyncpg.connect(dsn)
    try:
        while not stop.is_set():
            started_ns, t0 = time.time_ns(), time.perf_counter()
            await conn.fetchval("SELECT txid_current()")
            samples.append((started_ns, (time.perf_counter() - t0) * 1000))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every_s)
    finally:
        await conn.close()
    return samples


async def _main(dsn: str, every_s: float) -> list[tuple[int, float]]:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return await probe(dsn, every_s, stop)


class CommitProbe:
    """The probe in a subprocess, from `start()` to `stop()` (which may be called again);
    `samples` once stopped."""

    def __init__(self, dsn: str, out: Path, every_ms: float = 20.0):
        self.argv = [sys.executable, "-m", "bench.commit_probe", dsn, str(out)]
        self.argv += ["--every-ms", f"{every_ms:g}"]
        self.out = out
        self.samples: list[tuple[int, float]] = []
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._proc = subprocess.Popen(self.argv, cwd=Path(__file__).resolve().parent.parent)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            return
        if self.out.exists():
            self.samples = [(int(t), float(ms)) for t, ms in json.loads(self.out.read_text())]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.commit_probe", description=__doc__)
    parser.add_argument("dsn")
    parser.add_argument("out", type=Path)
    parser.add_argument("--every-ms", type=float, default=20.0)
    args = parser.parse_args(argv)
    samples = asyncio.run(_main(args.dsn, args.every_ms / 1000))
    args.out.write_text(json.dumps(samples))
    return 0


if __name__ == "__main__":
    sys.exit(main())
