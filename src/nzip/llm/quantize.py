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

import numpy as np

from .source import SourceModel
from .tokens import TokenCodec, token_bytes_table

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
    return TokenCodec(meta["tokenizer"], table, np.asarray(arrays["tokens.merges"]), tuple(meta["patterns"]))
