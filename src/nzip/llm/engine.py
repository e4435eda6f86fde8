"""Integer-exact inference of a Llama/Qwen2 model, written once over an array backend.

Every value that reaches the coder is an integer computed the same way on
every machine.  Activations are Q12 integers (units of 1/4096) held in int64.
Matrix products take int8 weights and integer activations as float64: with
activations clipped to ``|x| <= 2**24`` each product is below 2**31 and every
partial sum, in any order and with or without fused multiply-add, is an
integer below 2**53, so float64 arithmetic is exact.  Attention follows
:mod:`.attention` (arithmetic 2: a 12-bit KV cache) or, for archives made
with arithmetic 1, Q12 queries and keys clipped to 2**20 in float64
products with Q16 attention weights.  Everything else is int64 arithmetic::

    x        = embed.q[tok] * embed.m >> (embed.sh - 12)                   Q12
    norm(x)  = x * 2**20 / isqrt((sum(x*x) / n + eps) * 2**16)             Q12 (gain folded into W)
    W(x)     = (x @ W.q^T) * W.m >> W.sh  (+ bias)                         Q12
    rope     = x1 * cos - x2 * sin >> 14, x2 * cos + x1 * sin >> 14        tables in Q14
    score    = (q . k) * round(2**16 / sqrt(d)) >> 30                      Q10 nats (arithmetic 1)
    attn     = sum(EXP[max - score] * v) / sum(EXP[max - score])           EXP: Q16 table
    mlp      = down((gate * SIGMOID[gate >> 4] >> 16) * up >> 12)
    logits   = (x @ out.q^T) * out.m >> (out.sh + 2)                       Q10 nats

Divisions round half up, shifts round to nearest (``+ 2**(s-1)`` first), and
:func:`isqrt` is the exact integer square root (a float guess corrected
with integer comparisons).  Because no step depends on how many tokens or
lanes are evaluated together, the encoder may run a whole window in one pass
while the decoder steps one token at a time and both see the same logits.

:class:`.engine_numpy.NumpyBackend` runs on numpy (BLAS for the products) and numba;
:mod:`.engine_torch` supplies the same operations on PyTorch (CPU or CUDA).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .engine_numpy import NumpyBackend
from .quantize import ACT_BITS, ROPE_BITS, SCORE_BITS

CLIP_ACT = 1 << 24  # activations entering a product or the norm
CLIP_QKV = 1 << 20  # queries, keys and values entering attention
CLIP_ACC = 1 << 47  # product sums before rescaling (keeps acc * m inside int64)
MS_LIMIT = (1 << 46) - 1
NEG = -(1 << 40)
ARITHMETICS = (1, 2)  # 1: Q12 attention over a float64 cache; 2: quantized rows (.attention)


def cache_bytes_per_lane(meta: dict, window: int, arithmetic: int) -> int:
    """KV cache memory of one lane."""
    rows = meta["layers"] * meta["kv_heads"] * window
    return 2 * rows * (8 * meta["head_dim"] if arithmetic == 1 else 2 * meta["head_dim"] + 8)


def rshift_round(x, s):
    """``round(x / 2**s)`` (half up) for ``s >= 1``."""
    return (x + (1 << (s - 1))) >> s


@dataclass
class Linear:
    """One quantized matrix, ready for products: transposed int8 weights as floats, rescale factors.

    With 12-bit activations the weights are one float64 ``(in, out)`` array;
    with 8-bit activations whatever the backend's exact int8 product takes
    (float32 pieces of at most :data:`.engine_numpy.MAX_INNER32` rows on numpy, so that
    every partial sum is exact in float32; int8 for ``torch._int_mm``).
    """

    w: object  # (in, out) float64, or the 8-bit weights in the backend's form (``weights8``)
    m: object  # (out,) int64
    sh: object  # (out,) int64
    half: object  # (out,) int64: 2**(sh - 1), the rounding term
    bias: object | None = None
    pieces: bool = False  # True: the 8-bit path


@dataclass
class Cache:
    """Keys and values of every layer for a batch of lanes: ``(lanes, kv_heads, window, head_dim)`` each.

    Arithmetic 1 holds them as float64 Q12; arithmetic 2 as int16 rows with
    their scales ``kr``, ``vr`` ``(lanes, kv_heads, window)`` (:mod:`.attention`).
    """

    k: list
    v: list
    length: int = 0
    kr: list | None = None
    vr: list | None = None


class Engine:
    """The forward pass of one stored model on one backend."""

    def __init__(self, meta: dict, arrays: dict[str, np.ndarray], backend: object | None = None,
                 arithmetic: int = 2) -> None:  # fmt: skip
        if arithmetic not in ARITHMETICS:
            raise ValueError(f"unknown engine arithmetic {arithmetic}")
        self.arithmetic = arithmetic
        self.meta = meta
        self.xp = xp = backend or NumpyBackend()
        self.hidden, self.layers = meta["hidden"], meta["layers"]
        self.heads, self.kv_heads, self.head_dim = meta["heads"], meta["kv_heads"], meta["head_dim"]
        self.vocab, self.max_window = meta["vocab"], meta["max_window"]
        self.eps = max(1, int(meta["rms_eps_q24"]))

        self.act_bits = int(meta.get("act_bits", 12))

        def rescale(names: tuple[str, ...], extra_shift: int = 0) -> tuple:
            m = np.concatenate([np.asarray(arrays[n + ".m"], dtype=np.int64) for n in names])
            sh = np.concatenate([np.asarray(arrays[n + ".sh"], dtype=np.int64) for n in names]) + extra_shift
            return xp.asarray(m), xp.asarray(sh), xp.asarray(np.int64(1) << (sh - 1))

        def linear(*names: str, extra_shift: int = 0) -> Linear:
            """The matrices ``names`` side by side: one product computes all their outputs."""
            wt = np.concatenate([np.asarray(arrays[n + ".q"]) for n in names]).T
            m, sh, half = rescale(names, extra_shift)
            bias = None
            if any(n + ".bias" in arrays for n in names):
                parts = [arrays.get(n + ".bias", np.zeros(arrays[n + ".m"].shape, np.int32)) for n in names]
                bias = xp.asarray(np.concatenate(parts))
            if self.act_bits == 12:
                return Linear(xp.asarray(np.ascontiguousarray(wt), float64=True), m, sh, half, bias)
            return Linear(xp.weights8(wt), m, sh, half, bias, pieces=True)

        self.embed_q = xp.asarray(arrays["embed.q"])
        self.embed_m, self.embed_sh, self.embed_half = rescale(("embed",))
        self.blocks = [
            {
                "qkv": linear(f"l{i}.q", f"l{i}.k", f"l{i}.v"),
                "o": linear(f"l{i}.o"),
                "gate_up": linear(f"l{i}.gate", f"l{i}.up"),
                "down": linear(f"l{i}.down"),
            }
            for i in range(self.layers)
        ]
        self.q_size, self.kv_size = self.heads * self.head_dim, self.kv_heads * self.head_dim
        self.inter = meta["intermediate"]
        self.output = linear("output", extra_shift=ACT_BITS - SCORE_BITS)
        self.cos, self.sin = xp.asarray(arrays["rope.cos"]), xp.asarray(arrays["rope.sin"])
        self.exp, self.sigmoid = xp.asarray(arrays["table.exp"]), xp.asarray(arrays["table.sigmoid"])
        self.exp_len = int(arrays["table.exp"].shape[0])
        self.exp_table = np.asarray(arrays["table.exp"], dtype=np.int64)  # for the frequency kernel
        self.sig_half = int(arrays["table.sigmoid"].shape[0]) // 2
        self.inv_sqrt_d = round(65536 / self.head_dim**0.5)

    def cache_bytes(self, lanes: int, window: int) -> int:
        """Memory one :class:`Cache` takes."""
        return lanes * cache_bytes_per_lane(self.meta, window, self.arithmetic)

    def new_cache(self, lanes: int, window: int) -> Cache:
        if not 1 <= window <= self.max_window:
            raise ValueError(f"window must be between 1 and {self.max_window}")
        shape = (lanes, self.kv_heads, window, self.head_dim)
        xp, n = self.xp, self.layers
        if self.arithmetic == 1:
            return Cache([xp.zeros(shape, True) for _ in range(n)], [xp.zeros(shape, True) for _ in range(n)])
        return Cache(
            [xp.zeros16(shape) for _ in range(n)], [xp.zeros16(shape) for _ in range(n)],
            kr=[xp.zeros(shape[:3]) for _ in range(n)], vr=[xp.zeros(shape[:3]) for _ in range(n)],
        )  # fmt: skip

    def _linear(self, x, lin: Linear):
        xp = self.xp
        x = xp.clip(x, -CLIP_ACT, CLIP_ACT)
        if lin.pieces:
            out = self._linear8(x, lin)
        else:
            acc = xp.clip(xp.matmul_exact(xp.to_float(x), lin.w), -CLIP_ACC, CLIP_ACC)
            out = (acc * lin.m + lin.half) >> lin.sh
        return out if lin.bias is None else out + lin.bias

    def _linear8(self, x, lin: Linear):
        """Per-row 8-bit activations; int8 x int8 products, exact in float32 per piece of the inner dimension."""
        xp = self.xp
        q, ra = xp.quantize8(x)
        return xp.requant8(xp.matmul8(q, lin.w), lin, ra)

    def _norm(self, x):
        xp = self.xp
        x = xp.clip(x, -CLIP_ACT, CLIP_ACT)
        ms = xp.clip(xp.sum(x * x, -1) // self.hidden + self.eps, 1, MS_LIMIT)
        r = xp.isqrt(ms << 16)
        return (x * (1 << 21) + r) // (2 * r)

    def _rope(self, x, pos0: int, t: int):
        half = self.head_dim // 2
        cos = self.cos[pos0 : pos0 + t][None, :, None, :]
        sin = self.sin[pos0 : pos0 + t][None, :, None, :]
        x1, x2 = x[..., :half], x[..., half:]
        a = rshift_round(x1 * cos - x2 * sin, ROPE_BITS)
        b = rshift_round(x2 * cos + x1 * sin, ROPE_BITS)
        return self.xp.clip(self.xp.cat(a, b), -CLIP_QKV, CLIP_QKV)

    def _attention(self, q, k, v, cache: Cache, layer: int):
        """q: (L, T, H, d), k/v: (L, T, KVH, d) after rotary; appends k/v to the cache; (L*T, H*d)."""
        if self.arithmetic == 1:
            return self._attention_q12(q, k, v, cache, layer)
        xp = self.xp
        lanes, t, d = q.shape[0], q.shape[1], self.head_dim
        start = cache.length
        qq, qr = xp.quantize_heads(q.reshape(-1, d))
        xp.store_heads(k, cache.k[layer], cache.kr[layer], start)
        xp.store_heads(v, cache.v[layer], cache.vr[layer], start)
        qq, qr = qq.reshape(lanes, t, self.heads, d), qr.reshape(lanes, t, self.heads)
        args = (qq, qr, cache.k[layer], cache.kr[layer], cache.v[layer], cache.vr[layer], start)
        attend = getattr(xp, "attend", None)
        out = attend(*args, self.inv_sqrt_d, self.exp) if attend else self._attend_tensors(*args)
        return out.reshape(lanes * t, self.heads * d)

    def _attend_tensors(self, qq, qr, kq, kr, vq, vr, start: int):
        """:func:`.attention.attend` in tensor operations (float64 products of integers, exact)."""
        xp = self.xp
        lanes, t, d = qq.shape[0], qq.shape[1], self.head_dim
        end, groups = start + t, self.heads // self.kv_heads
        qg = xp.transpose(qq.reshape(lanes, t, self.kv_heads, groups, d), (0, 2, 3, 1, 4))
        qg = xp.to_float(xp.contiguous(qg).reshape(lanes, self.kv_heads, groups * t, d))
        rg = xp.transpose(qr.reshape(lanes, t, self.kv_heads, groups), (0, 2, 3, 1))
        qf = (xp.contiguous(rg).reshape(lanes, self.kv_heads, groups * t, 1) * self.inv_sqrt_d + (1 << 15)) >> 16
        acc = xp.matmul_exact(qg, xp.transpose(xp.to_float(kq[:, :, :end]), (0, 1, 3, 2)))
        u = (acc * kr[:, :, None, :end] + (1 << 15)) >> 16
        scores = (u * qf + (1 << 29)) >> 30
        rows = (xp.arange(groups * t) % t + start)[:, None]
        scores = xp.where(xp.arange(end)[None, :] <= rows, scores, NEG)
        e = xp.take(self.exp, xp.clip(xp.amax(scores, -1) - scores, 0, self.exp_len - 1))
        den = xp.sum(e, -1)
        w = (e * vr[:, :, None, :end] + (1 << 15)) >> 16
        num = xp.matmul_exact(xp.to_float(w), xp.to_float(vq[:, :, :end]))
        out = (2 * num + den) // (2 * den)  # (L, KVH, G*T, d)
        out = xp.transpose(out.reshape(lanes, self.kv_heads, groups, t, d), (0, 3, 1, 2, 4))
        return xp.contiguous(out).reshape(lanes, t, self.heads, d)

    def _attention_q12(self, q, k, v, cache: Cache, layer: int):
        """Arithmetic 1: Q12 queries, keys and values in float64 products."""
        xp = self.xp
        lanes, t = q.shape[0], q.shape[1]
        start, end = cache.length, cache.length + t
        groups = self.heads // self.kv_heads
        ck, cv = cache.k[layer], cache.v[layer]
        ck[:, :, start:end] = xp.to_float(xp.transpose(k, (0, 2, 1, 3)))
        cv[:, :, start:end] = xp.to_float(xp.clip(xp.transpose(v, (0, 2, 1, 3)), -CLIP_QKV, CLIP_QKV))
        qg = xp.contiguous(xp.transpose(q.reshape(lanes, t, self.kv_heads, groups, self.head_dim), (0, 2, 3, 1, 4)))
        qg = xp.to_float(qg.reshape(lanes, self.kv_heads, groups * t, self.head_dim))
        acc = xp.clip(xp.matmul_exact(qg, xp.transpose(ck[:, :, :end], (0, 1, 3, 2))), -(1 << 46), 1 << 46)
        scores = (acc * self.inv_sqrt_d) >> (2 * ACT_BITS + 16 - SCORE_BITS)
        rows = (xp.arange(groups * t) % t + start)[:, None]
        visible = xp.arange(end)[None, :] <= rows
        scores = xp.where(visible, scores, NEG)
        d = xp.clip(xp.amax(scores, -1) - scores, 0, self.exp_len - 1)
        e = xp.take(self.exp, d)
        den = xp.sum(e, -1)
        num = xp.matmul_exact(xp.to_float(e), cv[:, :, :end])
        out = (2 * num + den) // (2 * den)  # (L, KVH, G*T, d)
        out = xp.transpose(out.reshape(lanes, self.kv_heads, groups, t, self.head_dim), (0, 3, 1, 2, 4))
        return xp.contiguous(out).reshape(lanes * t, self.heads * self.head_dim)

    def _mlp(self, x, blk: dict):
        xp = self.xp
        gu = xp.clip(self._linear(x, blk["gate_up"]), -CLIP_ACT, CLIP_ACT)
        g, u = gu[:, : self.inter], gu[:, self.inter :]
        idx = xp.clip(g >> (ACT_BITS - 8), -self.sig_half, self.sig_half - 1) + self.sig_half
        s = rshift_round(g * xp.take(self.sigmoid, idx), 16)
        return self._linear(rshift_round(s * u, ACT_BITS), blk["down"])

    def forward(self, cache: Cache, tokens: np.ndarray, logits: str = "all"):
        """Run ``tokens`` (lanes, T) at the cache's next positions; Q10 logits (lanes, T or 1, vocab).

        ``logits="last"`` computes only the last position's, ``"none"`` none
        (re-evaluating a window's overlap needs at most the last).
        """
        xp = self.xp
        lanes, t = tokens.shape
        if cache.length + t > cache.k[0].shape[2]:
            raise ValueError("the cache window is full")
        tok = xp.tokens(tokens.reshape(-1))
        sh, half = xp.take(self.embed_sh, tok)[:, None], xp.take(self.embed_half, tok)[:, None]
        x = (xp.take(self.embed_q, tok) * xp.take(self.embed_m, tok)[:, None] * (1 << ACT_BITS) + half) >> sh
        hd = self.head_dim
        for i, blk in enumerate(self.blocks):
            h = self._norm(x)
            qkv = self._linear(h, blk["qkv"])
            qs, ks = self.q_size, self.q_size + self.kv_size
            q = self._rope(qkv[:, :qs].reshape(lanes, t, self.heads, hd), cache.length, t)
            k = self._rope(qkv[:, qs:ks].reshape(lanes, t, self.kv_heads, hd), cache.length, t)
            v = qkv[:, ks:].reshape(lanes, t, self.kv_heads, hd)
            x = xp.clip(x + self._linear(self._attention(q, k, v, cache, i), blk["o"]), -CLIP_ACT, CLIP_ACT)
            x = xp.clip(x + self._mlp(self._norm(x), blk), -CLIP_ACT, CLIP_ACT)
        cache.length += t
        if logits == "none":
            return None
        if logits == "last":
            x = x.reshape(lanes, t, self.hidden)[:, -1]
            t = 1
        out = self._logits(self._norm(x))
        return out.reshape(lanes, t, self.vocab)

    def _logits(self, h):
        return self._linear(h, self.output)
