"""The qdrant-client backend: a Qdrant server (`url=`) or qdrant-client's local mode.

Point ids: Qdrant's REST/gRPC ids are unsigned integers or UUID strings, so a point's id is
`str(user_id)` (canonical lower-case hyphenated form, which the server returns unchanged) and
results are parsed back with `uuid.UUID`.

Local mode (`location=":memory:"` or `path=`) is qdrant-client's pure-Python engine: exact
brute force, filters evaluated per point, payload indexes ignored (it warns when one is
created), and it blocks the event loop. It is here for tests of this code path; serving uses a
server (see docs/PLATFORM.md, "Vectors: Qdrant").
"""

from __future__ import annotations

import uuid
from typing import Any

from qdrant_client import AsyncQdrantClient, models

from src.ai.vector_store.base import (
    BIRTH_YEAR,
    DEFAULT_HNSW_EF,
    INTEGER_FIELDS,
    KEYWORD_FIELDS,
    Hit,
    ProfilePoint,
    SearchFilter,
    check_point,
    check_vector,
    collect_page,
    keyword_conditions,
    payload_of,
)

_BATCH = 256  # points per request: 384 floats as JSON are ~4 KB a point
# Collections' meta (src/ai/index.py): one point per collection in a collection of its own, so
# it works on every server version and in local mode alike.
META_COLLECTION = "qiaoqiao_meta"


def _client_filter(flt: SearchFilter) -> models.Filter | None:
    must: list[Any] = [
        models.FieldCondition(key=key, match=models.MatchValue(value=value))
        for key, value in keyword_conditions(flt)
    ]
    if flt.min_birth_year is not None or flt.max_birth_year is not None:
        must.append(
            models.FieldCondition(
                key=BIRTH_YEAR, range=models.Range(gte=flt.min_birth_year, lte=flt.max_birth_year)
            )
        )
    must_not: list[Any] = []
    if flt.exclude_ids:
        must_not.append(models.HasIdCondition(has_id=sorted(str(i) for i in flt.exclude_ids)))
    if not must and not must_not:
        return None
    return models.Filter(must=must or None, must_not=must_not or None)


