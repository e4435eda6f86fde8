"""Context mixing over parallel lanes, with a neural prediction as one more input (numba).

A frame is cut into ``B`` lanes of ``L`` consecutive bytes (the last may be
shorter).  Coding proceeds in steps: step ``t`` codes byte ``t`` of lane 0,
then of lane 1, ... then of lane ``B - 1``.  Between steps the caller runs the
neural network once for all lanes (a batched matrix product), which is what
makes a neural model affordable on a CPU; :func:`step` then codes the step's
bytes and returns, keeping every piece of state in the arrays it was given.

The adaptive part is the full kernel of :mod:`nzip.models.cm_kernel`, made
lane-aware: the hash tables, mixers and maps are shared by all lanes (a lane
learns from what every lane has coded so far), while the byte history that
forms contexts (last bytes, words, records, the match being followed) is
kept per lane.  Interleaving costs the shared statistics their recency
(measured without the network: 1.954 bits per byte on alice29.txt in one lane,
1.994 in 64), so each lane also keeps small, fast-adapting order-1 to 3
counters of its own, which win back a fifth of that.  The match model may follow an earlier occurrence anywhere in
the frame, but only through bytes already coded: :func:`_coded` says which.

The network's 256 frequencies become per-bit probabilities by summing the
subtree of symbols still possible under the bits coded so far, and enter the
mixers stretched, like every other input.  Three mixers see the same inputs,
with weights selected by context state and the network's confidence, by the
partial byte, and by the previous byte; a final mixer combines their outputs,
and two adaptive maps (keyed by the previous byte, and by the network's
confidence) refine the result.  The weights of that last average were chosen
by measurement on the benchmark texts.  Variant 2 (model nn2) adds a fourth
mixer and a third map; variant 1 (nn1) is kept bit for bit (see
:class:`Mixing`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..coder import code_bit, finish_coder, start_coder
from ..logistic import SQUASH, STRETCH_MAX
from .cm_kernel import (
    _APM_ROWS,
    FLAG_INDIRECT,
    HIST_INIT,
    P_CTX,
    P_FLAGS,
    P_LIMIT,
    P_MATCH_MIN,
    P_MIX_SHIFT,
    P_NCTX,
    _context_hash,
    _context_inputs,
    _context_update,
    _counter16_st,
    _counter16_update,
    _find_buckets,
    _map_update,
    _match_expected,
    _match_index,
    _match_slot,
    _push_byte,
    _squash,
    _stretch,
)
from .trace_kernel import SAVED_CONTEXTS, SAVED_MATCH, SAVED_NETWORK, record_lanes

# Columns of the per-lane state array.
L_C4 = 0
L_C8 = 1
L_WORD = 2
L_WORD_PREV = 3
L_MPTR = 4
L_MLEN = 5
L_RCAND = 6
L_RVOTES = 7
L_RLEN = 8
L_ABOVE = 9
LANE_FIELDS = 10
REC_FIELDS = 512  # per lane: last position (256) and last gap (256) of each byte value

# Layout of the coder state array.
C_X1 = 0
C_X2 = 1
C_X = 2
C_POS = 3

LOCAL_INPUTS = 3  # per-lane order-1, -2 and -3 counters (recent, lane-local statistics)
LOCAL_SIZE = 65536
FINAL_RATE = 6  # learning rate of the final mixer, in 1/2^20 per unit of error
NN_WEIGHT = 40000  # initial mixer weight of the network's input (1.0 = 65536)
APM_O2_ROWS = 1 << 16  # variant 2: an adaptive map keyed by a hash of the last two bytes and the partial byte
APM_MIX = 4  # variant 2's final average, in 16ths: the mixer's share (the order-2 SSE gets 8 - APM_MIX)
AGREE_SETS = 3 * 8 * 8  # mixer D: disagrees / expects 0 / expects 1, top frequency, bit position


class Mixing:
    """Shared adaptive state of one frame: mixer weights, maps, coder.

    ``variant`` 1 is the kernel of model nn1; variant 2 (nn2) adds the
    network's probability in the linear domain as an input, a fourth mixer
    selected by whether the partial byte still agrees with the network's
    likeliest byte, and an SSE stage keyed by the last two bytes.
    """

    def __init__(self, params: np.ndarray, variant: int = 1) -> None:
        nctx = int(params[P_NCTX])
        per_ctx = 2 if params[P_FLAGS] & FLAG_INDIRECT else 1
        self.variant = variant
        self.nin = per_ctx * nctx + LOCAL_INPUTS + 3 + _nn_inputs(variant)
        sets_a = (nctx + 1) * 3 * 4
        self.w_a = np.full(sets_a * self.nin, 1 << 14, dtype=np.int32)
        self.w_b = np.full(256 * self.nin, 1 << 14, dtype=np.int32)
        nn_col = per_ctx * nctx + LOCAL_INPUTS + 3
        self.w_a[nn_col :: self.nin] = NN_WEIGHT
        self.w_b[nn_col :: self.nin] = NN_WEIGHT
        self.w_c = self.w_b.copy()
        self.w_d = np.tile(self.w_b[: self.nin], AGREE_SETS)
        if variant == 1:
            self.w_f = np.tile(np.array([21845, 21845, 21845, 0], dtype=np.int32), 8)
        else:
            self.w_f = np.tile(np.array([16384, 16384, 16384, 16384, 0], dtype=np.int32), 8)
        self.sm = np.tile(HIST_INIT, nctx)
        self.msm = np.full(64 * 2, np.uint32(1 << 31), dtype=np.uint32)
        curve = SQUASH[(np.arange(_APM_ROWS) - 16) * 128 + STRETCH_MAX]
        self.apm2 = np.tile(curve, 65536)
        self.apm_nn = np.tile(curve, 16 * 256)
        self.apm_o2 = np.tile(curve, APM_O2_ROWS if variant != 1 else 1)
        self.coder = np.zeros(4, dtype=np.int64)


@njit(cache=True, inline="always")
def _nn_inputs(variant):
    """Inputs from the network: stretched probability (and, from variant 2, the linear one)."""
    return 1 if variant == 1 else 2


@njit(cache=True, inline="always")
def _coded(p, lane_len, t, next_lane):
    """Whether position ``p`` is coded once step ``t`` has coded lanes ``< next_lane``."""
    off = p % lane_len
    return off < t or (off == t and p // lane_len < next_lane)


@njit(cache=True, nogil=True)
def start(decoding, src, coder):
    """Initialise the coder state for a frame."""
    x1, x2, x, pos = start_coder(decoding, src)
    coder[C_X1] = x1
    coder[C_X2] = x2
    coder[C_X] = x
    coder[C_POS] = pos


@njit(cache=True, nogil=True)
def finish(decoding, coder, dst):
    """Flush the encoder (coded length, or -1 if ``dst`` is full); decoding: bytes consumed."""
    return finish_coder(decoding, coder[C_X1], coder[C_POS], dst)


@njit(cache=True, nogil=True)
def step(
    decoding, t, nact, lane_len, n, src, dst, freqs, params, table, match_table,
    lanes, rec, local, w_a, w_b, w_c, w_d, w_f, sm, msm, apm2, apm_nn, apm_o2, coder, variant, trace,
):  # fmt: skip
    """Code byte ``t`` of lanes ``0 .. nact - 1``; return False when the encoder's output is full.

    ``freqs[j]`` are the network's frequencies for lane ``j``'s byte (any
    positive integers).  Encoding reads ``src`` (the frame) and writes
    ``dst``; decoding reads ``src`` (the payload) and writes the frame into
    ``dst``.  A ``trace`` with rows gets each byte's costs (:mod:`.trace_kernel`).
    """
    nctx = params[P_NCTX]
    limit = params[P_LIMIT]
    mix_shift = params[P_MIX_SHIFT]
    match_min = params[P_MATCH_MIN]
    tmask = (table.shape[0] >> 4) - 1
    cids = params[P_CTX : P_CTX + nctx]
    indirect = (params[P_FLAGS] & FLAG_INDIRECT) != 0
    per_ctx = 2 if indirect else 1
    nn_in = _nn_inputs(variant)
    nin = per_ctx * nctx + LOCAL_INPUTS + 3 + nn_in
    lx = per_ctx * nctx
    x = np.zeros(nin, dtype=np.int32)
    hashes = np.zeros(nctx, dtype=np.uint64)
    base = np.zeros(nctx, dtype=np.int64)
    slot = np.zeros(nctx, dtype=np.int64)
    hidx = np.zeros(nctx, dtype=np.int64)
    cum = np.zeros(257, dtype=np.int64)
    buf = dst if decoding else src
    m0 = nin - 3 - nn_in
    groups = np.empty((3, 3), dtype=np.int64)  # for a trace: (column, first input, end) per group of inputs
    groups[0, 0], groups[0, 1], groups[0, 2] = SAVED_CONTEXTS, 0, m0
    groups[1, 0], groups[1, 1], groups[1, 2] = SAVED_MATCH, m0, m0 + 2
    groups[2, 0], groups[2, 1], groups[2, 2] = SAVED_NETWORK, m0 + 3, m0 + 3 + nn_in

    x1 = coder[C_X1]
    x2 = coder[C_X2]
    dx = coder[C_X]
    io_pos = coder[C_POS]

    for j in range(nact):
        pos = j * lane_len + t
        c4 = lanes[j, L_C4]
        c8 = lanes[j, L_C8]
        word = np.uint64(lanes[j, L_WORD])
        word_prev = np.uint64(lanes[j, L_WORD_PREV])
        mptr = lanes[j, L_MPTR]
        mlen = lanes[j, L_MLEN]
        rlen = lanes[j, L_RLEN]
        above = lanes[j, L_ABOVE]
        if mlen > 0 and (mptr >= n or not _coded(mptr, lane_len, t, j)):
            mlen = 0
        top = 0
        for k in range(256):
            cum[k + 1] = cum[k] + freqs[j, k]
            if freqs[j, k] > freqs[j, top]:
                top = k
        top_bucket = min(7, freqs[j, top] >> 13)

        for i in range(nctx):
            hashes[i] = _context_hash(cids[i], c4, c8, word, word_prev, rlen, above)
        mstate = 0 if mlen == 0 else (1 if mlen < 32 else 2)
        c0 = 1
        nib = 1
        found = 0
        for bitpos in range(8):
            if bitpos == 0 or bitpos == 4:
                found = _find_buckets(table, hashes, 0 if bitpos == 0 else c0, tmask, base, 8, 255)
                nib = 1

            _context_inputs(table, base, nib, sm, indirect, slot, hidx, x)
            expected = _match_expected(buf, mptr, mlen, c0, bitpos)
            if expected < 0:
                mlen = 0
                mi = -1
                x[m0] = 0
                x[m0 + 1] = 0
            else:
                mi = _match_index(mlen, expected)
                x[m0] = _stretch(msm[mi] >> 16)
                x[m0 + 1] = (2 * expected - 1) * min(mlen, 32) * 32
            x[m0 + 2] = 256

            # The network: probability of a 1 among the symbols still possible.
            width = 1 << (8 - bitpos)
            lo = (c0 - (1 << bitpos)) * width
            f0 = cum[lo + width // 2] - cum[lo]
            f1 = cum[lo + width] - cum[lo + width // 2]
            p_nn = (f1 * 65536 + ((f0 + f1) >> 1)) // (f0 + f1)
            p_nn = min(65535, max(1, p_nn))
            st_nn = np.int64(_stretch(p_nn))
            x[m0 + 3] = st_nn
            if variant != 1:
                x[m0 + 4] = (p_nn - 32768) >> 4
            i1 = ((c4 & 255) << 8) | c0
            i2 = ((((c4 & 0xFFFF) * 2654435761) >> 8) ^ (c0 * 0x9E3)) & (LOCAL_SIZE - 1)
            x[lx] = _counter16_st(local[j, 0, i1])
            x[lx + 1] = _counter16_st(local[j, 1, i2])
            i3 = ((((c4 & 0xFFFFFF) * 2654435761) >> 12) ^ (c0 * 0x9E3)) & (LOCAL_SIZE - 1)
            x[lx + 2] = _counter16_st(local[j, 2, i3])
            conf = min(3, abs(st_nn) >> 9)

            # Three mixers, selected by context state, partial byte and previous
            # byte, and a final mixer over their outputs.
            wa = (((found * 3) + mstate) * 4 + conf) * nin
            wb = c0 * nin
            wc = (c4 & 255) * nin
            agree = 0
            if (top | 256) >> (8 - bitpos) == c0:
                agree = 1 + ((top >> (7 - bitpos)) & 1)
            wd = ((agree * 8 + top_bucket) * 8 + bitpos) * nin
            dot_a = np.int64(0)
            dot_b = np.int64(0)
            dot_c = np.int64(0)
            dot_d = np.int64(0)
            for k in range(nin):
                xk = np.int64(x[k])
                dot_a += xk * w_a[wa + k]
                dot_b += xk * w_b[wb + k]
                dot_c += xk * w_c[wc + k]
            if variant != 1:
                for k in range(nin):
                    dot_d += np.int64(x[k]) * w_d[wd + k]
            st_a = max(-STRETCH_MAX, min(STRETCH_MAX, dot_a >> 16))
            st_b = max(-STRETCH_MAX, min(STRETCH_MAX, dot_b >> 16))
            st_c = max(-STRETCH_MAX, min(STRETCH_MAX, dot_c >> 16))
            st_d = max(-STRETCH_MAX, min(STRETCH_MAX, dot_d >> 16))
            p_a = np.int64(_squash(st_a))
            p_b = np.int64(_squash(st_b))
            p_c = np.int64(_squash(st_c))
            p_d = np.int64(_squash(st_d))
            if variant == 1:
                wf = bitpos * 4
                dot_f = (st_a * w_f[wf] + st_b * w_f[wf + 1] + st_c * w_f[wf + 2] + 256 * w_f[wf + 3]) >> 16
            else:
                wf = bitpos * 5
                dot_f = (
                    st_a * w_f[wf] + st_b * w_f[wf + 1] + st_c * w_f[wf + 2] + st_d * w_f[wf + 3] + 256 * w_f[wf + 4]
                ) >> 16
            st = max(-STRETCH_MAX, min(STRETCH_MAX, dot_f))
            p_mix = np.int64(_squash(st))

            sc = max(-2047, min(2047, st)) + 2048
            lo_a = sc >> 7
            wt = sc & 127
            a2 = ((c0 & 255) | ((c4 & 255) << 8)) * _APM_ROWS + lo_a
            a3 = ((c0 & 255) | (min(15, abs(st_nn) >> 8) << 8)) * _APM_ROWS + lo_a
            p3 = (np.int64(apm_nn[a3]) * (128 - wt) + np.int64(apm_nn[a3 + 1]) * wt) >> 7
            p2 = (np.int64(apm2[a2]) * (128 - wt) + np.int64(apm2[a2 + 1]) * wt) >> 7
            if variant == 1:
                p = min(65535, max(1, (4 * p_mix + 2 * p2 + 2 * p3 + 4) >> 3))
            else:
                h2 = ((((c4 & 0xFFFF) << 8) | (c0 & 255)) * 2654435761) >> 16
                a4 = (h2 & (APM_O2_ROWS - 1)) * _APM_ROWS + lo_a
                p4 = (np.int64(apm_o2[a4]) * (128 - wt) + np.int64(apm_o2[a4 + 1]) * wt) >> 7
                p = min(65535, max(1, (APM_MIX * p_mix + 4 * p2 + 4 * p3 + (8 - APM_MIX) * p4 + 8) >> 4))

            bit, x1, x2, dx, io_pos = code_bit(decoding, x1, x2, dx, io_pos, src, dst, pos, bitpos, p)
            if io_pos < 0:
                return False
            if trace.shape[0]:
                record_lanes(
                    trace, pos, bit, p, p_mix, p_nn, x, nin, groups, w_a, wa, w_b, wb, w_c, wc, w_d, wd, w_f, wf,
                    variant != 1, mi, msm,
                )  # fmt: skip

            target = bit << 16
            err_a = (target - p_a) * mix_shift
            err_b = (target - p_b) * mix_shift
            err_c = (target - p_c) * mix_shift
            for k in range(nin):
                xk = np.int64(x[k])
                w_a[wa + k] += (xk * err_a) >> 20
                w_b[wb + k] += (xk * err_b) >> 20
                w_c[wc + k] += (xk * err_c) >> 20
            err_f = (target - p_mix) * FINAL_RATE
            w_f[wf] += (st_a * err_f) >> 20
            w_f[wf + 1] += (st_b * err_f) >> 20
            w_f[wf + 2] += (st_c * err_f) >> 20
            if variant == 1:
                w_f[wf + 3] += (256 * err_f) >> 20
            else:
                err_d = (target - p_d) * mix_shift
                for k in range(nin):
                    w_d[wd + k] += (np.int64(x[k]) * err_d) >> 20
                w_f[wf + 3] += (st_d * err_f) >> 20
                w_f[wf + 4] += (256 * err_f) >> 20
            ai = a2 + (wt >> 6)
            apm2[ai] += ((target - apm2[ai]) * 3) >> 6
            ai = a3 + (wt >> 6)
            apm_nn[ai] += ((target - apm_nn[ai]) * 3) >> 6
            if variant != 1:
                ai = a4 + (wt >> 6)
                apm_o2[ai] += ((target - apm_o2[ai]) * 3) >> 6
            local[j, 0, i1] = _counter16_update(local[j, 0, i1], bit, 15)
            local[j, 1, i2] = _counter16_update(local[j, 1, i2], bit, 15)
            local[j, 2, i3] = _counter16_update(local[j, 2, i3], bit, 15)
            _context_update(table, sm, indirect, slot, hidx, bit, limit)
            if mi >= 0:
                _map_update(msm, mi, bit, 255)
            c0 = (c0 << 1) | bit
            nib = (nib << 1) | bit

        c = c0 & 255
        if decoding:
            dst[pos] = c
        c4, c8 = _push_byte(c4, c8, c)

        # Record model, on offsets within the lane.
        gap = t + 1 - rec[j, c]
        if 16 <= gap <= 4096 and gap == rec[j, 256 + c]:
            if gap == lanes[j, L_RCAND]:
                if lanes[j, L_RVOTES] < 64:
                    lanes[j, L_RVOTES] += 1
                if lanes[j, L_RVOTES] >= 8:
                    rlen = gap
            elif lanes[j, L_RVOTES] > 0:
                lanes[j, L_RVOTES] -= 1
            else:
                lanes[j, L_RCAND] = gap
        rec[j, 256 + c] = gap
        rec[j, c] = t + 1
        if rlen > 0 and t + 1 >= 2 * rlen:
            above = np.int64(buf[pos + 1 - rlen]) | (np.int64(buf[pos + 1 - 2 * rlen]) << 8)

        if (97 <= c <= 122) or (65 <= c <= 90) or c >= 128:
            if 65 <= c <= 90:
                c += 32
            word = (word ^ np.uint64(c)) * np.uint64(0xD6E8FEB86659FD93)
        elif word != 0:
            word_prev = word
            word = np.uint64(0)

        # Match model: extend, or look up the last match_min bytes of this lane.
        if mlen > 0:
            mlen = min(mlen + 1, 65535)
            mptr += 1
        if match_min > 0 and t + 1 >= match_min:
            mslot = _match_slot(c4, c8, match_min, match_table.shape[0])
            if mlen == 0:
                cand = np.int64(match_table[mslot])
                if 0 < cand < n and _coded(cand, lane_len, t, j + 1):
                    # Bytes before a coded byte in its own lane are coded too.
                    most = min(32, t + 1, cand % lane_len)
                    ln = 0
                    while ln < most and buf[cand - 1 - ln] == buf[pos - ln]:
                        ln += 1
                    if ln >= match_min:
                        mlen = ln
                        mptr = cand
            if pos + 1 < n:
                match_table[mslot] = pos + 1

        lanes[j, L_C4] = c4
        lanes[j, L_C8] = c8
        lanes[j, L_WORD] = np.int64(word)
        lanes[j, L_WORD_PREV] = np.int64(word_prev)
        lanes[j, L_MPTR] = mptr
        lanes[j, L_MLEN] = mlen
        lanes[j, L_RLEN] = rlen
        lanes[j, L_ABOVE] = above

    coder[C_X1] = x1
    coder[C_X2] = x2
    coder[C_X] = dx
    coder[C_POS] = io_pos
    return True
