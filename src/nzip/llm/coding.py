"""Token frequencies and their arithmetic coding (numba).

:func:`frequencies` turns Q10 logits into integer frequencies summing to
exactly ``2**FREQ_BITS``, every token at least 1, so any token sequence can
be coded::

    e      = EXP[min(max_logit - logit, len - 1)]                     Q16 table
    f      = 1 + e * (2**30 - vocab) // sum(e), the remainder to the first maximum

:func:`code_tokens` codes one token per active lane with nzip's binary
arithmetic coder (:mod:`nzip.coder`) by walking a binary tree over token
ids: at each node the probability of the upper half is the upper half's
share of the node's frequency, rounded to 16 bits.  The coder stays the
one every model shares; the walk costs a few hundredths of a percent over
the ideal code length (measured in the tests).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..coder import code_bit, finish_coder, start_coder

FREQ_BITS = 30
FREQ_TOTAL = 1 << FREQ_BITS


@njit(cache=True, nogil=True)
def frequencies(logits, exp_table, out):
    """Q10 logits (rows, vocab) -> integer frequencies (rows, vocab) summing to ``FREQ_TOTAL``."""
    rows, vocab = logits.shape
    last = exp_table.shape[0] - 1
    budget = FREQ_TOTAL - vocab
    for r in range(rows):
        best = 0
        for i in range(1, vocab):
            if logits[r, i] > logits[r, best]:
                best = i
        top = logits[r, best]
        total = 0
        for i in range(vocab):
            d = top - logits[r, i]
            e = exp_table[d if d < last else last]
            out[r, i] = e
            total += e
        used = 0
        for i in range(vocab):
            f = 1 + (out[r, i] * budget) // total
            out[r, i] = f
            used += f
        out[r, best] += FREQ_TOTAL - used


@njit(cache=True, nogil=True)
def start(decoding, src, state):
    """Initialise the coder ``state`` (x1, x2, x, pos) for a stream."""
    x1, x2, x, pos = start_coder(decoding, src)
    state[0], state[1], state[2], state[3] = x1, x2, x, pos


@njit(cache=True, nogil=True)
def finish(decoding, state, dst):
    """Encoding: flush and return the coded length (-1 if ``dst`` is full); decoding: bytes consumed."""
    return finish_coder(decoding, state[0], state[3], dst)


@njit(cache=True, nogil=True)
def code_tokens(decoding, state, src, dst, freqs, tokens, cum):
    """Code ``tokens[r]`` with ``freqs[r]`` for every row r, or decode them into ``tokens``.

    ``cum`` is scratch of length vocab + 1.  Returns False when the encoder's output is full.
    """
    rows, vocab = freqs.shape
    x1, x2, x, pos = state[0], state[1], state[2], state[3]
    tmp = np.zeros(1, dtype=np.uint8)
    for r in range(rows):
        cum[0] = 0
        for i in range(vocab):
            cum[i + 1] = cum[i] + freqs[r, i]
        lo, hi = 0, vocab
        tok = tokens[r]
        while hi - lo > 1:
            mid = (lo + hi) >> 1
            node = cum[hi] - cum[lo]
            upper = cum[hi] - cum[mid]
            p1 = (upper * 65536 + (node >> 1)) // node
            if p1 < 1:
                p1 = 1
            elif p1 > 65535:
                p1 = 65535
            if decoding:
                bit, x1, x2, x, pos = code_bit(True, x1, x2, x, pos, src, dst, 0, 0, p1)
            else:
                tmp[0] = 255 if tok >= mid else 0
                bit, x1, x2, x, pos = code_bit(False, x1, x2, x, pos, tmp, dst, 0, 0, p1)
                if pos < 0:
                    return False
            if bit:
                lo = mid
            else:
                hi = mid
        tokens[r] = lo
    state[0], state[1], state[2], state[3] = x1, x2, x, pos
    return True


def ideal_bits(freqs: np.ndarray, tokens: np.ndarray) -> float:
    """The code length ``-log2(f / total)`` the frequencies promise (for measuring overhead)."""
    f = freqs[np.arange(len(tokens)), tokens].astype(np.float64)
    return float(-np.log2(f / FREQ_TOTAL).sum())
