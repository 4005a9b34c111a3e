"""The profile index as discovery sees it: versioned collections, one serving, maybe one building.

A vector's meaning depends on the model, the transform applied after it (`src/ai/neutral.py`)
and the document it was embedded from: together they are the index *version*. Each build has a
collection of its own (`profiles-<version key>-<build stamp>`), with its version and state
(building, ready) stored beside it (`VectorStore.write_meta`); a collection named `profiles`
is an index from before versions (`legacy`). At start-up:

- the current version's collection, marked ready: it serves;
- else it is built in the background (by `resolvers.indexing.rebuild`) while an older ready
  collection serves, if the same query embeddings can search it (same model and size: its own
  transform is applied to each query); with none, nothing serves and discovery answers from
  PostgreSQL, saying it is degraded. When the build is done the new collection serves and the
  old one is dropped.

While building, every change goes to both collections (`upsert`/`delete`), and the ids changed
are remembered so that the build can redo those it may have overwritten with older text.
`complete` is false while nothing serves or while a backfill (`resolvers.indexing.reconcile`)
is catching up with PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from src.ai.neutral import IDENTITY, Neutralizer
from src.ai.vector_store import Hit, ProfilePoint, SearchFilter, VectorStore

log = logging.getLogger(__name__)

BASE_NAME = "profiles"
READY, BUILDING = "ready", "building"


class IndexUnavailable(RuntimeError):
    """No collection can answer: discovery ranks in PostgreSQL instead."""


@dataclass(frozen=True)
class IndexVersion:
    model: str  # Embedder.identity
    dim: int
    transform: str  # a name in src/ai/neutral.py
    documents: int  # resolvers.indexing.DOCUMENT_VERSION

    @property
    def key(self) -> str:
        text = json.dumps([self.model, self.dim, self.transform, self.documents])
        return hashlib.sha256(text.encode()).hexdigest()[:10]

    def new_collection(self) -> str:
        """A fresh collection name for a build of this version (a rebuild of the serving
        version builds beside it, so names differ by build)."""
        return f"{BASE_NAME}-{self.key}-{int(time.time() * 1000):x}"

    def searchable_by(self, other: IndexVersion) -> bool:
        """Whether queries embedded for `other` can search this version's vectors."""
        return self.model == other.model and self.dim == other.dim

    def meta(self, state: str) -> dict[str, Any]:
        return {
            "model": self.model,
            "dim": self.dim,
            "transform": self.transform,
            "documents": self.documents,
            "state": state,
        }

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> IndexVersion:
        return cls(
            str(meta["model"]), int(meta["dim"]), str(meta["transform"]), int(meta["documents"])
        )


@dataclass(frozen=True)
class Collection:
    name: str
    store: VectorStore
    version: IndexVersion


Opener = Callable[[str], VectorStore]
Lister = Callable[[], Awaitable[list[str]]]
Transforms = Callable[[str], Awaitable[Neutralizer]]


