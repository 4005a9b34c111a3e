"""Workload B's console tables and Markdown report (bench/results/discovery-<date>-<time>.md)."""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bench.report import machine
from src.ai.embeddings import DEFAULT_MODEL
from src.ai.vector_store.base import DEFAULT_HNSW_EF

EDGE = "Edge, after optimize (vector only)"
E2E = "end to end: embed + Edge search"
PEER = "qdrant-client local :memory: (vector only)"
TARGET_P50_MS = 30.0
TARGET_RECALL = 0.95
TARGET_AT = 100_000
HEADERS = ["path", "p50 ms", "p99 ms", "mean ms", f"recall@{20}", "p50 × peer"]


@dataclass
class Row:
    name: str
    ms: list[float]  # one latency per query; empty: not run
    recall: float | None  # None: not a search against the index (or not measured)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def _find(rows: list[Row], name: str) -> Row | None:
    return next((r for r in rows if r.name == name and r.ms), None)


def _cells(row: Row, peer: Row | None) -> list[str]:
    if not row.ms:
        return [row.name, "—", "—", "—", "—", "not run"]
    p50 = percentile(row.ms, 50)
    ratio = f"{p50 / percentile(peer.ms, 50):.3f}×" if peer and row is not peer else "—"
    return [
        row.name,
        f"{p50:.2f}",
        f"{percentile(row.ms, 99):.2f}",
        f"{sum(row.ms) / len(row.ms):.2f}",
        "—" if row.recall is None else f"{row.recall:.3f}",
        ratio,
    ]


def _table(headers: list[str], lines: list[list[str]], markdown: bool) -> str:
    if markdown:
        out = ["| " + " | ".join(headers) + " |", "|---|" + "---:|" * (len(headers) - 1)]
        return "\n".join(out + ["| " + " | ".join(line) + " |" for line in lines])
    widths = [max(len(line[i]) for line in [headers, *lines]) for i in range(len(headers))]

    def fmt(line: list[str]) -> str:
        rest = [c.rjust(w) for c, w in zip(line[1:], widths[1:], strict=True)]
        return " | ".join([line[0].ljust(widths[0]), *rest])

    rule = "-+-".join("-" * w for w in widths)
    return "\n".join([fmt(headers), rule, *(fmt(line) for line in lines)])


def console_table(rows: list[Row], markdown: bool = False) -> str:
    peer = _find(rows, PEER)
    return _table(HEADERS, [_cells(r, peer) for r in rows], markdown)


def _build_lines(args: argparse.Namespace, info: dict) -> list[list[str]]:
    return [
        ["profiles indexed (Edge count)", f"{info.get('count', 0):,}"],
        ["passage embedding", f"{info['embed_rate']:.0f} profiles/s ({info['embed']})"],
        ["model load", f"{info['model_load_s']:.1f} s"],
        ["vector transform", info.get("transform", "none")],
        ["Edge upsert", f"{info['upsert_s']:.2f} s"],
        ["Edge optimize() (child process)", f"{info['optimize_s']:.1f} s"],
        [
            "Edge directory on disk: apparent / allocated",
            f"{info['disk_mb']:.1f} / {info['disk_alloc_mb']:.1f} MB",
        ],
        [
            "RSS: start / model loaded / index built",
            f"{info['rss_start_mb']:.0f} / {info['rss_model_mb']:.0f} / "
            f"{info['rss_built_mb']:.0f} MB",
        ],
        ["qdrant-client local mode", info.get("peer", "—")],
        ["queries; smallest eligible set", f"{args.queries}; {info['eligible_min']} profiles"],
    ]


def build_table(args: argparse.Namespace, info: dict, markdown: bool = False) -> str:
    return _table(
        ["index build", f"{args.profiles:,} profiles"], _build_lines(args, info), markdown
    )


def verdicts(args: argparse.Namespace, rows: list[Row]) -> list[str]:
    out = []
    e2e, edge = _find(rows, E2E), _find(rows, EDGE)
    where = (
        f"at {args.profiles:,} profiles"
        if args.profiles >= TARGET_AT
        else f"at {args.profiles:,} profiles (the target is stated at {TARGET_AT:,}; "
        "run --profiles 100000 for the verdict that counts)"
    )
    if e2e:
        p50 = percentile(e2e.ms, 50)
        met = "MET" if p50 <= TARGET_P50_MS else "NOT MET"
        out.append(f"target p50 end to end <= {TARGET_P50_MS:.0f} ms: {met} ({p50:.1f} ms) {where}")
    if edge and edge.recall is not None:
        met = "MET" if edge.recall >= TARGET_RECALL else "NOT MET"
        out.append(
            f"target recall@20 >= {TARGET_RECALL}: {met} ({edge.recall:.3f}) "
            f"at {args.profiles:,} profiles"
        )
    out.append("End to end leaves out the SQL hydration (_still_visible + loading the page).")
    return out


def write_markdown(
    rows: list[Row],
    args: argparse.Namespace,
    info: dict,
    command: str,
    started: datetime,
    directory: Path,
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"discovery-{started:%Y-%m-%d-%H%M%S}.md"
    lines = [
        f"# Workload B: discovery, {args.profiles:,} profiles",
        "",
        f"- command: `{command}`",
        f"- date: {started:%Y-%m-%d %H:%M:%S}, wall time {info['wall_s']:.0f} s",
        f"- machine: {machine()}",
        f"- model: {DEFAULT_MODEL} int8 (the Embedder's default), Edge store as "
        "`open_vector_store(qdrant_url=None)` makes it (HNSW m=16, ef_construct=100, "
        f"hnsw_ef={DEFAULT_HNSW_EF})",
        f"- queries: {args.queries} prompts (Chinese and English), about half with city/gender/"
        "age filters, each excluding 50 random profile ids; the store is asked for 21 hits "
        "(first 20 + 1) as `discover` does; recall@20 against exact numpy brute force with the "
        "same filters and exclusions",
        "",
        build_table(args, info, markdown=True),
        "",
        console_table(rows, markdown=True),
        "",
        *(f"- {line}" for line in verdicts(args, rows)),
        "",
        "Latencies are per query, one at a time, in this process (asyncio, the store's thread "
        "hop included). `p50 × peer` divides by qdrant-client local mode's p50 in the same run.",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path
