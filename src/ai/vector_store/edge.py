"""The in-process backend: one qdrant-edge-py `EdgeShard` persisted in a directory.

Point ids: `EdgeShard` takes and returns `uuid.UUID` point ids as they are, so a point's id is
the user's UUID itself.

Threads: qdrant-edge-py's calls are synchronous and hold the GIL while they run (0.9.0), so
each runs through `asyncio.to_thread`, one at a time under `self._lock`, which also guards the
write journal and the directory swap below. Reads and writes take well under a millisecond
at 10k points.

Optimize: `EdgeShard.optimize()` builds HNSW and payload-aware links; it takes seconds at 10k
points and minutes at 100k, and holds the GIL all along, so it must not run in this process.
`optimize()` therefore:

1. under the lock, flushes the shard and copies its directory to `<dir>.staging`, and starts
   journaling every update applied from then on;
2. without the lock, runs `_edge_optimize.py` on the copy in a child process (niced), while
   this store keeps serving reads and writes from the live shard;
3. under the lock (a pause of about the time to load the shard: 0.3 s at 10k points), replays
   the journal onto the optimized copy, marks it complete (`<dir>.staging-ready`), closes the
   live shard, renames live to `<dir>.old` and the copy to `<dir>`, loads it and deletes
   `<dir>.old`.

Opening the store finishes or rolls back a swap that a crash interrupted: a copy marked
complete is taken, an unmarked one is discarded. The caller schedules `optimize()` (after bulk
loads, or periodically in the background), never per write; a second call made while one runs
waits for it instead of starting another. The copy needs as much free disk and, in the child,
memory as the shard itself.

A `<dir>.lock` file (flock) keeps a second store, in this process or another, from opening the
same directory.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import shutil
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import IO, Any

from qdrant_edge import (
    CountRequest,
    Distance,
    EdgeConfig,
    EdgeOptimizersConfig,
    EdgeShard,
    EdgeVectorParams,
    FieldCondition,
    Filter,
    HasIdCondition,
    HnswIndexConfig,
    MatchValue,
    PayloadSchemaType,
    Point,
    Query,
    QueryRequest,
    RangeFloat,
    ScrollRequest,
    SearchParams,
    UpdateOperation,
)

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

_CHILD = Path(__file__).with_name("_edge_optimize.py")
_BATCH = 512  # points per update, so that reads interleave with a bulk upsert


class VectorIndexLocked(RuntimeError):
    """Another store, in this process or another, has the directory open."""

    def __init__(self, path: Path):
        super().__init__(f"{path} is already open in another vector store")
        self.path = path


def _point_uuid(point_id: Any) -> uuid.UUID:
    return point_id if isinstance(point_id, uuid.UUID) else uuid.UUID(str(point_id))


def _edge_filter(flt: SearchFilter) -> Filter | None:
    must: list[Any] = [
        FieldCondition(key, match=MatchValue(value)) for key, value in keyword_conditions(flt)
    ]
    if flt.min_birth_year is not None or flt.max_birth_year is not None:
        # RangeFloat is the only numeric range the bindings have; it matches integer fields.
        must.append(
            FieldCondition(
                BIRTH_YEAR, range=RangeFloat(gte=flt.min_birth_year, lte=flt.max_birth_year)
            )
        )
    must_not: list[Any] = [HasIdCondition(set(flt.exclude_ids))] if flt.exclude_ids else []
    if not must and not must_not:
        return None
    return Filter(must=must or None, must_not=must_not or None)


class EdgeVectorStore:
    """Qdrant Edge in this process, persisted under `path`; see the module docstring."""

    def __init__(
        self,
        path: Path,
        *,
        dim: int,
        hnsw_ef: int = DEFAULT_HNSW_EF,
        indexing_threshold_kb: int | None = None,
        full_scan_threshold_kb: int = 10_000,
        optimize_timeout: float | None = None,
    ) -> None:
        """`indexing_threshold_kb`: segments above this get HNSW on optimize (Qdrant's
        default, 10 MB, is about 6.5k vectors of 384 floats); `full_scan_threshold_kb`: filtered
        searches whose candidates are below this are exact (Qdrant's default)."""
        self.path = Path(path)
        self.dim = dim
        self._hnsw_ef = hnsw_ef
        self._indexing_threshold_kb = indexing_threshold_kb
        self._full_scan_threshold_kb = full_scan_threshold_kb
        self._optimize_timeout = optimize_timeout
        self._lock = threading.Lock()
        self._optimize_lock = threading.Lock()
        self._shard: EdgeShard | None = None
        self._journal: list[UpdateOperation] | None = None
        self._child: subprocess.Popen[bytes] | None = None
        self._dir_lock: IO[bytes] | None = None
        self._closed = False

    # -- paths and configuration ------------------------------------------------------------

    def _sibling(self, suffix: str) -> Path:
        return self.path.with_name(self.path.name + suffix)

    def _config(self) -> EdgeConfig:
        optimizers = None
        if self._indexing_threshold_kb is not None:
            optimizers = EdgeOptimizersConfig(indexing_threshold=self._indexing_threshold_kb)
        return EdgeConfig(
            vectors=EdgeVectorParams(size=self.dim, distance=Distance.Cosine),
            hnsw_config=HnswIndexConfig(
                m=16, ef_construct=100, full_scan_threshold=self._full_scan_threshold_kb
            ),
            optimizers=optimizers,
        )

    @property
    def optimizing(self) -> bool:
        return self._journal is not None

    # -- synchronous core (call with self._lock held where noted) ---------------------------

    def _require(self) -> EdgeShard:
        if self._closed:
            raise RuntimeError("the vector store is closed")
        if self._shard is None:
            raise RuntimeError("the vector store is not open: call ensure_collection() first")
        return self._shard

    def _apply(self, operation: UpdateOperation) -> None:  # lock held
        self._require().update(operation)
        if self._journal is not None:
            self._journal.append(operation)

    def _recover_dirs(self) -> None:  # lock held; also completes a normal swap
        live, staging, old = self.path, self._sibling(".staging"), self._sibling(".old")
        ready = self._sibling(".staging-ready")
        if ready.exists():
            if staging.is_dir():
                if live.exists():
                    shutil.rmtree(old, ignore_errors=True)
                    live.rename(old)
                staging.rename(live)
            ready.unlink()
        shutil.rmtree(staging, ignore_errors=True)
        if old.exists():
            if live.exists():
                shutil.rmtree(old)
            else:
                old.rename(live)

    def _load_live(self) -> None:  # lock held
        self._recover_dirs()
        if self.path.is_dir() and any(self.path.iterdir()):
            self._shard = EdgeShard.load(str(self.path), self._config())
        else:
            self._shard = EdgeShard.create(str(self.path), self._config())

    def _ensure_sync(self) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("the vector store is closed")
            if self._shard is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._take_dir_lock()
                try:
                    self._load_live()
                except BaseException:
                    self._release_dir_lock()
                    raise
            schema = self._require().info().payload_schema
            for fields, kind in (
                (KEYWORD_FIELDS, PayloadSchemaType.Keyword),
                (INTEGER_FIELDS, PayloadSchemaType.Integer),
            ):
                for field in fields:
                    if field not in schema:
                        self._apply(UpdateOperation.create_field_index(field, kind))

    def _take_dir_lock(self) -> None:
        if self._dir_lock is not None:
            return
        handle = self._sibling(".lock").open("ab")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise VectorIndexLocked(self.path) from None
        self._dir_lock = handle

    def _release_dir_lock(self) -> None:
        if self._dir_lock is not None:
            self._dir_lock.close()  # releases the flock
            self._dir_lock = None

    def _upsert_sync(self, points: list[ProfilePoint]) -> None:
        for start in range(0, len(points), _BATCH):
            batch = [
                Point(p.user_id, check_point(p, self.dim), payload_of(p))
                for p in points[start : start + _BATCH]
            ]
            with self._lock:
                self._apply(UpdateOperation.upsert_points(batch))

    def _delete_sync(self, user_ids: list[uuid.UUID]) -> None:
        with self._lock:
            self._apply(UpdateOperation.delete_points(list(user_ids)))

    def _query_sync(
        self, vector: list[float], flt: Filter | None, limit: int, exact: bool
    ) -> list[Hit]:
        request = QueryRequest(
            limit=limit,
            query=Query.Nearest(vector),
            filter=flt,
            with_payload=False,
            with_vector=False,
            params=SearchParams(hnsw_ef=self._hnsw_ef, exact=exact),
        )
        with self._lock:
            found = self._require().query(request)
        return [Hit(_point_uuid(p.id), p.score) for p in found]

    def _get_vector_sync(self, user_id: uuid.UUID) -> list[float] | None:
        with self._lock:
            records = self._require().retrieve([user_id], False, True)
        if not records:
            return None
        vector = records[0].vector
        if isinstance(vector, dict):  # named vectors; this store only uses the default one
            vector = vector.get("")
        return None if vector is None else [float(x) for x in vector]

    def _ids_sync(self) -> set[uuid.UUID]:
        found: set[uuid.UUID] = set()
        offset = None
        while True:
            request = ScrollRequest(
                offset=offset, limit=4096, with_payload=False, with_vector=False
            )
            with self._lock:
                records, offset = self._require().scroll(request)
            found.update(_point_uuid(r.id) for r in records)
            if offset is None:
                return found

    def _read_meta_sync(self) -> dict[str, Any] | None:
        try:
            return json.loads(self._sibling(".meta.json").read_text())  # type: ignore[no-any-return]
        except (OSError, ValueError):
            return None

    def _write_meta_sync(self, meta: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self._sibling(".meta.json.tmp")
        temporary.write_text(json.dumps(meta, sort_keys=True))
        os.replace(temporary, self._sibling(".meta.json"))

    def _drop_sync(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._take_dir_lock()  # never delete what another store has open
        try:
            self._close_sync(release=False)
            for path in (self.path, self._sibling(".staging"), self._sibling(".old")):
                shutil.rmtree(path, ignore_errors=True)
            for suffix in (".staging-ready", ".meta.json"):
                self._sibling(suffix).unlink(missing_ok=True)
        finally:
            self._release_dir_lock()

    def _count_sync(self) -> int:
        with self._lock:
            return self._require().count(CountRequest(exact=True))

    def _ping_sync(self) -> bool:
        try:
            with self._lock:
                self._require().info()
        except Exception:
            return False
        return True

    def _optimize_sync(self) -> None:
        if not self._optimize_lock.acquire(blocking=False):
            with self._optimize_lock:  # one is running: wait for it rather than start another
                return
        try:
            self._optimize_locked()
        finally:
            self._optimize_lock.release()

    def _optimize_locked(self) -> None:
        staging, ready = self._sibling(".staging"), self._sibling(".staging-ready")
        with self._lock:
            shard = self._require()
            if shard.count(CountRequest(exact=True)) == 0:
                return
            shard.flush()
            shutil.rmtree(staging, ignore_errors=True)
            ready.unlink(missing_ok=True)
            shutil.copytree(self.path, staging)
            self._journal = []
        try:
            self._run_child(staging)
            with self._lock:
                if self._closed:
                    return
                self._require()
                staged = EdgeShard.load(str(staging))
                try:
                    for operation in self._journal:
                        staged.update(operation)
                    staged.flush()
                finally:
                    staged.close()
                ready.touch()
                self._journal = None
                live = self._require()
                self._shard = None
                live.close()
                self._load_live()  # _recover_dirs swaps the complete copy in
        finally:
            with self._lock:
                self._journal = None
                if not ready.exists():
                    shutil.rmtree(staging, ignore_errors=True)
                if self._shard is None and not self._closed:
                    self._load_live()  # the swap failed half way: reopen what is on disk

    def _run_child(self, staging: Path) -> None:
        command = [sys.executable, str(_CHILD), str(staging)]
        # Our own interpreter and script, on a directory we made: no untrusted input.
        with subprocess.Popen(  # noqa: S603
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        ) as child:
            with self._lock:
                closed = self._closed
                self._child = child
            if closed:
                child.kill()
            try:
                _, stderr = child.communicate(timeout=self._optimize_timeout)
            except subprocess.TimeoutExpired:
                child.kill()
                child.communicate()
                raise
            finally:
                with self._lock:
                    self._child = None
        if child.returncode != 0:
            detail = stderr.decode(errors="replace").strip()[-2000:]
            raise RuntimeError(f"edge optimize exited with {child.returncode}: {detail}")

    def _close_sync(self, release: bool = True) -> None:
        with self._lock:
            self._closed = True
            if self._child is not None and self._child.poll() is None:
                self._child.kill()
        with self._optimize_lock:  # let a running optimize notice and clean up
            pass
        with self._lock:
            if self._shard is not None:
                shard, self._shard = self._shard, None
                try:
                    shard.flush()
                finally:
                    shard.close()
            if release:
                self._release_dir_lock()

    # -- the async interface ----------------------------------------------------------------

    async def ensure_collection(self) -> None:
        await asyncio.to_thread(self._ensure_sync)

    async def upsert(self, points: list[ProfilePoint]) -> None:
        if points:
            await asyncio.to_thread(self._upsert_sync, points)

    async def delete(self, user_ids: list[uuid.UUID]) -> None:
        if user_ids:
            await asyncio.to_thread(self._delete_sync, user_ids)

    async def search(
        self, vector: list[float], flt: SearchFilter, limit: int, offset: int = 0
    ) -> list[Hit]:
        query = check_vector(vector, self.dim)
        edge_filter = _edge_filter(flt)

        async def fetch(n: int, exact: bool) -> list[Hit]:
            return await asyncio.to_thread(self._query_sync, query, edge_filter, n, exact)

        return await collect_page(fetch, limit, offset)

    async def get_vector(self, user_id: uuid.UUID) -> list[float] | None:
        return await asyncio.to_thread(self._get_vector_sync, user_id)

    async def count(self) -> int:
        return await asyncio.to_thread(self._count_sync)

    async def ping(self) -> bool:
        return await asyncio.to_thread(self._ping_sync)

    async def optimize(self) -> None:
        await asyncio.to_thread(self._optimize_sync)

    async def ids(self) -> set[uuid.UUID]:
        return await asyncio.to_thread(self._ids_sync)

    async def read_meta(self) -> dict[str, Any] | None:
        return await asyncio.to_thread(self._read_meta_sync)

    async def write_meta(self, meta: dict[str, Any]) -> None:
        await asyncio.to_thread(self._write_meta_sync, meta)

    async def drop(self) -> None:
        await asyncio.to_thread(self._drop_sync)

    async def close(self) -> None:
        await asyncio.to_thread(self._close_sync)
