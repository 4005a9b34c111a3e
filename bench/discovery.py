"""Workload B, discovery: prompt -> embed -> filtered vector search, against its peers.

    .venv/bin/python -m bench.discovery [--profiles 10000] [--queries 200] [--seed 1]

Steps: build N demo profiles' texts and payloads; embed them with the real Embedder (cached in
bench/results/discovery-vectors-n<N>-seed<S>.npy); upsert into a fresh Edge store and
`optimize()` it; then run the query set through the Edge store before and after optimize, end
to end (embed the prompt + search), through qdrant-client's local mode (the peer) and through
exact numpy brute force (for recall@20). Prints a table and writes it as Markdown to
bench/results/discovery-<date>-<time>.md. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
import warnings
from datetime import datetime
from pathlib import Path

import numpy as np

from bench import discovery_report as report
from bench.discovery_data import Profiles, Query, build_profiles, exact_top, make_queries, mask
from bench.harness import BENCH, ROOT, BenchError, rss_kb
from src.ai import neutral
from src.ai.embeddings import Embedder
from src.ai.vector_store import (
    ProfilePoint,
    QdrantClientVectorStore,
    VectorStore,
    open_vector_store,
)
from src.resolvers.demo_data import parallel_sentences

RESULTS = BENCH / "results"
K = 20  # recall@K; the API asks the store for first + 1 = 21
LIMIT = K + 1
WARMUP = 5
DIM = 384


def disk_bytes(path: Path) -> tuple[int, int]:
    """(apparent size, allocated blocks) of the files under `path`: Edge preallocates sparsely."""
    stats = [f.stat() for f in path.rglob("*") if f.is_file()]
    return sum(s.st_size for s in stats), sum(s.st_blocks * 512 for s in stats)


async def embed_profiles(
    embedder: Embedder, texts: list[str], checkpoint: Path | None = None, chunk: int = 512
) -> tuple[np.ndarray, float]:
    """All passage vectors (float32, in the order of `texts`) and the seconds it took.

    Texts go to the model shortest first: a batch is padded to its longest text, and profile
    texts run from ~100 to ~1,000 characters, so unsorted batches waste most of their work.
    With `checkpoint`, progress is saved after every chunk and an interrupted run resumes there
    (100k profiles take the better part of an hour on 2 cores); the rate counts this run only."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), DIM), dtype=np.float32)
    first = 0
    saved = _load_checkpoint(checkpoint, out.shape)
    if saved is not None:
        out, first = saved
        print(f"  resuming after {first} profiles from {checkpoint}", flush=True)
    began = time.perf_counter()
    for start in range(first, len(texts), chunk):
        part = order[start : start + chunk]
        out[part] = await embedder.embed_passages([texts[i] for i in part])
        done, spent = start + len(part), time.perf_counter() - began
        print(f"  embedded {done}/{len(texts)} ({(done - first) / spent:.0f}/s)", flush=True)
        if checkpoint is not None:
            with checkpoint.open("wb") as f:
                np.savez(f, vectors=out, done=done)
    # After a resume, the seconds all texts would take at this run's rate.
    seconds = time.perf_counter() - began
    return out, seconds * len(texts) / max(len(texts) - first, 1)


def _load_checkpoint(path: Path | None, shape: tuple[int, int]) -> tuple[np.ndarray, int] | None:
    if path is None or not path.exists():
        return None
    saved = np.load(path)
    if saved["vectors"].shape != shape:
        return None
    return saved["vectors"], int(saved["done"])


async def passage_vectors(
    embedder: Embedder, profiles: Profiles, seed: int, info: dict
) -> np.ndarray:
    """The cached vectors when present (then throughput is measured on a sample), else all."""
    n = len(profiles.ids)
    cache = _cache_for(n, seed)
    if cache.exists():
        # A larger run's cache serves too: the first n demo profiles are the same people.
        vectors = np.load(cache, mmap_mode="r")[:n].copy()
        sample = min(512, n)
        fresh, seconds = await embed_profiles(embedder, profiles.texts[:sample])
        # Batches padded differently give slightly different int8 results: compare by cosine.
        if vectors.shape != (n, DIM):
            raise BenchError(f"{cache.name} holds {vectors.shape}, not ({n}, {DIM})")
        worst = float(np.min(np.sum(fresh * vectors[:sample], axis=1)))
        if worst < 0.995:
            raise BenchError(f"{cache.name} does not match the model (cosine {worst:.4f})")
        info["embed"] = f"sample of {sample} (the other vectors came from {cache.name})"
    else:
        RESULTS.mkdir(parents=True, exist_ok=True)
        cache = RESULTS / f"discovery-vectors-n{n}-seed{seed}.npy"
        partial = cache.with_suffix(".partial.npz")
        vectors, seconds = await embed_profiles(embedder, profiles.texts, partial)
        sample = n
        np.save(cache, vectors)
        partial.unlink(missing_ok=True)
        info["embed"] = f"all {n} profiles (cached to {cache.name})"
    info["embed_rate"] = sample / seconds
    return vectors


