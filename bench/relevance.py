"""Discovery relevance on the labelled bilingual set in tests/data/relevance.

    .venv/bin/python -m bench.relevance [--variants all|shipped] [--transform NAME] [--misses]

80 people (Chinese, English and mixed profiles; near-duplicates such as two cooks in different
cities) and 176 prompts, each with the person meant (`relevant`: key -> grade, 2 = the one
meant), half of them in the other language than that person's profile, 30 with filters. The
`dev` split (64 people, 128 prompts) was written first and the remedies were chosen on it; the
`holdout` split (16 more people, 48 prompts) was written afterwards, before any figure on it
was seen. Every prompt searches all 80 people.

The "shipped" row goes through the code discovery runs: `indexing.document_text`, the real
`Embedder`, the `VectorIndex` of the configured transform over a real Edge store, filters made
by `discovery._filter`. The other rows are the remedies tried, computed here from the same
embeddings. Prints top-1, MRR@10 and nDCG@10 per language pair (prompt language -> profile
language; mixed profiles count as Chinese, their grammar) and one table of all variants.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np

from bench.harness import BENCH, ROOT
from src.ai import neutral
from src.ai.embeddings import Embedder
from src.ai.index import IndexVersion, VectorIndex
from src.ai.vector_store import ProfilePoint, SearchFilter, open_vector_store
from src.resolvers import demo_data
from src.resolvers.calendar import local_day
from src.resolvers.discovery import Criteria, _filter
from src.resolvers.indexing import ProjectText, document_text, normalize_city

DATA = ROOT / "tests" / "data" / "relevance"
RESULTS = BENCH / "results"
K = 10
PAIRS = ("zh->zh", "en->en", "zh->en", "en->zh")


@dataclass
class LabelledSet:
    people: list[dict]
    prompts: list[dict]
    texts: list[str] = field(default_factory=list)
    points: list[ProfilePoint] = field(default_factory=list)

    def key_of(self, user_id: uuid.UUID) -> str:
        return self.people[[p.user_id for p in self.points].index(user_id)]["key"]


def person_id(key: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"qiaoqiao:relevance:{key}")


def load_set() -> LabelledSet:
    """The people as the index sees them (text and payload), and the prompts."""
    people = json.loads((DATA / "people.json").read_text())
    prompts = json.loads((DATA / "prompts.json").read_text())
    aliases = {
        i["name"]: i["aliases"]
        for i in json.loads((ROOT / "migrations/data/institutions.json").read_text())
    }
    labelled = LabelledSet(people, prompts)
    for p in people:
        inst = p.get("institution")
        labelled.texts.append(
            document_text(
                nickname=p["nickname"],
                bio=p.get("bio"),
                interests=p.get("interests", []),
                looking_for=p.get("lookingFor"),
                city=p.get("city"),
                institution=(inst, aliases[inst]) if inst else None,
                projects=[
                    ProjectText(j["title"], j.get("role"), j.get("description"), j.get("tags", []))
                    for j in p.get("projects", [])
                ],
            )
        )
        labelled.points.append(
            ProfilePoint(
                user_id=person_id(p["key"]),
                vector=[],
                city=normalize_city(p.get("city")),
                institution_id=None,
                gender=p["gender"],
                birth_year=date.fromisoformat(p["birthDate"]).year,
            )
        )
    return labelled


def search_filter(prompt: dict) -> SearchFilter:
    f = prompt.get("filter") or {}
    criteria = Criteria(
        city=f.get("city"), gender=f.get("gender"), min_age=f.get("minAge"), max_age=f.get("maxAge")
    )
    return _filter(criteria, frozenset(), local_day(datetime.now(UTC)))


def admitted(point: ProfilePoint, flt: SearchFilter) -> bool:
    """What the stores' filter admits (tests/test_vector_store.py holds them to this)."""
    year = point.birth_year if point.birth_year is not None else -1
    return (
        (flt.city is None or point.city == flt.city)
        and (flt.gender is None or point.gender == flt.gender)
        and (flt.min_birth_year is None or year >= flt.min_birth_year)
        and (flt.max_birth_year is None or 0 <= year <= flt.max_birth_year)
    )


# -- metrics -------------------------------------------------------------------------------


