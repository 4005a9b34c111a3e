"""Profile vectors behind one small async interface, with two backends.

- `EdgeVectorStore`: qdrant-edge-py in this process, persisted in a directory (the default
  when no Qdrant server is configured).
- `QdrantClientVectorStore`: a Qdrant server through qdrant-client (or its local mode in tests).

`open_vector_store` picks one from the settings. Call `ensure_collection()` once at start-up
and schedule `optimize()` in the background after bulk loads or periodically; see the backend
modules for the details each one documents (point id mapping, threading, optimize).
"""

from __future__ import annotations

from pathlib import Path

from src.ai.vector_store.base import Hit, ProfilePoint, SearchFilter, VectorStore
from src.ai.vector_store.client import QdrantClientVectorStore
from src.ai.vector_store.edge import EdgeVectorStore, VectorIndexLocked

__all__ = [
    "EdgeVectorStore",
    "Hit",
    "ProfilePoint",
    "QdrantClientVectorStore",
    "SearchFilter",
    "VectorIndexLocked",
    "VectorStore",
    "list_collections",
    "open_vector_store",
]


def open_vector_store(
    *, qdrant_url: str | None, data_dir: Path, dim: int, collection: str = "profiles"
) -> VectorStore:
    """A server's collection when `qdrant_url` is set, else an Edge shard in
    `data_dir/"vectors"/collection`. Nothing is opened or created until `ensure_collection()`."""
    if qdrant_url:
        return QdrantClientVectorStore(url=qdrant_url, dim=dim, collection=collection)
    return EdgeVectorStore(Path(data_dir) / "vectors" / collection, dim=dim)


async def list_collections(*, qdrant_url: str | None, data_dir: Path) -> list[str]:
    """The collections there are: a server's, or the Edge shards under `data_dir/"vectors"`."""
    if qdrant_url:
        from qdrant_client import AsyncQdrantClient

        client = AsyncQdrantClient(url=qdrant_url, timeout=5, check_compatibility=False)
        try:
            return [c.name for c in (await client.get_collections()).collections]
        finally:
            await client.close()
    root = Path(data_dir) / "vectors"
    if not root.is_dir():
        return []
    return sorted(
        p.name
        for p in root.iterdir()
        if p.is_dir() and not p.name.endswith((".staging", ".old")) and any(p.iterdir())
    )