def _cache_for(n: int, seed: int) -> Path:
    """The smallest cached vector file holding at least n profiles of `seed` (maybe absent)."""
    sizes = []
    for path in RESULTS.glob(f"discovery-vectors-n*-seed{seed}.npy"):
        size = path.name.removeprefix("discovery-vectors-n").split("-")[0]
        if size.isdigit() and int(size) >= n:
            sizes.append(int(size))
    return RESULTS / f"discovery-vectors-n{min(sizes, default=n)}-seed{seed}.npy"


def with_vectors(profiles: Profiles, vectors: np.ndarray) -> list[ProfilePoint]:
    return [
        ProfilePoint(**{**p.__dict__, "vector": v.tolist()})
        for p, v in zip(profiles.points, vectors, strict=True)
    ]


async def timed_searches(
    store: VectorStore, queries: list[Query], qvecs: np.ndarray
) -> tuple[list[float], list[list]]:
    """(latency ms, top-K ids) of store.search for each query, after a short warm-up."""
    lists = [v.tolist() for v in qvecs]
    for q, v in zip(queries[:WARMUP], lists, strict=False):
        await store.search(v, q.flt, LIMIT)
    times, tops = [], []
    for q, v in zip(queries, lists, strict=True):
        began = time.perf_counter()
        hits = await store.search(v, q.flt, LIMIT)
        times.append((time.perf_counter() - began) * 1000)
        tops.append([h.user_id for h in hits[:K]])
    return times, tops


async def end_to_end(
    embedder: Embedder, store: VectorStore, queries: list[Query], transform: neutral.Neutralizer
) -> tuple[list[float], list[float]]:
    """As `discover` does it (without hydration): embed the prompt, transform it (the index
    version's transform), then the filtered search. Returns (end-to-end ms, embedding ms)."""
    for q in queries[:WARMUP]:
        vec = (await embedder.embed_queries([q.prompt]))[0]
        await store.search(transform.queries([vec], [q.prompt])[0].tolist(), q.flt, LIMIT)
    total, embed = [], []
    for q in queries:
        began = time.perf_counter()
        vec = (await embedder.embed_queries([q.prompt]))[0]
        mid = time.perf_counter()
        await store.search(transform.queries([vec], [q.prompt])[0].tolist(), q.flt, LIMIT)
        end = time.perf_counter()
        total.append((end - began) * 1000)
        embed.append((mid - began) * 1000)
    return total, embed


def exact(
    profiles: Profiles, vectors: np.ndarray, queries: list[Query], qvecs: np.ndarray
) -> tuple[list[float], list[list]]:
    index = {uid: i for i, uid in enumerate(profiles.ids)}
    times, tops = [], []
    for q, v in zip(queries, qvecs, strict=True):
        began = time.perf_counter()
        keep = mask(profiles, q.flt, index)
        tops.append(exact_top(vectors, v, keep, profiles.ids, K))
        times.append((time.perf_counter() - began) * 1000)
    return times, tops


def recall(found: list[list], truth: list[list]) -> float:
    """Mean over queries of |found ∩ truth| / |truth| (queries with no eligible point skipped)."""
    scores = [len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True) if t]
    return sum(scores) / len(scores) if scores else 1.0