def pair_of(labelled: LabelledSet, prompt: dict) -> str:
    target = max(prompt["relevant"], key=prompt["relevant"].get)
    person = next(p for p in labelled.people if p["key"] == target)
    return f"{prompt['lang']}->{person['lang']}"


def metrics(ranked: list[str], relevant: dict[str, int]) -> tuple[float, float, float]:
    """(top-1, reciprocal rank within K, nDCG@K) of one ranking; grade 2 is the one meant."""
    first = next((r for r, key in enumerate(ranked[:K]) if relevant.get(key, 0) == 2), None)
    dcg = sum(
        (2 ** relevant.get(key, 0) - 1) / math.log2(r + 2) for r, key in enumerate(ranked[:K])
    )
    grades = sorted(relevant.values(), reverse=True)[:K]
    ideal = sum((2**g - 1) / math.log2(r + 2) for r, g in enumerate(grades))
    return float(first == 0), 0.0 if first is None else 1 / (first + 1), dcg / ideal


@dataclass
class Report:
    """Sums per language pair: [prompts, top-1, MRR@10, nDCG@10]."""

    pairs: dict[str, list[float]] = field(default_factory=dict)
    misses: list[tuple[str, str, list[str]]] = field(default_factory=list)

    def add(self, pair: str, prompt: dict, ranked: list[str]) -> None:
        top1, rr, ndcg = metrics(ranked, prompt["relevant"])
        sums = self.pairs.setdefault(pair, [0, 0.0, 0.0, 0.0])
        for i, value in enumerate((1, top1, rr, ndcg)):
            sums[i] += value
        if not top1:
            self.misses.append((prompt["prompt"], max(prompt["relevant"]), ranked[:3]))

    def mean(self, which: str, column: int) -> float:
        """`which`: a pair, "same", "cross" or "all"; column 1 top-1, 2 MRR@10, 3 nDCG@10."""

        def chosen(pair: str) -> bool:
            same = pair.split("->")[0] == pair.split("->")[1]
            return (
                which in ("all", pair)
                or (which == "same" and same)
                or (which == "cross" and not same)
            )

        rows = [v for k, v in self.pairs.items() if chosen(k)]
        count = sum(v[0] for v in rows)
        return sum(v[column] for v in rows) / count if count else float("nan")

    def count(self, which: str) -> int:
        return int(sum(v[0] for k, v in self.pairs.items() if k == which))


def judge(labelled: LabelledSet, scores: np.ndarray, split: str) -> Report:
    """Rank everyone by `scores` (prompts x people) within each prompt's filter."""
    report = Report()
    keys = [p["key"] for p in labelled.people]
    for i, prompt in enumerate(labelled.prompts):
        if split not in ("all", prompt["split"]):
            continue
        flt = search_filter(prompt)
        order = [int(j) for j in np.argsort(-scores[i], kind="stable")]
        ranked = [keys[j] for j in order if admitted(labelled.points[j], flt)]
        report.add(pair_of(labelled, prompt), prompt, ranked)
    return report


# -- the shipped path ------------------------------------------------------------------------


async def shipped(
    labelled: LabelledSet, embedder: Embedder, transform: str, cache: Path, split: str = "all"
) -> Report:
    """Through `VectorIndex` over a fresh Edge store, as discovery searches."""
    work = Path(tempfile.mkdtemp(prefix="relevance-"))

    async def transforms(name: str) -> neutral.Neutralizer:
        return await neutral.load_or_fit(name, embedder, demo_data.parallel_sentences(), cache)

    async def names() -> list[str]:
        return []

    version = IndexVersion(embedder.identity, embedder.dim, transform, 1)
    index = VectorIndex(
        version,
        open_store=lambda name: open_vector_store(
            qdrant_url=None, data_dir=work, dim=embedder.dim, collection=name
        ),
        list_names=names,
        transforms=transforms,
    )
    try:
        await index.open()
        await index.begin_build()
        raw = await embedder.embed_passages(labelled.texts)
        points = [
            ProfilePoint(**{**p.__dict__, "vector": list(v)})
            for p, v in zip(labelled.points, raw, strict=True)
        ]
        await index.upsert_building(points, labelled.texts)
        await index.finish_build()
        chosen = [q for q in labelled.prompts if split in ("all", q["split"])]
        queries = await embedder.embed_queries([q["prompt"] for q in chosen])
        report = Report()
        for prompt, vector in zip(chosen, queries, strict=True):
            hits = await index.search(list(vector), search_filter(prompt), K, text=prompt["prompt"])
            ranked = [labelled.key_of(h.user_id) for h in hits]
            report.add(pair_of(labelled, prompt), prompt, ranked)
        return report
    finally:
        await index.close()
        shutil.rmtree(work, ignore_errors=True)


