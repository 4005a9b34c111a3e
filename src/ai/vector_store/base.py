"""The vector store's interface and the pieces both backends share.

Point ids are the users' UUIDs. Each backend maps them to what its library takes (see the
backend modules); the interface only ever speaks `uuid.UUID`.

Ranking contract: cosine similarity, best first, and among equal scores the smaller UUID
(`uuid.UUID` ordering, i.e. by its 128-bit integer) first. Pages are cut from that order, so
`offset` pagination over an unchanged store neither repeats nor skips a point. The engines
themselves order ties arbitrarily, so `collect_page` asks them for enough results to see every
point that ties with the last one on the page and then sorts.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

GENDERS = frozenset({"MALE", "FEMALE", "OTHER", "UNDISCLOSED"})

# Payload field names and the index each gets (both backends create the same four).
CITY = "city"
INSTITUTION_ID = "institution_id"
GENDER = "gender"
BIRTH_YEAR = "birth_year"
KEYWORD_FIELDS = (CITY, INSTITUTION_ID, GENDER)
INTEGER_FIELDS = (BIRTH_YEAR,)

# HNSW search breadth. Qdrant searches with ef = max(hnsw_ef, limit); while offset + limit
# stays at or below this, every page of one query is cut from the same candidate list, so
# approximate (HNSW) search paginates consistently too.
DEFAULT_HNSW_EF = 256


@dataclass(frozen=True)
class ProfilePoint:
    user_id: uuid.UUID
    vector: list[float]  # normalized, dim given at construction (384 for e5-small)
    city: str | None  # normalized lower-case/trimmed by the caller
    institution_id: uuid.UUID | None
    gender: str  # MALE/FEMALE/OTHER/UNDISCLOSED
    birth_year: int | None


@dataclass(frozen=True)
class SearchFilter:
    city: str | None = None
    institution_id: uuid.UUID | None = None
    gender: str | None = None
    min_birth_year: int | None = None  # inclusive
    max_birth_year: int | None = None  # inclusive
    # viewer, blocks, swiped … applied IN the vector query
    exclude_ids: frozenset[uuid.UUID] = frozenset()


@dataclass(frozen=True)
class Hit:
    user_id: uuid.UUID
    score: float


@runtime_checkable
class VectorStore(Protocol):
    dim: int

    async def ensure_collection(self) -> None:
        """Create the collection and its payload indexes where missing."""

    async def upsert(self, points: list[ProfilePoint]) -> None: ...

    async def delete(self, user_ids: list[uuid.UUID]) -> None: ...

    async def search(
        self, vector: list[float], flt: SearchFilter, limit: int, offset: int = 0
    ) -> list[Hit]:
        """Cosine, best first, ties by user id; see the module docstring."""

    async def get_vector(self, user_id: uuid.UUID) -> list[float] | None: ...

    async def count(self) -> int: ...

    async def ping(self) -> bool:
        """Cheap health check; never raises."""

    async def optimize(self) -> None:
        """Build indexes (HNSW); slow on Edge, a no-op where the server optimizes itself."""

    async def ids(self) -> set[uuid.UUID]:
        """Every point's id (for comparing the index with PostgreSQL)."""

    async def read_meta(self) -> dict[str, Any] | None:
        """What `write_meta` last stored with this collection (None: nothing)."""

    async def write_meta(self, meta: dict[str, Any]) -> None: ...

    async def drop(self) -> None:
        """Delete the collection with its points and meta, and close the store."""

    async def close(self) -> None: ...


def check_vector(vector: list[float], dim: int) -> list[float]:
    if len(vector) != dim:
        raise ValueError(f"vector has {len(vector)} dimensions, the store takes {dim}")
    return [float(x) for x in vector]


def check_point(point: ProfilePoint, dim: int) -> list[float]:
    if point.gender not in GENDERS:
        raise ValueError(f"unknown gender {point.gender!r}")
    return check_vector(point.vector, dim)


def payload_of(point: ProfilePoint) -> dict[str, Any]:
    """The stored payload. Absent values are left out, so no filter on them can match."""
    payload: dict[str, Any] = {GENDER: point.gender}
    if point.city is not None:
        payload[CITY] = point.city
    if point.institution_id is not None:
        payload[INSTITUTION_ID] = str(point.institution_id)
    if point.birth_year is not None:
        payload[BIRTH_YEAR] = point.birth_year
    return payload


def keyword_conditions(flt: SearchFilter) -> list[tuple[str, str]]:
    """(field, exact value) pairs the filter requires."""
    pairs = []
    if flt.city is not None:
        pairs.append((CITY, flt.city))
    if flt.institution_id is not None:
        pairs.append((INSTITUTION_ID, str(flt.institution_id)))
    if flt.gender is not None:
        pairs.append((GENDER, flt.gender))
    return pairs


def check_page(limit: int, offset: int) -> None:
    if limit < 0 or offset < 0:
        raise ValueError("limit and offset must not be negative")


async def collect_page(
    fetch: Callable[[int, bool], Awaitable[list[Hit]]], limit: int, offset: int
) -> list[Hit]:
    """Cut one page out of the ranking with ties broken by user id.

    `fetch(n, exact)` returns the engine's top n hits, best first, ties in any order. We ask for
    one more than the page needs; while that extra hit still ties with the page's last place
    there may be more tied points beyond it, so we ask for twice as many.

    A filtered HNSW search can come back short although more points match: the filter cuts the
    graph into pieces the search cannot cross (seen: 1 hit of 20 among ~125 matching points
    at 5k). Fewer hits than asked for is then retried as an exact search, which scans only the
    matching points, so it is cheap exactly when results run short legitimately (few matches).
    """
    check_page(limit, offset)
    if limit == 0:
        return []
    need = offset + limit
    size = need + 1
    exact = False
    while True:
        hits = await fetch(size, exact)
        if len(hits) < size and not exact:
            exact = True
            hits = await fetch(size, exact)
        if len(hits) < size or hits[-1].score != hits[need - 1].score:
            break
        size *= 2
    hits.sort(key=lambda hit: (-hit.score, hit.user_id.int))
    return hits[offset:need]
