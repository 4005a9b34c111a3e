"""Discovery relevance on the labelled bilingual set (tests/data/relevance) as a regression
floor: the shipped index (document builder, model, language-neutral transform, Edge search with
filters) must keep finding the person each prompt means, in either language.

`python -m bench.relevance` prints the same figures per language pair, and the other remedies
tried; docs/benchmarks.md has the table.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.relevance import load_set, shipped
from src.ai.embeddings import Embedder
from src.config import Settings

# Reached on this set (all 176 prompts): same-language top-1 1.000, cross-language 0.909,
# MRR@10 0.974. The floors leave room for two or three prompts flipping with int8 rounding on
# another CPU, not for a regression of the transform (without it cross-language is ~0.29).
SAME_TOP1, CROSS_TOP1, MRR = 0.97, 0.88, 0.95


@pytest.fixture(scope="module")
def embedder(model_dir: Path) -> Embedder:
    return Embedder.from_settings(None, model_dir)


async def test_relevance_floor(embedder: Embedder, model_dir: Path) -> None:
    labelled = load_set()
    assert len(labelled.people) >= 60 and len(labelled.prompts) >= 120
    # The transform a server runs with by default, so changing what ships is held to the floor.
    transform = Settings.model_fields["vector_transform"].default
    report = await shipped(labelled, embedder, transform, model_dir / "models")
    figures = {
        "same": report.mean("same", 1),
        "cross": report.mean("cross", 1),
        "mrr": report.mean("all", 2),
    }
    misses = "\n".join(f"{m[0]!r} meant {m[1]}, got {m[2]}" for m in report.misses)
    assert figures["same"] >= SAME_TOP1, (figures, misses)
    assert figures["cross"] >= CROSS_TOP1, (figures, misses)
    assert figures["mrr"] >= MRR, (figures, misses)


def test_labelled_set_is_well_formed() -> None:
    labelled = load_set()
    keys = [p["key"] for p in labelled.people]
    assert len(set(keys)) == len(keys)
    ids = [q["id"] for q in labelled.prompts]
    assert len(set(ids)) == len(ids)
    across = sum(
        1
        for q in labelled.prompts
        if q["lang"] != next(p["lang"] for p in labelled.people if p["key"] in q["relevant"])
    )
    assert across * 2 >= len(labelled.prompts)  # half across languages
    assert sum(1 for q in labelled.prompts if q.get("filter")) >= 20
    for q in labelled.prompts:
        assert set(q["relevant"]) <= set(keys) and 2 in q["relevant"].values(), q["id"]
