"""What the `qiaoqiao` command needs besides its commands: help that shows defaults, one-line
messages for the failures a person can fix, and a progress bar."""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import traceback
from collections.abc import Iterator
from importlib import metadata
from typing import TextIO

from sqlalchemy.engine import make_url


class CliFailure(Exception):
    """An expected failure: its message says what happened and what to do."""


class HelpFormatter(argparse.HelpFormatter):
    """Every option's help ends with its default (when it has one worth showing)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "%(default)" in text or action.default in (None, False, argparse.SUPPRESS):
            return text
        if action.option_strings or action.nargs in ("?", "*"):
            text += " (default: %(default)s)"
        return text


class TopHelpFormatter(HelpFormatter, argparse.RawDescriptionHelpFormatter):
    """The same, keeping the top-level description's paragraphs as written."""


def version() -> str:
    try:
        return metadata.version("qiaoqiao")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def show_url(url: str) -> str:
    """A database URL without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # a URL we cannot parse is shown as nothing rather than leaked
        return "(unparsable URL)"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _while_connecting(exc: BaseException) -> bool:
    """Raised on asyncpg's way to a connection (not by a statement on an open one)."""
    frames = traceback.extract_tb(exc.__traceback__)
    return any("asyncpg" in f.filename and f.filename.endswith("connect_utils.py") for f in frames)


def connect_reason(exc: BaseException) -> str:
    import asyncpg

    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is PostgreSQL running there?)"
    if isinstance(exc, socket.gaierror):
        return "the host name does not resolve"
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "no answer in time"
    if isinstance(exc, asyncpg.InvalidPasswordError):
        return "the password is wrong"
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return "that database does not exist (create it first)"
    if isinstance(exc, asyncpg.InvalidAuthorizationSpecificationError):
        return "that role does not exist or may not log in"
    if isinstance(exc, asyncpg.PostgresError):
        return str(exc).splitlines()[0]
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return type(exc).__name__


def explain(exc: BaseException, database_url: str | None) -> str | None:
    """The one-line message for an expected failure anywhere in `exc`'s chain, else None."""
    from src.ai.vector_store import VectorIndexLocked

    for found in _chain(exc):
        if isinstance(found, CliFailure):
            return str(found)
        if isinstance(found, VectorIndexLocked):
            return (
                f"the vector index in {found.path} is open in another process (a running"
                " `qiaoqiao serve`?): stop that process first, or use a Qdrant server"
                " (QDRANT_URL), which many processes share"
            )
    connecting = [found for found in _chain(exc) if _while_connecting(found)]
    if connecting:
        where = show_url(database_url) if database_url else "(unknown)"
        return (
            f"cannot connect to the database at {where}: {connect_reason(connecting[-1])}."
            " Check DATABASE_URL (unset, the embedded PostgreSQL under DATA_DIR is used)"
        )
    return None


class ProgressBar:
    """`[#####.....]  50% quantizing` on one line of a terminal, redrawn in place; where
    `stream` is not a terminal, nothing (the log says when the step starts and ends)."""

    def __init__(self, stream: TextIO | None = None, *, width: int = 30, force: bool = False):
        self.stream = stream or sys.stderr
        self.width = width
        self.enabled = force or self.stream.isatty()
        self._last: tuple[int, str] | None = None

    def __call__(self, fraction: float, label: str) -> None:
        if not self.enabled:
            return
        percent = max(0, min(100, round(fraction * 100)))
        if (percent, label) == self._last:
            return
        self._last = (percent, label)
        filled = self.width * percent // 100
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(f"\r[{bar}] {percent:3d}% {label:<24}")
        if percent == 100:
            self.stream.write("\n")
        self.stream.flush()
