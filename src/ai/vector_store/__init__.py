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