# -- the remedies tried ------------------------------------------------------------------------


def _normalized(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def glossary() -> list[tuple[str, str]]:
    """zh <-> en terms from the demo tables (jobs, interests, cities, schools, companies)."""
    pairs = [
        (z, e.split(" ", 1)[1] if e.startswith(("a ", "an ")) else e)
        for z, e, *_ in demo_data.OCCUPATIONS
    ]
    pairs += list(demo_data.INTERESTS)
    pairs += [(z, e) for z, e, _ in demo_data.CITIES + demo_data.UNIVERSITIES + demo_data.COMPANIES]
    return [(z, e) for z, e in pairs if z != e]


def bilingual(text: str, terms: list[tuple[str, str]]) -> str:
    """`text` with the other language's word for each glossary term it contains."""
    low, extra = text.lower(), []
    for zh, en in terms:
        if zh in text and en.lower() not in low:
            extra.append(en)
        elif re.search(rf"\b{re.escape(en.lower())}\b", low) and zh not in text:
            extra.append(zh)
    return f"{text} ({', '.join(extra)})" if extra else text


def lexical(prompts: list[str], texts: list[str]) -> np.ndarray:
    """IDF-weighted share of a prompt's words (Chinese: character pairs) a profile contains."""

    def words(text: str) -> set[str]:
        out: set[str] = set()
        for w in re.findall(r"[\w']+", text.lower()):
            if re.search(r"[\u4e00-\u9fff]", w):
                out |= {w[i : i + 2] for i in range(len(w) - 1)} or {w}
            elif len(w) > 2:
                out.add(w)
        return out

    docs = [words(t) for t in texts]
    df: dict[str, int] = {}
    for d in docs:
        for w in d:
            df[w] = df.get(w, 0) + 1

    def idf(w: str) -> float:
        return math.log(1 + len(docs) / df.get(w, 0.5))

    out = np.zeros((len(prompts), len(texts)), dtype=np.float32)
    for i, prompt in enumerate(prompts):
        q = words(prompt)
        total = sum(idf(w) for w in q) or 1.0
        for j, d in enumerate(docs):
            out[i, j] = sum(idf(w) for w in q & d) / total
    return out


Variant = Callable[[], np.ndarray]


async def variants(labelled: LabelledSet, embedder: Embedder, cache: Path) -> dict[str, Variant]:
    """Score matrices (prompts x people) of each remedy tried."""
    prompts = [q["prompt"] for q in labelled.prompts]
    p_raw = np.asarray(await embedder.embed_passages(labelled.texts), np.float32)
    q_raw = np.asarray(await embedder.embed_queries(prompts), np.float32)
    pairs = demo_data.parallel_sentences()
    fitted = await neutral.load_or_fit(neutral.NEUTRAL, embedder, pairs, cache)
    zh, en = [p[0] for p in pairs], [p[1] for p in pairs]
    calib = [
        np.asarray(await f(t), np.float32)
        for f in (embedder.embed_queries, embedder.embed_passages)
        for t in (zh, en)
    ]
    terms = glossary()
    p_gl = np.asarray(
        await embedder.embed_passages([bilingual(t, terms) for t in labelled.texts]), np.float32
    )
    q_gl = np.asarray(
        await embedder.embed_queries([bilingual(t, terms) for t in prompts]), np.float32
    )
    lex = lexical([bilingual(t, terms) for t in prompts], labelled.texts)

    def with_k(k: int, center: bool = True) -> Variant:
        def run() -> np.ndarray:
            n = neutral.fit("variant", *calib, k=k)
            if not center:
                zero = np.zeros_like(n.query_means)
                n = replace(n, query_means=zero, passage_means=zero)
            return n.queries(q_raw, prompts) @ n.passages(p_raw, labelled.texts).T

        return run

    def neutral_scores(
        q: np.ndarray, p: np.ndarray, q_texts: list[str], p_texts: list[str]
    ) -> np.ndarray:
        return fitted.queries(q, q_texts) @ fitted.passages(p, p_texts).T

    gl_prompts = [bilingual(t, terms) for t in prompts]
    gl_texts = [bilingual(t, terms) for t in labelled.texts]
    return {
        "e5 as is (before)": lambda: q_raw @ p_raw.T,
        "hybrid: + lexical (0.05)": lambda: q_raw @ p_raw.T + 0.05 * lex,
        "bilingual glossary, prompt + profile": lambda: q_gl @ p_gl.T,
        "centering only": with_k(0),
        "projection only (k=16)": with_k(16, center=False),
        "centering + projection k=8": with_k(8),
        "centering + projection k=16 (shipped)": lambda: neutral_scores(
            q_raw, p_raw, prompts, labelled.texts
        ),
        "centering + projection k=32": with_k(32),
        "shipped + glossary": lambda: neutral_scores(q_gl, p_gl, gl_prompts, gl_texts),
        "shipped + lexical (0.05)": lambda: (
            neutral_scores(q_raw, p_raw, prompts, labelled.texts) + 0.05 * lex
        ),
    }


# -- output ------------------------------------------------------------------------------------


def pair_table(report: Report) -> list[str]:
    lines = ["| pair | prompts | top-1 | MRR@10 | nDCG@10 |", "|---|---:|---:|---:|---:|"]
    for which in (*PAIRS, "same", "cross", "all"):
        count = report.count(which) if "->" in which else None
        if count == 0:
            continue
        lines.append(
            f"| {which} | {'' if count is None else count} | {report.mean(which, 1):.3f} "
            f"| {report.mean(which, 2):.3f} | {report.mean(which, 3):.3f} |"
        )
    return lines


def summary_row(name: str, reports: dict[str, Report]) -> str:
    cells = []
    for split in ("dev", "holdout"):
        r = reports[split]
        cells += [
            f"{r.mean('same', 1):.3f}",
            f"{r.mean('cross', 1):.3f}",
            f"{r.mean('all', 2):.3f}",
        ]
        cells.append(f"{r.mean('all', 3):.3f}")
    return f"| {name} | " + " | ".join(cells) + " |"


SUMMARY_HEAD = [
    "| variant | dev same top-1 | dev cross top-1 | dev MRR@10 | dev nDCG@10 "
    "| holdout same top-1 | holdout cross top-1 | holdout MRR@10 | holdout nDCG@10 |",
    "|---|" + "---:|" * 8,
]


async def run(args: argparse.Namespace) -> list[str]:
    labelled = load_set()
    cache = RESULTS / "models"
    embedder = Embedder.from_settings(None, RESULTS)
    cross = sum(1 for q in labelled.prompts if len(set(pair_of(labelled, q).split("->"))) == 2)
    filtered = sum(1 for q in labelled.prompts if q.get("filter"))
    out = [
        f"{len(labelled.people)} people, {len(labelled.prompts)} prompts "
        f"({cross} across languages, {filtered} with filters)",
        "",
    ]
    for split in ("all", "dev", "holdout"):
        report = await shipped(labelled, embedder, args.transform, cache, split)
        out += [f"shipped path, transform {args.transform}, {split} prompts:"]
        out += [*pair_table(report), ""]
        if split == "all" and args.misses:
            out += [f"  miss: {m[0]!r} meant {m[1]}, got {m[2]}" for m in report.misses] + [""]
    if args.variants == "all":
        out += ["all variants (exact search over the same embeddings):", *SUMMARY_HEAD]
        for name, scores in (await variants(labelled, embedder, cache)).items():
            matrix = scores()
            reports = {split: judge(labelled, matrix, split) for split in ("dev", "holdout")}
            out.append(summary_row(name, reports))
    embedder.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.relevance", description=__doc__)
    parser.add_argument("--variants", choices=("all", "shipped"), default="all")
    parser.add_argument("--misses", action="store_true", help="list the prompts missed at top-1")
    parser.add_argument(
        "--transform", choices=neutral.TRANSFORMS, default=neutral.NEUTRAL, help="shipped path's"
    )
    args = parser.parse_args(argv)
    lines = asyncio.run(run(args))
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"relevance-{args.transform}.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
