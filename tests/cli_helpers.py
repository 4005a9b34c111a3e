"""Running `qiaoqiao` as a person does: a child process, its own environment, its own
working directory (so no `.env` of the checkout is read)."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from src.config import Settings

# Every variable the settings read: the test runner's own are dropped, so each test says
# exactly what the command sees.
SETTINGS_VARIABLES = {name.upper() for name in Settings.model_fields}


def cli_env(**variables: str | Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.upper() not in SETTINGS_VARIABLES}
    env["GC_TUNING"] = "false"
    env.update({name: str(value) for name, value in variables.items()})
    return env


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


async def run_cli(*args: str, env: dict[str, str], cwd: Path, limit_s: float = 120) -> Run:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "src.cli",
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), limit_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return Run(proc.returncode, out.decode(), err.decode())