async def run(args: argparse.Namespace, info: dict) -> list[report.Row]:
    rows: list[report.Row] = []
    print(f"building {args.profiles} profiles (seed {args.seed}) ...", flush=True)
    profiles = build_profiles(args.profiles, args.seed)
    queries = make_queries(args.queries, profiles, args.seed)
    info["rss_start_mb"] = rss_kb(os.getpid()) / 1024
    embedder = Embedder.from_settings(None, RESULTS)
    began = time.perf_counter()
    await embedder.load()
    info["model_load_s"] = time.perf_counter() - began
    info["rss_model_mb"] = rss_kb(os.getpid()) / 1024
    vectors = await passage_vectors(embedder, profiles, args.seed, info)
    qvecs = np.asarray(await embedder.embed_queries([q.prompt for q in queries]), np.float32)
    # The cache holds raw embeddings; the index stores them transformed, as the app does.
    transform = await neutral.load_or_fit(
        args.transform, embedder, parallel_sentences(), RESULTS / "models"
    )
    info["transform"] = args.transform
    vectors = transform.passages(vectors, profiles.texts)
    qvecs = transform.queries(qvecs, [q.prompt for q in queries])
    points = with_vectors(profiles, vectors)

    exact_ms, truth = exact(profiles, vectors, queries, qvecs)
    info["eligible_min"] = min(len(t) for t in truth)
    tmp = Path(tempfile.mkdtemp(prefix="discovery-edge-", dir=RESULTS))
    edge = open_vector_store(qdrant_url=None, data_dir=tmp, dim=DIM)
    try:
        await edge.ensure_collection()
        began = time.perf_counter()
        await edge.upsert(points)
        info["upsert_s"] = time.perf_counter() - began
        ms, tops = await timed_searches(edge, queries, qvecs)
        rows.append(report.Row("Edge, before optimize (vector only)", ms, recall(tops, truth)))
        print(f"  upserted in {info['upsert_s']:.1f} s; optimizing ...", flush=True)
        began = time.perf_counter()
        await edge.optimize()
        info["optimize_s"] = time.perf_counter() - began
        info["count"] = await edge.count()
        info["disk_mb"], info["disk_alloc_mb"] = (b / 2**20 for b in disk_bytes(tmp))
        info["rss_built_mb"] = rss_kb(os.getpid()) / 1024
        print(f"  optimized in {info['optimize_s']:.1f} s; searching ...", flush=True)
        ms, tops = await timed_searches(edge, queries, qvecs)
        rows.append(report.Row(report.EDGE, ms, recall(tops, truth)))
        total, embed = await end_to_end(embedder, edge, queries, transform)
        rows.append(report.Row("embed the prompt only", embed, None))
        rows.append(report.Row(report.E2E, total, None))
    finally:
        await edge.close()
        shutil.rmtree(tmp, ignore_errors=True)
    rows.append(report.Row("exact numpy brute force (vector only)", exact_ms, 1.0))

    if args.profiles > args.peer_max:
        info["peer"] = (
            f"not run at {args.profiles} profiles (above --peer-max {args.peer_max}): "
            "its exact pure-Python search takes seconds per query there"
        )
        rows.append(report.Row(report.PEER, [], None))
    else:
        print("qdrant-client local mode: upserting ...", flush=True)
        peer = QdrantClientVectorStore(dim=DIM, location=":memory:")
        with warnings.catch_warnings():  # local mode warns that payload indexes do nothing
            warnings.simplefilter("ignore")
            await peer.ensure_collection()
            began = time.perf_counter()
            await peer.upsert(points)
            info["peer"] = f"upsert {time.perf_counter() - began:.1f} s"
            ms, tops = await timed_searches(peer, queries, qvecs)
        rows.append(report.Row(report.PEER, ms, recall(tops, truth)))
        await peer.close()
    embedder.close()
    return rows


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.discovery", description=__doc__)
    parser.add_argument("--profiles", type=int, default=10_000, help="indexed profiles (10000)")
    parser.add_argument("--queries", type=int, default=200, help="search prompts (200)")
    parser.add_argument("--seed", type=int, default=1, help="demo data and query seed (1)")
    parser.add_argument(
        "--peer-max", type=int, default=20_000, help="skip qdrant-client local above (20000)"
    )
    parser.add_argument(
        "--transform", choices=neutral.TRANSFORMS, default=neutral.NEUTRAL, help="vector transform"
    )
    args = parser.parse_args(argv)
    if args.profiles < 100 or args.queries < WARMUP:
        parser.error(f"--profiles must be >= 100 and --queries >= {WARMUP}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = datetime.now()
    info: dict = {}
    try:
        rows = asyncio.run(run(args, info))
    except BenchError as exc:
        print(f"bench.discovery: {exc}", file=sys.stderr)
        return 1
    command = "python -m bench.discovery " + " ".join(sys.argv[1:] if argv is None else argv)
    info["wall_s"] = (datetime.now() - started).total_seconds()
    print()
    print(report.build_table(args, info))
    print()
    print(report.console_table(rows))
    verdicts = report.verdicts(args, rows)
    for line in verdicts:
        print(line)
    path = report.write_markdown(rows, args, info, command.strip(), started, RESULTS)
    print(f"\nwritten to {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
