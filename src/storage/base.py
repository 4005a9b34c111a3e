"""The storage interface and its local-folder implementation."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
from pathlib import Path
from typing import Protocol

# Keys are made by us (random, with the image type's extension): anything else is refused
# before it reaches a path or a URL, so no key can walk out of its folder.
_KEY = re.compile(r"^[A-Za-z0-9_-]{16,64}\.(jpg|png|webp)$")
CONTENT_TYPES = {"jpg": "image/jpeg", "png": "image/png", "webp": "image/webp"}


class StorageError(Exception):
    """The backend failed (unreachable, refused, answered nonsense)."""


class InvalidKey(ValueError):
    """Not a key this app could have made."""


def check_key(key: str) -> str:
    if not _KEY.match(key):
        raise InvalidKey(key)
    return key


def new_key(extension: str) -> str:
    """A fresh unguessable key: nothing of the upload's name or content survives in it."""
    return check_key(f"{secrets.token_urlsafe(24)}.{extension}")


def content_type_of(key: str) -> str:
    return CONTENT_TYPES[check_key(key).rsplit(".", 1)[1]]


class Storage(Protocol):
    async def put(self, key: str, data: bytes, content_type: str) -> None:
        """Store `data` under `key` (replacing what was there). Raises StorageError."""

    async def get(self, key: str) -> bytes | None:
        """The object, or None when there is none. Raises StorageError."""

    async def delete(self, key: str) -> None:
        """Remove the object; missing is fine. Raises StorageError."""


class LocalStorage:
    """Files in one folder (DATA_DIR/proofs); the disk work runs in a thread."""

    def __init__(self, root: Path):
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)

        def write() -> None:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            # Write then rename: a reader never sees half a file.
            tmp = path.with_suffix(path.suffix + ".tmp")
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            tmp.replace(path)

        try:
            await asyncio.to_thread(write)
        except OSError as exc:
            raise StorageError(f"local write failed: {type(exc).__name__}") from exc

    async def get(self, key: str) -> bytes | None:
        path = self._path(key)

        def read() -> bytes | None:
            try:
                return path.read_bytes()
            except FileNotFoundError:
                return None

        try:
            return await asyncio.to_thread(read)
        except OSError as exc:
            raise StorageError(f"local read failed: {type(exc).__name__}") from exc

    async def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            await asyncio.to_thread(path.unlink, True)
        except OSError as exc:
            raise StorageError(f"local delete failed: {type(exc).__name__}") from exc
