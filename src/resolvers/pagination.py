"""Keyset pagination: opaque cursors and page-size rules shared by every connection."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

import orjson

from src.resolvers.errors import BadArgument

T = TypeVar("T")

MIN_PAGE = 1
MAX_PAGE = 100
DEFAULT_PAGE = 20


def check_first(first: int | None) -> int:
    """The page size, or a readable error when it is outside 1..100 (SECURITY.md 2)."""
    if first is None:
        return DEFAULT_PAGE
    if not MIN_PAGE <= first <= MAX_PAGE:
        raise BadArgument(f"`first` must be between {MIN_PAGE} and {MAX_PAGE}, got {first}.")
    return first


def encode_cursor(*key: object) -> str:
    parts = [k.isoformat() if isinstance(k, datetime) else str(k) for k in key]
    return base64.urlsafe_b64encode(orjson.dumps(parts)).decode().rstrip("=")


def decode_cursor(cursor: str, *types: type) -> tuple[object, ...]:
    """Parse a cursor made by `encode_cursor`, or raise a readable error."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        parts = orjson.loads(raw)
        if not isinstance(parts, list) or len(parts) != len(types):
            raise ValueError
        return tuple(_parse(t, p) for t, p in zip(types, parts, strict=True))
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise BadArgument("`after` is not a valid cursor.") from None


def _parse(kind: type, value: object) -> object:
    if not isinstance(value, str):
        raise ValueError
    if kind is datetime:
        return datetime.fromisoformat(value)
    if kind is uuid.UUID:
        return uuid.UUID(value)
    if kind is int:
        return int(value)
    return value


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of rows with their cursors; `has_next` from fetching one row more."""

    items: Sequence[tuple[str, T]]
    has_next: bool

    @property
    def end_cursor(self) -> str | None:
        return self.items[-1][0] if self.items else None
