"""From a float :class:`~.source.SourceModel` to the integers the engines run.

Done once, at import; everything here may use floating point, because its
output is stored and every later computation is integer.

* **Weights**: int8 per output row, ``w[j, i] ~ q[j, i] * m[j] / 2**sh[j]``
  with a 15-bit multiplier ``m`` (``2**14 <= m < 2**15``) and a shift.
  RMSNorm gains are folded into the columns of the matrices that follow
  them (q/k/v, gate/up, the output head), so the engines' norm is a plain
  integer ``x / rms(x)``.
* **Biases** (Qwen2's q/k/v): Q12 integers.
* **Tables**: ``exp(-i/1024)`` in Q16 (softmax of attention scores and of
  logits), ``sigmoid(i/256)`` in Q16 (SiLU), and rotary ``cos``/``sin`` in
  Q14 for every position of the longest window.  libm's transcendental
  functions differ between platforms, so the tables are made here and
  stored, never recomputed by a decoder.
"""

from __future__ import annotations

import re

import numpy as np

from .source import MAX_HEAD_DIM, MAX_WINDOW, SourceModel, UnsupportedModelError
from .tokens import BYTE_LEVEL, SENTENCEPIECE, TokenCodec, byte_fallback_ids, token_bytes_table

ACT_BITS = 12  # activations: Q12 integers
SCORE_BITS = 10  # attention scores and logits: Q10 nats
EXP_LEN = 24 << SCORE_BITS  # exp table covers 0..24 nats
SIG_HALF = 16 << 8  # sigmoid table covers -16..16 in Q8
ROPE_BITS = 14
DEFAULT_MAX_WINDOW = 2048
DEFAULT_ACT_BITS = 8


def quantize_rows(w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """int8 rows with per-row ``(multiplier, shift)``: ``w ~ q * m / 2**sh``."""
    w = np.asarray(w, dtype=np.float64)
    amax = np.abs(w).max(axis=1)
    scale = amax / 127.0
    safe = np.where(scale > 0, scale, 1.0)
    q = np.clip(np.rint(w / safe[:, None]), -127, 127).astype(np.int8)
    frac, exp = np.frexp(safe)  # safe = frac * 2**exp, frac in [0.5, 1)
    m = np.rint(frac * (1 << 15)).astype(np.int64)
    carry = m >= 1 << 15
    m = np.where(carry, m >> 1, m)
    exp = exp + carry
    sh = 15 - exp
    dead = (scale <= 0) | (sh > 62) | (sh < 1)
    if np.any((sh < 1) & (scale > 0)):
        raise ValueError("a weight row is too large for the integer engine (|w| >= 2**14)")
    q[dead] = 0
    m = np.where(dead, 0, m)
    sh = np.where(dead, 1, sh)
    return q, m.astype(np.int32), sh.astype(np.int8)


def rope_tables(head_dim: int, theta: float, window: int, scaling: dict | None) -> tuple[np.ndarray, np.ndarray]:
    """Q14 ``cos`` and ``sin`` of every (position, frequency) in HF's rotate-half layout."""
    inv = 1.0 / theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)
    if scaling and scaling.get("rope_type") == "llama3":
        factor = float(scaling["factor"])
        low, high = float(scaling.get("low_freq_factor", 1.0)), float(scaling.get("high_freq_factor", 4.0))
        old = float(scaling.get("original_max_position_embeddings", 8192))
        wavelen = 2 * np.pi / inv
        smooth = (old / wavelen - low) / (high - low)
        scaled = np.where(wavelen > old / low, inv / factor, inv)
        mid = (wavelen <= old / low) & (wavelen >= old / high)
        inv = np.where(mid, (1 - smooth) * inv / factor + smooth * inv, scaled)
    angles = np.arange(window, dtype=np.float64)[:, None] * inv[None, :]
    one = 1 << ROPE_BITS
    return np.rint(np.cos(angles) * one).astype(np.int32), np.rint(np.sin(angles) * one).astype(np.int32)


def tables() -> dict[str, np.ndarray]:
    """The model-independent lookup tables."""
    exp = np.rint(65536.0 * np.exp(-np.arange(EXP_LEN, dtype=np.float64) / (1 << SCORE_BITS))).astype(np.int32)
    x = np.arange(-SIG_HALF, SIG_HALF, dtype=np.float64) / 256.0
    sig = np.rint(65536.0 / (1.0 + np.exp(-x))).astype(np.int32)
    return {"table.exp": exp, "table.sigmoid": sig}


def _put(arrays: dict, name: str, w: np.ndarray) -> None:
    q, m, sh = quantize_rows(w)
    arrays[name + ".q"], arrays[name + ".m"], arrays[name + ".sh"] = q, m, sh


