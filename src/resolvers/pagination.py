"""Keyset pagination: opaque cursors and page-size rules shared by every connection."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar, cast

from sqlmodel.ext.asyncio.session import AsyncSession

from src.models.rules import after as after_cursor
from src.resolvers.errors import BadArgument

T = TypeVar("T")
A = TypeVar("A")
B = TypeVar("B")

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


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SEPARATOR = "\x1f"  # never inside a key: names are whitespace-normalized, \x1f included


def to_micros(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def encode_cursor(*key: object) -> str:
    """base64url (unpadded) of the key's parts joined by \\x1f, times as epoch microseconds —
    a form PostgreSQL can also produce (readplan.compiler.cursor_of)."""
    parts = [str(to_micros(k)) if isinstance(k, datetime) else str(k) for k in key]
    return base64.urlsafe_b64encode(SEPARATOR.join(parts).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, first: type[A], second: type[B]) -> tuple[A, B]:
    """Parse a two-part cursor made by `encode_cursor`, or raise a readable error."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        parts = raw.split(SEPARATOR)
        if len(parts) != 2:
            raise ValueError
        # _parse makes exactly the type asked for (datetime, UUID, int or str).
        return cast(A, _parse(first, parts[0])), cast(B, _parse(second, parts[1]))
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, OverflowError):
        raise BadArgument("`after` is not a valid cursor.") from None


def _parse(kind: type, value: str) -> object:
    if kind is datetime:
        return EPOCH + timedelta(microseconds=int(value))
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


async def newest_first(
    session: AsyncSession, query: Any, model: Any, *, first: int | None, after: str | None
) -> Page[Any]:
    """One keyset page of `query` over a table with `created_at` and `id`, newest first."""
    limit = check_first(first)
    if after:
        at, last = decode_cursor(after, datetime, uuid.UUID)
        query = query.where(after_cursor([model.created_at, model.id], [at, last], descending=True))
    query = query.order_by(model.created_at.desc(), model.id.desc()).limit(limit + 1)
    rows = list(await session.exec(query))
    return Page(
        items=[(encode_cursor(r.created_at, r.id), r) for r in rows[:limit]],
        has_next=len(rows) > limit,
    )
