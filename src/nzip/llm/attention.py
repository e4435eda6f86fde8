"""Exact attention over a quantized KV cache (engine arithmetic 2).

Queries, keys and values leave the rotary step as Q12 integers.  Each
(token, head) row of ``head_dim`` values is then quantized to ``KV_BITS``
bits with its own scale, exactly as the 8-bit activations are::

    amax  = clip(max |x|, 1, 2**20)                       per row
    x_q   = (x * ((LEVELS * 2**31) // amax) + 2**30) >> 31        |x_q| <= LEVELS
    x_r   = (amax * 2**16 + LEVELS // 2) // LEVELS        the row's scale, Q16

and the scores, softmax and weighted values are integers computed from those::

    acc   = q_q . k_q                                     int32: |acc| < 2**30 for head_dim <= 256
    u     = (acc * k_r + 2**15) >> 16                     < 2**39
    score = (u * ((q_r * isd + 2**15) >> 16) + 2**29) >> 30           Q10 nats, isd = round(2**16/sqrt(d))
    e_j   = EXP[clip(max(score) - score_j, 0, len - 1)]   Q16 table
    w_j   = (e_j * v_r[j] + 2**15) >> 16                  < 2**27
    out   = round(sum_j w_j * v_q[j] / sum_j e_j)          Q12, half up

``sum_j w_j * v_q[j]`` is below ``2**27 * 2**11 * window``, so below 2**53
for any window up to 2**15: float64 accumulation of these integer products
is exact in any order, which lets BLAS, cuBLAS and the compiled kernel here
give the same integers.  The cache holds ``x_q`` (int16) and ``x_r``
(int64): a quarter of the memory traffic of arithmetic 1's float64 cache.

:func:`attend` is the CPU kernel (numba, one task per lane and key head, so
the thread count cannot change a result); engines without it use the same
formulas in tensor operations (:meth:`~.engine.Engine._attend_tensors`).
"""

from __future__ import annotations

import itertools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import njit

KV_BITS = 12
LEVELS = (1 << (KV_BITS - 1)) - 1  # 2047
CLIP_ROW = 1 << 20
# The bounds above hold for head sizes up to source.MAX_HEAD_DIM (256) and windows up to
# source.MAX_WINDOW (2**15); import and the model file check enforce both.


@njit(cache=True, nogil=True, inline="always")
def _quantize_row(x, xq) -> int:
    """One row of ``x`` into ``xq``; returns its scale."""
    amax = 1
    for v in x:
        amax = max(amax, abs(v))
    amax = min(amax, CLIP_ROW)
    r = (LEVELS << 31) // amax
    for i in range(x.shape[0]):
        xq[i] = (min(max(x[i], -CLIP_ROW), CLIP_ROW) * r + (1 << 30)) >> 31
    return ((amax << 16) + LEVELS // 2) // LEVELS


@njit(cache=True, nogil=True)
def quantize_heads(x, xq, xr):
    """Rows of ``x`` (int64, ``(rows, d)``) into ``xq`` (int16) and their scales into ``xr`` (int64)."""
    for t in range(x.shape[0]):
        xr[t] = _quantize_row(x[t], xq[t])


@njit(cache=True, nogil=True)
def store_heads(x, xq, xr, start):
    """Rows of ``x`` (``(L, T, KVH, d)``) quantized into a cache ``xq (L, KVH, W, d)``, ``xr (L, KVH, W)``.

    They go to positions ``start..start+T-1``.
    """
    lanes, t_len, kv_heads = x.shape[0], x.shape[1], x.shape[2]
    for lane in range(lanes):
        for t in range(t_len):
            for h in range(kv_heads):
                xr[lane, h, start + t] = _quantize_row(x[lane, t, h], xq[lane, h, start + t])


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def attend(qq, qr, kq, kr, vq, vr, start: int, isd: int, exp, out) -> None:
    """Attention of queries ``qq (L, T, H, d)`` at positions ``start..start+T-1`` over the cache.

    ``kq, vq``: ``(L, KVH, W, d)`` int16 with keys and values of positions
    ``0..start+T-1`` filled; ``kr, vr``: ``(L, KVH, W)``; ``qr``: ``(L, T, H)``.
    Writes ``out (L, T, H, d)`` in Q12.  The (lane, key head) tasks are
    shared among the CPU's cores by plain threads (numba's own OpenMP
    threads would spin against PyTorch's); each task's result is the same
    whichever thread computes it.
    """
    global _pool
    tasks = qq.shape[0] * kq.shape[1]
    cores = max(1, min(os.cpu_count() or 1, 16))
    workers = min(cores, tasks)
    if workers == 1 or qq.shape[1] * (start + qq.shape[1]) < 64:
        _attend_tasks(qq, qr, kq, kr, vq, vr, start, isd, exp, out, 0, tasks)
        return
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(cores, thread_name_prefix="nzip-attention")
    cuts = [tasks * i // workers for i in range(workers + 1)]
    jobs = [
        _pool.submit(_attend_tasks, qq, qr, kq, kr, vq, vr, start, isd, exp, out, a, b)
        for a, b in itertools.pairwise(cuts)
    ]
    for job in jobs:
        job.result()


@njit(cache=True, nogil=True)
def _attend_tasks(qq, qr, kq, kr, vq, vr, start, isd, exp, out, first, end):
    """:func:`attend` for the (lane, key head) tasks ``first..end-1``."""
    t_len, heads, d = qq.shape[1], qq.shape[2], qq.shape[3]
    kv_heads = kq.shape[1]
    groups = heads // kv_heads
    last = exp.shape[0] - 1
    for task in range(first, end):
        lane, kh = task // kv_heads, task % kv_heads
        scores = np.empty(start + t_len, dtype=np.int64)
        acc = np.empty(d, dtype=np.float64)
        for t in range(t_len):
            n = start + t + 1
            for g in range(groups):
                h = kh * groups + g
                qf = (qr[lane, t, h] * isd + (1 << 15)) >> 16
                top = -(1 << 62)
                for j in range(n):
                    a = np.int32(0)
                    for c in range(d):
                        a += np.int32(qq[lane, t, h, c]) * np.int32(kq[lane, kh, j, c])
                    u = (np.int64(a) * kr[lane, kh, j] + (1 << 15)) >> 16
                    s = (u * qf + (1 << 29)) >> 30
                    scores[j] = s
                    if s > top:
                        top = s
                den = 0
                acc[:] = 0.0
                for j in range(n):
                    e = np.int64(exp[min(top - scores[j], last)])
                    den += e
                    w = (e * vr[lane, kh, j] + (1 << 15)) >> 16
                    if w:
                        fw = np.float64(w)
                        for c in range(d):
                            acc[c] += fw * np.float64(vq[lane, kh, j, c])
                for c in range(d):
                    out[lane, t, h, c] = (2 * np.int64(acc[c]) + den) // (2 * den)