def quantize(
    src: SourceModel, max_window: int = DEFAULT_MAX_WINDOW, act_bits: int = DEFAULT_ACT_BITS
) -> tuple[dict, dict[str, np.ndarray]]:
    """``(meta, arrays)`` for :func:`.modelfile.write`."""
    src.check()
    if not 1 <= max_window <= MAX_WINDOW:
        raise UnsupportedModelError(f"window {max_window} is outside the supported 1..{MAX_WINDOW}")
    if act_bits not in (8, 12):
        raise ValueError("activations for the products are 8 or 12 bits")
    t = {k: np.asarray(v, dtype=np.float64) for k, v in src.tensors.items()}
    n_tok = len(src.tokenizer.tokens)
    arrays: dict[str, np.ndarray] = {}
    _put(arrays, "embed", t["model.embed_tokens.weight"][:n_tok])
    qkv_bias = False
    for i in range(src.layers):
        p = f"model.layers.{i}."
        g_attn = t[p + "input_layernorm.weight"][None, :]
        g_mlp = t[p + "post_attention_layernorm.weight"][None, :]
        for part in ("q", "k", "v"):
            _put(arrays, f"l{i}.{part}", t[p + f"self_attn.{part}_proj.weight"] * g_attn)
            bias = t.get(p + f"self_attn.{part}_proj.bias")
            if bias is not None:
                qkv_bias = True
                arrays[f"l{i}.{part}.bias"] = np.rint(bias * (1 << ACT_BITS)).astype(np.int32)
        _put(arrays, f"l{i}.o", t[p + "self_attn.o_proj.weight"])
        _put(arrays, f"l{i}.gate", t[p + "mlp.gate_proj.weight"] * g_mlp)
        _put(arrays, f"l{i}.up", t[p + "mlp.up_proj.weight"] * g_mlp)
        _put(arrays, f"l{i}.down", t[p + "mlp.down_proj.weight"])
    head = t["lm_head.weight"] if "lm_head.weight" in t else t["model.embed_tokens.weight"]
    _put(arrays, "output", head[:n_tok] * t["model.norm.weight"][None, :])
    cos, sin = rope_tables(src.head_dim, src.rope_theta, max_window, src.rope_scaling)
    arrays["rope.cos"], arrays["rope.sin"] = cos, sin
    arrays.update(tables())
    tb = token_bytes_table(src.tokenizer.tokens, src.tokenizer.kind)
    arrays["tokens.bytes"] = np.frombuffer(b"".join(tb), dtype=np.uint8).copy()
    arrays["tokens.offsets"] = np.cumsum([0] + [len(b) for b in tb]).astype(np.int64)
    index = {tok: i for i, tok in enumerate(src.tokenizer.tokens)}
    merges = [(index[a], index[b]) for a, b in src.tokenizer.merges if a in index and b in index]
    arrays["tokens.merges"] = np.array(merges, dtype=np.int32).reshape(-1, 2)
    if src.tokenizer.kind == SENTENCEPIECE:
        arrays["tokens.byte_ids"] = np.array(byte_fallback_ids(src.tokenizer.tokens), dtype=np.int32)
    meta = {
        "arch": src.arch,
        "hidden": src.hidden,
        "layers": src.layers,
        "heads": src.heads,
        "kv_heads": src.kv_heads,
        "head_dim": src.head_dim,
        "intermediate": src.intermediate,
        "vocab": n_tok,
        "rms_eps_q24": round(src.rms_eps * (1 << 2 * ACT_BITS)),
        "qkv_bias": qkv_bias,
        "max_window": max_window,
        "act_bits": act_bits,
        "tied": src.tied,
        "bos": src.tokenizer.bos_id if src.tokenizer.bos_id is not None and src.tokenizer.bos_id < n_tok else 0,
        "tokenizer": src.tokenizer.kind,
        "patterns": list(src.tokenizer.patterns),
    }
    return meta, arrays


def token_codec(meta: dict, arrays: dict[str, np.ndarray]) -> TokenCodec:
    """The tokenizer of a stored model."""
    raw = arrays["tokens.bytes"].tobytes()
    off = arrays["tokens.offsets"]
    table = [raw[off[i] : off[i + 1]] for i in range(len(off) - 1)]
    byte_ids = frozenset(int(i) for i in arrays.get("tokens.byte_ids", ()))
    return TokenCodec(meta["tokenizer"], table, np.asarray(arrays["tokens.merges"]), tuple(meta["patterns"]), byte_ids)


_INT_KINDS = {"tokens.offsets": "iu", "tokens.bytes": "u", "tokens.merges": "iu", "tokens.byte_ids": "iu",
              "table.exp": "iu", "table.sigmoid": "iu", "rope.cos": "i", "rope.sin": "i", "embed.q": "i",
              "output.q": "i", "embed.m": "iu", "embed.sh": "iu", "output.m": "iu", "output.sh": "iu"}  # fmt: skip
_META_INTS = ("hidden", "layers", "heads", "kv_heads", "head_dim", "intermediate", "vocab", "max_window", "bos")


