"""numba kernels for the CPU engine's element-wise integer work around the 8-bit products.

Numpy would make a dozen passes over every product's output (and its
integer division is slow); these fuse them into one.  The arithmetic is
defined here and repeated, operation for operation, by the torch backend::

    amax   = clip(max |x|, 1, 2**24)                  per row
    r      = (127 * 2**31) // amax                    per row
    q      = (x * r + 2**30) >> 31                    in [-127, 127]
    ra     = (amax * 2**16 + 63) // 127               per row: amax / 127 in Q16
    u      = (acc * m + 2**15) >> 16                  acc: the exact product sums
    out    = (u * ra + 2**(sh - 1)) >> sh             Q12

Bounds: ``|x * r| <= 127 * 2**31``; ``|acc| < 2**28`` (inner dimension up
to 16640), so ``|acc * m| < 2**43`` and ``|u * ra| < 2**61``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

CLIP = 1 << 24


@njit(cache=True, nogil=True)
def quantize_rows(x, q, ra):
    """8-bit rows of ``x`` (int64, 2-D) into ``q`` (float32) and their scales into ``ra`` (int64)."""
    rows, cols = x.shape
    for t in range(rows):
        amax = 1
        for i in range(cols):
            v = x[t, i]
            if v < 0:
                v = -v
            if v > amax:
                amax = v
        if amax > CLIP:
            amax = CLIP
        r = (127 << 31) // amax
        for i in range(cols):
            v = x[t, i]
            if v > CLIP:
                v = CLIP
            elif v < -CLIP:
                v = -CLIP
            q[t, i] = np.float32((v * r + (1 << 30)) >> 31)
        ra[t] = ((amax << 16) + 63) // 127


@njit(cache=True, nogil=True)
def requant(acc, m, sh, half, ra, out):
    """``out[t, j] = ((acc[t, j] * m[j] + 2**15 >> 16) * ra[t] + half[j]) >> sh[j]``."""
    rows, cols = acc.shape
    for t in range(rows):
        s = ra[t]
        for j in range(cols):
            u = (np.int64(acc[t, j]) * m[j] + (1 << 15)) >> 16
            out[t, j] = (u * s + half[j]) >> sh[j]
