"""Where the bits go: per-byte costs that the model kernels record for ``nzip explain``.

A kernel given a trace array (one row per byte of the frame, ``FIELDS``
columns) adds, after coding each bit and before learning from it, what that
bit cost and what it would have cost by other predictions.  Floats are used
here and only here: nothing in a trace reaches the coder, so archives stay
integer-exact whether or not they are traced.  A kernel given an empty
trace (``shape[0] == 0``) records nothing.

Columns, in bits per byte:

* ``FINAL``: the coded cost, ``-log2`` of the final probability of each bit;
  a frame's ``FINAL`` column sums to its payload within the coder's
  termination and the payload's header byte: the coder ends with one byte
  of its 32-bit interval, so the payload holds between 24 bits less and 8
  bits more than the sum, plus 8 bits for the neural models' lane count;
* ``MIXER``: the cost under the mixers' output, before the adaptive
  probability maps (what the SSE stages gained is ``MIXER - FINAL``);
* ``NETWORK``: the cost under the network's own prediction (neural models;
  NaN for the others);
* ``MATCH``, ``MATCH_BITS``: the cost under the match model's own
  prediction, over the ``MATCH_BITS`` bits where it predicted (0 to 8);
* ``SAVED_NETWORK``, ``SAVED_MATCH``, ``SAVED_CONTEXTS``: how many bits the
  mixer's output was better than the same mixers, with the same weights at
  that moment, leaving that group of inputs out (a leave-one-out estimate:
  the weights would have learned differently without it).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..logistic import SQUASH, STRETCH_MAX

FINAL = 0
MIXER = 1
NETWORK = 2
MATCH = 3
MATCH_BITS = 4
SAVED_NETWORK = 5
SAVED_MATCH = 6
SAVED_CONTEXTS = 7
FIELDS = 8
NAMES = ("final", "mixer", "network", "match", "match_bits", "saved_network", "saved_match", "saved_contexts")


def empty() -> np.ndarray:
    """The trace a kernel gets when nobody asks: it records nothing."""
    return np.zeros((0, FIELDS), dtype=np.float64)


def new(size: int, network: bool) -> np.ndarray:
    """A zeroed trace for a frame of ``size`` bytes (NETWORK columns NaN without a network)."""
    trace = np.zeros((size, FIELDS), dtype=np.float64)
    if not network:
        trace[:, NETWORK] = np.nan
        trace[:, SAVED_NETWORK] = np.nan
    return trace


@njit(cache=True, inline="always")
def bits(p, bit):
    """Cost in bits of ``bit`` when a 1 had probability ``p``/65536 (reporting only)."""
    q = p if bit else 65536 - p
    return -np.log2(max(1, min(65535, q)) / 65536.0)


@njit(cache=True, inline="always")
def _mixed(dot):
    """A mixer's dot product to its clamped stretch value, as the kernels compute it."""
    return max(-STRETCH_MAX, min(STRETCH_MAX, dot >> 16))


@njit(cache=True, inline="always")
def _p(st):
    return SQUASH[max(-STRETCH_MAX, min(STRETCH_MAX, st)) + STRETCH_MAX]


@njit(cache=True, inline="always")
def _dot(x, w, start, lo, hi):
    """``sum x[k] * w[start + k]`` over ``lo <= k < hi``."""
    s = np.int64(0)
    for k in range(lo, hi):
        s += np.int64(x[k]) * w[start + k]
    return s


@njit(cache=True, inline="always")
def _match(trace, pos, bit, mi, msm):
    if mi >= 0:
        trace[pos, MATCH] += bits(np.int64(msm[mi] >> 16), bit)
        trace[pos, MATCH_BITS] += 1


@njit(cache=True)
def record_cm(trace, pos, bit, p, p_mix, x, nin, lx, w_a, wa, w_b, wb, two, mi, msm):
    """One bit of the context-mixing kernel: inputs ``[0, lx)`` contexts, ``nin - 3 .. nin - 2`` match.

    ``two``: two mixers whose stretch values are averaged, else one.
    """
    trace[pos, FINAL] += bits(p, bit)
    base = bits(p_mix, bit)
    trace[pos, MIXER] += base
    _match(trace, pos, bit, mi, msm)
    full_a = _dot(x, w_a, wa, 0, nin)
    full_b = _dot(x, w_b, wb, 0, nin) if two else 0
    for group, lo, hi in ((SAVED_CONTEXTS, 0, lx), (SAVED_MATCH, nin - 3, nin - 1)):
        st = _mixed(full_a - _dot(x, w_a, wa, lo, hi))
        if two:
            st = (st + _mixed(full_b - _dot(x, w_b, wb, lo, hi))) >> 1
        trace[pos, group] += bits(np.int64(_p(st)), bit) - base


@njit(cache=True)
def record_fast(trace, pos, bit, p, x, nin, nctx, w, wi, mi, msm):
    """One bit of the lean kernel (level 1): one mixer, no probability maps; ``[0, nctx]`` contexts."""
    base = bits(p, bit)
    trace[pos, FINAL] += base
    trace[pos, MIXER] += base
    _match(trace, pos, bit, mi, msm)
    full = _dot(x, w, wi, 0, nin)
    for group, lo, hi in ((SAVED_CONTEXTS, 0, nctx + 1), (SAVED_MATCH, nctx + 1, nctx + 3)):
        trace[pos, group] += bits(np.int64(_p(_mixed(full - _dot(x, w, wi, lo, hi)))), bit) - base


@njit(cache=True)
def record_lanes(
    trace, pos, bit, p, p_mix, p_nn, x, nin, groups, w_a, wa, w_b, wb, w_c, wc, w_d, wd, w_f, wf, four, mi, msm
):  # fmt: skip
    """One bit of the lane kernel: mixers a, b, c (and d when ``four``) feed the final mixer ``w_f``.

    ``groups`` holds (column, first input, end) rows for the contexts, the
    match model and the network.
    """
    trace[pos, FINAL] += bits(p, bit)
    base = bits(p_mix, bit)
    trace[pos, MIXER] += base
    trace[pos, NETWORK] += bits(p_nn, bit)
    _match(trace, pos, bit, mi, msm)
    full_a = _dot(x, w_a, wa, 0, nin)
    full_b = _dot(x, w_b, wb, 0, nin)
    full_c = _dot(x, w_c, wc, 0, nin)
    full_d = _dot(x, w_d, wd, 0, nin) if four else 0
    for g in range(groups.shape[0]):
        column, lo, hi = groups[g, 0], groups[g, 1], groups[g, 2]
        st_a = _mixed(full_a - _dot(x, w_a, wa, lo, hi))
        st_b = _mixed(full_b - _dot(x, w_b, wb, lo, hi))
        st_c = _mixed(full_c - _dot(x, w_c, wc, lo, hi))
        if four:
            st_d = _mixed(full_d - _dot(x, w_d, wd, lo, hi))
            dot_f = st_a * w_f[wf] + st_b * w_f[wf + 1] + st_c * w_f[wf + 2] + st_d * w_f[wf + 3] + 256 * w_f[wf + 4]
        else:
            dot_f = st_a * w_f[wf] + st_b * w_f[wf + 1] + st_c * w_f[wf + 2] + 256 * w_f[wf + 3]
        st = max(-STRETCH_MAX, min(STRETCH_MAX, dot_f >> 16))
        trace[pos, column] += bits(np.int64(_p(st)), bit) - base