class VectorIndex:
    """See the module docstring. Searches take raw query embeddings plus the prompt text (the
    transform needs its language); `upsert` takes raw passage embeddings plus their texts."""

    def __init__(
        self,
        version: IndexVersion,
        *,
        open_store: Opener,
        list_names: Lister,
        transforms: Transforms,
        legacy: IndexVersion | None = None,
    ) -> None:
        """`legacy`: what an unversioned `profiles` collection (made before versions) holds."""
        self.version = version
        self.dim = version.dim
        self._open_store = open_store
        self._list_names = list_names
        self._transforms = transforms
        self._legacy = legacy
        self.serving: Collection | None = None
        self.building: Collection | None = None
        self.touched: set[uuid.UUID] = set()  # changed while building
        # The last outbox row a backfill queued (resolvers.indexing.reconcile); None: no backfill.
        self.backfill_mark: int | None = None
        self.opened = False
        self._opening: asyncio.Future[None] | None = None
        # Builds that never finished, and collections a finished one replaced but a stop kept
        # from being dropped: `drop_unfinished` removes them.
        self.unfinished: list[str] = []
        self._neutrals: dict[str, Neutralizer] = {}
        # Every store this index opened: `close` closes them all, also one whose opening a
        # shutdown interrupted (it would keep the Edge directory's lock file open).
        self._stores: list[VectorStore] = []
        self._neutral_lock = asyncio.Lock()

    # -- state ---------------------------------------------------------------------------

    @property
    def complete(self) -> bool:
        """Something serves and nothing known is missing from it."""
        return self.serving is not None and self.backfill_mark is None

    @property
    def writable(self) -> bool:
        """Some collection takes changes (before that, the outbox waits rather than fail)."""
        return self.serving is not None or self.building is not None

    @property
    def needs_build(self) -> bool:
        return self.opened and (self.serving is None or self.serving.version != self.version)

    def _store(self, name: str) -> VectorStore:
        store = self._open_store(name)
        self._stores.append(store)
        return store

    async def _collection(self, name: str, version: IndexVersion) -> Collection:
        store = self._store(name)
        try:
            await store.ensure_collection()
        except BaseException:
            await store.close()
            self._stores.remove(store)  # retried every few seconds while another holds it
            raise
        return Collection(name, store, version)

    async def _neutral(self, collection: Collection) -> Neutralizer:
        """The collection's transform, fitted (or read from its cache) on first use only: it
        may load the model, which an empty build or an idle server never needs."""
        name = collection.version.transform
        if name not in self._neutrals:
            async with self._neutral_lock:
                if name not in self._neutrals:
                    self._neutrals[name] = await self._transforms(name)
        return self._neutrals[name]

    async def _stored_version(self, name: str) -> tuple[IndexVersion, str] | None:
        store = self._open_store(name)
        try:
            meta = await store.read_meta()
        finally:
            await store.close()
        if meta is None and name == BASE_NAME and self._legacy is not None:
            return self._legacy, READY
        try:
            return IndexVersion.from_meta(meta or {}), str((meta or {}).get("state"))
        except (KeyError, ValueError, TypeError):
            return None

    async def open(self) -> None:
        """Pick what serves (see the module docstring); idempotent once it succeeded."""
        if self.opened:
            return
        self.unfinished = []
        current: list[str] = []
        older: list[tuple[str, IndexVersion]] = []
        unsearchable: list[str] = []
        for name in sorted(await self._list_names()):  # build stamps sort oldest first
            if name != BASE_NAME and not name.startswith(BASE_NAME + "-"):
                continue
            stored = await self._stored_version(name)
            if stored is None or stored[1] != READY:
                if stored is not None and stored[1] == BUILDING:
                    self.unfinished.append(name)
                continue
            if stored[0] == self.version:
                current.append(name)
            elif stored[0].searchable_by(self.version):
                older.append((name, stored[0]))
            else:
                unsearchable.append(name)
        if current:
            self.serving = await self._collection(current[-1], self.version)
            # What a switch left behind when the process stopped before dropping it.
            self.unfinished += current[:-1] + [name for name, _ in older] + unsearchable
        elif older:
            name, version = older[-1]
            self.serving = await self._collection(name, version)
            log.info(
                "vector index %s serves while one of version %s is built", name, self.version.key
            )
        self.opened = True

    async def drop_unfinished(self) -> None:
        """Drop what builds and switches left behind; only while no other process may be
        building."""
        for name in self.unfinished:
            if self.building is None or name != self.building.name:
                await self._open_store(name).drop()
        self.unfinished = []

    async def reopen(self) -> None:
        """Pick again what serves (another process may have built a newer collection)."""
        serving, self.serving, self.opened = self.serving, None, False
        try:
            await self.open()
        finally:
            if serving is not None and (self.serving is None or self.serving.name != serving.name):
                await serving.store.close()
            elif serving is not None and self.serving is not None:
                await self.serving.store.close()  # opened twice: keep the first handle
                self.serving = serving

    async def ensure_open(self) -> None:
        """`open()` once, shared by concurrent callers; a caller that gives up waiting (a
        search's timeout) does not cancel it. After a failure the next call tries again."""
        if self.opened:
            return
        if self._opening is None or (self._opening.done() and self._opening.exception()):
            self._opening = asyncio.ensure_future(self.open())
        await asyncio.shield(self._opening)

    async def begin_build(self) -> Collection:
        """A new, empty collection for a full build of the current version."""
        name = self.version.new_collection()
        collection = await self._collection(name, self.version)
        try:
            await collection.store.write_meta(self.version.meta(BUILDING))
        except BaseException:
            await collection.store.close()
            raise
        self.building = collection
        self.touched = set()
        return collection

    async def finish_build(self) -> None:
        """The build is complete: it serves from now on; the collection it replaces is dropped."""
        building, old = self.building, self.serving
        if building is None:
            return
        await building.store.write_meta(self.version.meta(READY))
        self.serving, self.building = building, None
        self.touched = set()
        if old is not None and old.store is not building.store:
            await old.store.drop()

    async def abandon_build(self) -> None:
        if self.building is not None:
            building, self.building = self.building, None
            await building.store.close()

    # -- reads ---------------------------------------------------------------------------

    async def _serving(self) -> Collection:
        await self.ensure_open()
        if self.serving is None:
            raise IndexUnavailable("no index serves yet")
        return self.serving

    async def search(
        self,
        vector: list[float],
        flt: SearchFilter,
        limit: int,
        offset: int = 0,
        *,
        text: str | None = None,
    ) -> list[Hit]:
        """`text` given: `vector` is a raw query embedding of it, transformed here for the
        serving collection; otherwise `vector` is already one of its vectors (`get_vector`)."""
        collection = await self._serving()
        try:
            return await self._search_in(collection, vector, flt, limit, offset, text)
        except RuntimeError:
            # finish_build dropped this collection while the search ran in it (its store
            # answers "closed"): the one that replaced it answers instead.
            if self.serving is None or self.serving is collection:
                raise
            return await self._search_in(self.serving, vector, flt, limit, offset, text)

    async def _search_in(
        self,
        collection: Collection,
        vector: list[float],
        flt: SearchFilter,
        limit: int,
        offset: int,
        text: str | None,
    ) -> list[Hit]:
        if text is not None:
            neutral = await self._neutral(collection)
            vector = neutral.queries([vector], [text])[0].tolist()
        return await collection.store.search(vector, flt, limit, offset)

    async def get_vector(self, user_id: uuid.UUID) -> list[float] | None:
        return await (await self._serving()).store.get_vector(user_id)

    async def count(self) -> int:
        return await (await self._serving()).store.count()

    async def ids(self) -> set[uuid.UUID]:
        return await (await self._serving()).store.ids()

    async def ping(self) -> bool:
        """The store answers (nothing serving yet, as before a first build, is not an outage)."""
        try:
            await self.ensure_open()
        except Exception:
            return False
        return True if self.serving is None else await self.serving.store.ping()

    # -- writes --------------------------------------------------------------------------

    def _targets(self) -> list[Collection]:
        return [c for c in (self.serving, self.building) if c is not None]

    async def upsert(self, points: list[ProfilePoint], texts: list[str] | None = None) -> None:
        """Raw passage embeddings of `texts` (None: vectors stored as they are) into every
        open collection, each with its own transform."""
        if not points:
            return
        if not self._targets():
            raise IndexUnavailable("no index is open")
        for collection in self._targets():
            await collection.store.upsert(await self._transformed(collection, points, texts))
        if self.building is not None:
            self.touched.update(p.user_id for p in points)

    async def upsert_building(self, points: list[ProfilePoint], texts: list[str]) -> None:
        if self.building is not None and points:
            building = self.building
            await building.store.upsert(await self._transformed(building, points, texts))

    async def _transformed(
        self, collection: Collection, points: list[ProfilePoint], texts: list[str] | None
    ) -> list[ProfilePoint]:
        if texts is None or collection.version.transform == IDENTITY:
            return points
        neutral = await self._neutral(collection)
        vectors = neutral.passages([p.vector for p in points], texts)
        return [replace(p, vector=v.tolist()) for p, v in zip(points, vectors, strict=True)]

    async def delete(self, user_ids: list[uuid.UUID]) -> None:
        if not user_ids:
            return
        if not self._targets():
            raise IndexUnavailable("no index is open")
        for collection in self._targets():
            await collection.store.delete(user_ids)
        if self.building is not None:
            self.touched.update(user_ids)

    async def optimize(self) -> None:
        for collection in self._targets():
            await collection.store.optimize()

    async def ensure_collection(self) -> None:
        await self.ensure_open()

    async def close(self) -> None:
        opening, self._opening = self._opening, None
        if opening is not None and not opening.done():
            opening.cancel()
            with contextlib.suppress(BaseException):
                await opening
        stores, self._stores = self._stores, []
        for store in stores:
            await store.close()
        self.serving = self.building = None
        self.opened = False
