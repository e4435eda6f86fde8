"""The integer engine's operations on numpy and numba: the CPU engine (``--engine numpy``).

:class:`~.engine.Engine` is written once over an array backend; this one
holds activations as int64 arrays, multiplies int8 weights by 8-bit
activations as float32 BLAS products in pieces short enough that every sum
is exact, and hands the element-wise work and attention to the numba
kernels of :mod:`.kernels` and :mod:`.attention`.
"""

from __future__ import annotations

import numpy as np

MAX_INNER32 = 1040  # 1040 * 127 * 127 < 2**24: int8 x int8 sums exact in float32


class NumpyBackend:
    """Array operations on numpy: the CPU engine."""

    name = "numpy"

    def asarray(self, a: np.ndarray, float64: bool = False):
        return np.asarray(a, dtype=np.float64 if float64 else np.int64)

    def zeros(self, shape: tuple, float64: bool = False):
        return np.zeros(shape, dtype=np.float64 if float64 else np.int64)

    def zeros16(self, shape: tuple):
        return np.zeros(shape, dtype=np.int16)

    def tokens(self, t: np.ndarray):
        return np.asarray(t, dtype=np.int64)

    def quantize_heads(self, x):
        """Quantized rows of ``x`` and their scales (:func:`.attention.quantize_heads`)."""
        from . import attention

        return _quantized(attention.quantize_heads, x, np.int16)

    def store_heads(self, x, xq, xr, start: int) -> None:
        """Quantized rows of ``x`` (L, T, KVH, d) into a cache at ``start`` (:func:`.attention.store_heads`)."""
        from . import attention

        attention.store_heads(x, xq, xr, start)

    def attend(self, qq, qr, kq, kr, vq, vr, start: int, isd: int, exp):
        from . import attention

        out = np.empty(qq.shape, dtype=np.int64)
        attention.attend(np.ascontiguousarray(qq), np.ascontiguousarray(qr), kq, kr, vq, vr, start, isd, exp, out)
        return out

    def matmul_exact(self, a, b):
        """``a @ b`` for integer-valued float64 operands whose sums stay below 2**53; int64 result."""
        return np.matmul(a, b).astype(np.int64)

    def to_float(self, a):
        return a.astype(np.float64)

    def quantize8(self, x):
        """8-bit rows and their Q16 scales (see :mod:`.kernels`)."""
        from . import kernels

        return _quantized(kernels.quantize_rows, x, np.float32)

    def requant8(self, acc, lin, ra):
        from . import kernels

        out = np.empty(acc.shape, dtype=np.int64)
        kernels.requant(np.ascontiguousarray(acc), lin.m, lin.sh, lin.half, ra, out)
        return out

    def weights8(self, wt: np.ndarray):
        """int8 weights ``(in, out)`` as this backend multiplies them: float32 pieces of <= MAX_INNER32 rows."""
        return [
            np.ascontiguousarray(wt[i : i + MAX_INNER32], dtype=np.float32) for i in range(0, wt.shape[0], MAX_INNER32)
        ]

    def matmul8(self, q, pieces):
        """Exact ``q @ w`` of 8-bit rows (float32) and int8 weights: each piece's sums are below 2**24."""
        acc = None
        for i, piece in enumerate(pieces):
            part = np.matmul(q[:, i * MAX_INNER32 : (i + 1) * MAX_INNER32], piece)
            acc = part if acc is None else acc.astype(np.float64) + part  # exact sums of exact pieces
        return acc

    def clip(self, a, lo: int, hi: int):
        return np.clip(a, lo, hi)

    def take(self, table, idx):
        return table[idx]

    def isqrt(self, n):
        r = np.sqrt(n.astype(np.float64)).astype(np.int64)
        for _ in range(2):
            r = np.where(r * r > n, r - 1, r)
            r = np.where((r + 1) * (r + 1) <= n, r + 1, r)
        return r

    def amax(self, a, axis: int):
        return a.max(axis=axis, keepdims=True)

    def sum(self, a, axis: int):
        return a.sum(axis=axis, keepdims=True)

    def where(self, cond, a, b):
        return np.where(cond, a, b)

    def arange(self, n: int):
        return np.arange(n, dtype=np.int64)

    def numpy(self, a) -> np.ndarray:
        return np.asarray(a)

    def transpose(self, a, dims: tuple):
        return np.transpose(a, dims)

    def cat(self, a, b):
        return np.concatenate([a, b], axis=-1)

    def contiguous(self, a):
        return np.ascontiguousarray(a)


def _quantized(kernel, x, dtype) -> tuple[np.ndarray, np.ndarray]:
    """``kernel(x, q, scales)`` on fresh outputs: rows of ``x`` quantized to ``dtype``, and their scales."""
    x = np.ascontiguousarray(x)
    q = np.empty(x.shape, dtype=dtype)
    scales = np.empty(x.shape[0], dtype=np.int64)
    kernel(x, q, scales)
    return q, scales