class QdrantClientVectorStore:
    """A collection reached through `qdrant_client.AsyncQdrantClient`.

    Give `url` for a server, or `location=":memory:"` / `path` for the local mode; or pass a
    ready `client` (then `close()` leaves it open). `optimize()` is a no-op: the server runs
    its optimizers itself.
    """

    def __init__(
        self,
        *,
        dim: int,
        collection: str = "profiles",
        url: str | None = None,
        location: str | None = None,
        path: str | None = None,
        api_key: str | None = None,
        timeout: int | None = None,
        client: AsyncQdrantClient | None = None,
        hnsw_ef: int = DEFAULT_HNSW_EF,
    ) -> None:
        self.dim = dim
        self.collection = collection
        # Local mode is exact and warns that search params have no effect there.
        local = location is not None or path is not None
        self._search_params = None if local else models.SearchParams(hnsw_ef=hnsw_ef)
        self._owns_client = client is None
        if client is None:
            # The compatibility check would make a blocking request from a thread at
            # construction and warn when the server is not up yet; ping() covers reachability.
            client = AsyncQdrantClient(
                url=url,
                location=location,
                path=path,
                api_key=api_key,
                timeout=timeout,
                check_compatibility=False,
            )
        self._client = client

    async def ensure_collection(self) -> None:
        if not await self._client.collection_exists(self.collection):
            try:
                await self._client.create_collection(
                    self.collection,
                    vectors_config=models.VectorParams(
                        size=self.dim, distance=models.Distance.COSINE
                    ),
                )
            except Exception:
                # Another process may have created it first; anything else is re-raised.
                if not await self._client.collection_exists(self.collection):
                    raise
        info = await self._client.get_collection(self.collection)
        vectors = info.config.params.vectors
        size = vectors.size if isinstance(vectors, models.VectorParams) else None
        if size != self.dim:
            raise ValueError(
                f"collection {self.collection!r} holds vectors of {size} dimensions, "
                f"the store takes {self.dim}"
            )
        schema = info.payload_schema or {}
        for fields, kind in (
            (KEYWORD_FIELDS, models.PayloadSchemaType.KEYWORD),
            (INTEGER_FIELDS, models.PayloadSchemaType.INTEGER),
        ):
            for field in fields:
                if field not in schema:
                    await self._client.create_payload_index(
                        self.collection, field, field_schema=kind, wait=True
                    )

    async def upsert(self, points: list[ProfilePoint]) -> None:
        for start in range(0, len(points), _BATCH):
            batch = [
                models.PointStruct(
                    id=str(p.user_id), vector=check_point(p, self.dim), payload=payload_of(p)
                )
                for p in points[start : start + _BATCH]
            ]
            await self._client.upsert(self.collection, points=batch, wait=True)

    async def delete(self, user_ids: list[uuid.UUID]) -> None:
        if not user_ids:
            return
        selector = models.PointIdsList(points=[str(i) for i in user_ids])
        await self._client.delete(self.collection, points_selector=selector, wait=True)

    async def search(
        self, vector: list[float], flt: SearchFilter, limit: int, offset: int = 0
    ) -> list[Hit]:
        query = check_vector(vector, self.dim)
        query_filter = _client_filter(flt)

        async def fetch(n: int, exact: bool) -> list[Hit]:
            params = self._search_params
            if exact and params is not None:
                params = params.model_copy(update={"exact": True})
            response = await self._client.query_points(
                self.collection,
                query=query,
                query_filter=query_filter,
                search_params=params,
                limit=n,
                with_payload=False,
                with_vectors=False,
            )
            return [Hit(uuid.UUID(str(p.id)), p.score) for p in response.points]

        return await collect_page(fetch, limit, offset)

    async def get_vector(self, user_id: uuid.UUID) -> list[float] | None:
        records = await self._client.retrieve(
            self.collection, ids=[str(user_id)], with_payload=False, with_vectors=True
        )
        if not records:
            return None
        vector = records[0].vector
        if isinstance(vector, dict):  # named vectors; this store only uses the default one
            vector = vector.get("")
        return None if vector is None else [float(x) for x in vector]  # type: ignore[union-attr]

    async def count(self) -> int:
        return (await self._client.count(self.collection, exact=True)).count

    async def ping(self) -> bool:
        try:
            return await self._client.collection_exists(self.collection)
        except Exception:
            return False

    async def optimize(self) -> None:
        return None

    async def ids(self) -> set[uuid.UUID]:
        found: set[uuid.UUID] = set()
        offset = None
        while True:
            records, offset = await self._client.scroll(
                self.collection, limit=4096, offset=offset, with_payload=False, with_vectors=False
            )
            found.update(uuid.UUID(str(r.id)) for r in records)
            if offset is None:
                return found

    def _meta_id(self) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"qiaoqiao:collection:{self.collection}"))

    async def read_meta(self) -> dict[str, Any] | None:
        if not await self._client.collection_exists(META_COLLECTION):
            return None
        records = await self._client.retrieve(
            META_COLLECTION, ids=[self._meta_id()], with_payload=True, with_vectors=False
        )
        return dict(records[0].payload or {}) if records else None

    async def write_meta(self, meta: dict[str, Any]) -> None:
        if not await self._client.collection_exists(META_COLLECTION):
            try:
                await self._client.create_collection(
                    META_COLLECTION,
                    vectors_config=models.VectorParams(size=1, distance=models.Distance.DOT),
                )
            except Exception:
                if not await self._client.collection_exists(META_COLLECTION):
                    raise
        point = models.PointStruct(id=self._meta_id(), vector=[1.0], payload=meta)
        await self._client.upsert(META_COLLECTION, points=[point], wait=True)

    async def drop(self) -> None:
        await self._client.delete_collection(self.collection)
        if await self._client.collection_exists(META_COLLECTION):
            selector = models.PointIdsList(points=[self._meta_id()])
            await self._client.delete(META_COLLECTION, points_selector=selector, wait=True)
        await self.close()

    async def close(self) -> None:
        if self._owns_client:
            await self._client.close()