def validate(meta: dict, arrays: dict[str, np.ndarray]) -> str | None:
    """What is wrong with a stored model's description and tensors (None when nothing is)."""
    for key in _META_INTS:
        if not isinstance(meta.get(key), int) or isinstance(meta.get(key), bool) or meta[key] < 0:
            return f"meta field {key!r} is missing or invalid"
    if meta.get("act_bits", 12) not in (8, 12) or meta.get("tokenizer") not in (BYTE_LEVEL, SENTENCEPIECE):
        return "meta field 'act_bits' or 'tokenizer' is invalid"
    patterns = meta.get("patterns")
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        return "meta field 'patterns' is invalid"
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error:
            return "meta field 'patterns' holds an invalid pattern"
    h, v, d, w = meta["hidden"], meta["vocab"], meta["head_dim"], meta["max_window"]
    shape_ok = 0 < h <= 8192 and 0 < v and 0 < d <= MAX_HEAD_DIM and d % 2 == 0 and 0 < w <= MAX_WINDOW
    if not (shape_ok and meta["heads"] > 0 and meta["bos"] < v):
        return "model shape is invalid"
    if meta["kv_heads"] <= 0 or meta["heads"] % meta["kv_heads"]:
        return "head counts are invalid"
    want: dict[str, tuple] = {
        "embed.q": (v, h), "output.q": (v, h), "rope.cos": (w, d // 2), "rope.sin": (w, d // 2),
    }  # fmt: skip
    for i in range(meta["layers"]):
        want[f"l{i}.q.q"] = (meta["heads"] * d, h)
        want[f"l{i}.k.q"] = want[f"l{i}.v.q"] = (meta["kv_heads"] * d, h)
        want[f"l{i}.o.q"] = (h, meta["heads"] * d)
        want[f"l{i}.gate.q"] = want[f"l{i}.up.q"] = (meta["intermediate"], h)
        want[f"l{i}.down.q"] = (h, meta["intermediate"])
    for name, shape in want.items():
        arr = arrays.get(name)
        if arr is None or tuple(arr.shape) != shape:
            return f"tensor {name!r} is missing or has the wrong shape"
        if name.endswith(".q"):
            if arr.dtype != np.int8:
                return f"tensor {name!r} is not int8"
            base = name[:-2]
            for part in (".m", ".sh"):
                extra = arrays.get(base + part)
                if extra is None or tuple(extra.shape) != (shape[0],):
                    return f"tensor {base + part!r} is missing or has the wrong shape"
            sh, m = np.asarray(arrays[base + ".sh"]), np.asarray(arrays[base + ".m"])
            if sh.dtype.kind not in "iu" or m.dtype.kind not in "iu":
                return f"tensor {base!r} has non-integer scales"
            if sh.size and (sh.min() < 1 or sh.max() > 62):
                return f"tensor {base + '.sh'!r} holds shifts outside 1..62"
            if m.size and (m.min() < 0 or m.max() >= 1 << 15):
                return f"tensor {base + '.m'!r} holds multipliers outside 0..2**15-1"
    for name, arr in arrays.items():
        if name.endswith(".bias") and (arr.dtype.kind != "i" or arr.shape != arrays.get(name[:-5] + ".m", arr).shape):
            return f"tensor {name!r} is invalid"
    for name, kind in _INT_KINDS.items():
        if name in arrays and arrays[name].dtype.kind not in kind:
            return f"tensor {name!r} has dtype {arrays[name].dtype}"
    off = arrays.get("tokens.offsets")
    raw = arrays.get("tokens.bytes")
    if off is None or raw is None or off.ndim != 1 or raw.ndim != 1:
        return "token table is invalid"
    if off.shape != (v + 1,) or off[0] != 0 or off[-1] != raw.shape[0]:
        return "token table is invalid"
    if np.any(np.diff(np.asarray(off)) < 0):
        return "token table is invalid"
    for table in ("table.exp", "table.sigmoid"):
        if table not in arrays or arrays[table].ndim != 1 or arrays[table].shape[0] < 2:
            return f"table {table!r} is missing"
        if arrays[table].min() < 0 or arrays[table].max() > 1 << 16:
            return f"table {table!r} is out of range"
    exp = arrays["table.exp"]
    if exp[0] == 0 or exp[-1] != 0:  # a softmax needs e(0) > 0; masked keys take the last entry, which must be 0
        return "table 'table.exp' is out of range"
    byte_ids = arrays.get("tokens.byte_ids")
    if byte_ids is not None and (byte_ids.ndim != 1 or (byte_ids.size and (byte_ids.min() < 0 or byte_ids.max() >= v))):
        return "byte token table is invalid"
    merges = arrays.get("tokens.merges")
    if merges is None or merges.ndim != 2 or (merges.size and (merges.min() < 0 or merges.max() >= v)):
        return "merge table is invalid"
    return None
