"""Compiled kernel of the context-mixing model (numba, integer arithmetic only).

One function, :func:`run`, both encodes and decodes a frame: the model code
is shared, and only the step that turns a probability and a bit into coded
bytes differs.  Keeping both directions in one body is what guarantees that
the decoder sees exactly the probabilities the encoder saw.

Per byte the kernel computes a hash for each configured context.  Every hash
selects, per nibble, a 64-byte bucket of a shared table: slot 0 holds a check
value that detects most collisions, slots 1..15 hold one counter per node of
the nibble's binary tree.  A counter packs

* a 16-bit probability that adapts at rate ``1/(n + 1.5)``, ``n`` being capped
  by the level's ``limit`` (fast learning first, then a steady rate);
* ``n``, the number of updates seen (8 bits);
* the last up to seven bits seen in this slot behind a sentinel bit (8 bits),
  which indexes an adaptive map per context (indirect modelling: "what
  usually follows this short history").

Each context thus gives two inputs to the mixer.  A match model (longest
earlier occurrence of the last few bytes) adds two more.  Two gated linear
mixers in the logistic domain (one selected by how many contexts were seen
before and the match state, one by the partial byte) are averaged, and two
adaptive probability maps refine the result before it reaches the coder.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..coder import code_bit, finish_coder, start_coder
from ..logistic import SQUASH, STRETCH, STRETCH_MAX
from .trace_kernel import record_cm, record_fast

# Layout of the ``params`` array handed to :func:`run`.
P_TABLE_BITS = 0
P_MATCH_MIN = 1
P_MATCH_BITS = 2
P_LIMIT = 3
P_MIX_SHIFT = 4
P_FLAGS = 5
P_NCTX = 6
P_CTX = 7  # context identifiers follow

# Bits of ``params[P_FLAGS]``: optional stages, off at the fastest level.
FLAG_INDIRECT = 1  # second input per context from its bit history
FLAG_MIXER2 = 2  # a second mixer selected by the partial byte
FLAG_APM2 = 4  # an order-1 adaptive probability map
MAX_CTX = 24

# Context identifiers.  0..8: the previous k bytes (order k).
CTX_WORD = 20  # the current word (letters only, case-folded)
CTX_WORD_PREV = 21  # the current word and the previous one
CTX_RECORD = 40  # the bytes one and two records above (fixed-length records)
CTX_RECORD_LEFT = 41  # the byte one record above and the previous byte

_K1 = np.uint64(0x9E3779B97F4A7C15)
_K2 = np.uint64(0xD6E8FEB86659FD93)

_APM_ROWS = 33


def _rate_table() -> np.ndarray:
    n = np.arange(256, dtype=np.int64)
    return ((2 * 65536) // (2 * n + 3)).astype(np.int32)


def _history_init() -> np.ndarray:
    """Initial 22-bit probabilities for the histories of the indirect maps."""
    init = np.full(256, 1 << 21, dtype=np.int64)
    for h in range(2, 256):
        bits = h.bit_length() - 1  # bits behind the sentinel
        ones = bin(h & ((1 << bits) - 1)).count("1")
        init[h] = ((2 * ones + 1) << 22) // (2 * bits + 2)
    return (init << 10).astype(np.uint32)


RATE = _rate_table()
HIST_INIT = _history_init()
SM_RATE = ((2 * 65536) // (2 * np.arange(1024, dtype=np.int64) + 3)).astype(np.int32)


@njit(cache=True, inline="always")
def _hash(a, b):
    x = (np.uint64(a) ^ (np.uint64(b) * _K1)) * _K2
    return x ^ (x >> np.uint64(29))


@njit(cache=True, inline="always")
def _stretch(p):
    return STRETCH[p]


@njit(cache=True, inline="always")
def _squash(d):
    if d > STRETCH_MAX:
        d = STRETCH_MAX
    elif d < -STRETCH_MAX:
        d = -STRETCH_MAX
    return SQUASH[d + STRETCH_MAX]


@njit(cache=True, inline="always")
def _context_hash(cid, c4, c8, word, word_prev, rlen, above):
    if cid <= 4:
        if cid == 4:
            v = c4
        else:
            v = c4 & ((np.int64(1) << (8 * cid)) - 1)
        return _hash(v, cid + 1)
    if cid <= 8:
        v = c8 & ((np.int64(1) << (8 * (cid - 4))) - 1)
        return _hash(_hash(c4, v), cid + 1)
    if cid == CTX_WORD:
        return _hash(word, cid)
    if cid == CTX_WORD_PREV:
        return _hash(_hash(word, word_prev), cid)
    if cid == CTX_RECORD:
        return _hash(above | (rlen << 16), cid)
    if cid == CTX_RECORD_LEFT:
        return _hash((above & 0xFF) | ((c4 & 0xFF) << 8) | (rlen << 16), cid)
    return _hash(0, cid)


@njit(cache=True, inline="always")
def _push_byte(c4, c8, c):
    """Shift byte ``c`` into the history: ``c4`` holds the last four bytes, ``c8`` the four before."""
    return ((c4 << 8) | c) & 0xFFFFFFFF, ((c8 << 8) | (c4 >> 24)) & 0xFFFFFFFF


@njit(cache=True, inline="always")
def _counter32_update(s, bit, limit):
    """Update a 32-bit counter: probability (16 bits, stored XOR 0x8000), count, bit history.

    The history keeps the last up to seven bits behind a sentinel bit; once
    full, the oldest bit drops out and the sentinel stays at the top.
    """
    p = np.int64((s >> 16) ^ 0x8000)
    n = np.int64((s >> 8) & 255)
    h = np.int64(s & 255)
    p += ((bit * 65535 - p) * RATE[n]) >> 16
    n = min(n + 1, limit)
    h = (max(h, 1) << 1) | bit
    over = h >> 8
    h = (h & (255 >> over)) | (over << 7)
    return np.uint32(((p ^ 0x8000) << 16) | (n << 8) | h)


@njit(cache=True, inline="always")
def _map_update(table, i, bit, limit):
    """Update entry ``i`` of an adaptive map (22-bit probability, 10-bit count)."""
    v = np.int64(table[i])
    sp = v >> 10
    sn = v & 1023
    sp += (((bit << 22) - sp) * SM_RATE[sn]) >> 16
    table[i] = np.uint32((sp << 10) | min(sn + 1, limit))


@njit(cache=True, inline="always")
def _match_expected(buf, mptr, mlen, c0, bitpos):
    """The bit the current match predicts, or -1 when there is no (longer a) match."""
    if mlen == 0:
        return -1
    pb = np.int64(buf[mptr]) | 256
    if (pb >> (8 - bitpos)) != c0:
        return -1
    return (pb >> (7 - bitpos)) & 1


@njit(cache=True, inline="always")
def _match_index(mlen, expected):
    """Index of the adaptive map entry for a match of length ``mlen`` predicting ``expected``."""
    lq = mlen if mlen < 32 else 32 + min((mlen - 32) >> 4, 31)
    return lq * 2 + expected


@njit(cache=True, inline="always")
def _match_slot(c4, c8, match_min, size):
    """Match-table entry for the last ``match_min`` bytes (``size`` a power of two)."""
    if match_min <= 4:
        mh = _hash(c4 & ((np.int64(1) << (8 * match_min)) - 1), 99)
    else:
        mh = _hash(_hash(c4, c8 & ((np.int64(1) << (8 * (match_min - 4))) - 1)), 99)
    return np.int64(mh >> np.uint64(40)) & (size - 1)


@njit(cache=True, inline="always")
def _match_next(buf, pos, c4, c8, mptr, mlen, match_min, match_table):
    """After byte ``pos``: extend the current match, or look up a new one.

    The table maps a hash of the last ``match_min`` bytes to the position
    after their latest occurrence; a candidate is verified byte by byte, so
    hash collisions never produce false matches.
    """
    if mlen > 0:
        mlen = min(mlen + 1, 65535)
        mptr += 1
    if match_min > 0 and pos + 1 >= match_min:
        mslot = _match_slot(c4, c8, match_min, match_table.shape[0])
        if mlen == 0:
            cand = np.int64(match_table[mslot])
            if cand > 0:
                ln = 0
                while ln < 32 and ln < cand and buf[cand - 1 - ln] == buf[pos - ln]:
                    ln += 1
                if ln >= match_min:
                    mlen = ln
                    mptr = cand
        match_table[mslot] = pos + 1
    return mptr, mlen


@njit(cache=True, inline="always")
def _find_bucket(table, hh, mask, count_shift, count_mask):
    """Slot-0 index of the bucket for hash ``hh``: found, or claimed and cleared.

    Works on both tables: 32-bit slots (count in bits 8..15) and compact
    16-bit slots (count in bits 0..3); the check value has the slot's width.
    """
    chk = hh & np.uint64((1 << (8 * table.itemsize)) - 1)
    b = np.int64(hh >> np.uint64(32)) & mask
    base0 = b << 4
    if table[base0] == chk:
        return base0, 1
    base1 = (b ^ 1) << 4
    if table[base1] == chk:
        return base1, 1
    # Replace the bucket whose first node has seen fewer updates.
    n0 = (np.int64(table[base0 + 1]) >> count_shift) & count_mask
    n1 = (np.int64(table[base1 + 1]) >> count_shift) & count_mask
    base = base0 if n0 <= n1 else base1
    table[base] = chk
    for j in range(1, 16):
        table[base + j] = 0
    return base, 0


@njit(cache=True, inline="always")
def _find_buckets(table, hashes, key, mask, base, count_shift, count_mask):
    """Locate every context's bucket for the nibble ``key``; return how many were found."""
    found = 0
    for i in range(hashes.shape[0]):
        b, f = _find_bucket(table, _hash(hashes[i], key), mask, count_shift, count_mask)
        base[i] = b
        found += f
    return found


@njit(cache=True, inline="always")
def _context_inputs(table, base, nib, sm, indirect, slot, hidx, x):
    """Mixer inputs of every context for the node ``nib`` of the current nibble.

    Records in ``slot`` and ``hidx`` which counter and which history-map
    entry each context used, for :func:`_context_update`.
    """
    for i in range(slot.shape[0]):
        k = base[i] + nib
        slot[i] = k
        s = table[k]
        p = np.int64((s >> 16) ^ 0x8000)
        h = np.int64(s & 255)
        if indirect:
            hidx[i] = i * 256 + h
            x[2 * i] = _stretch(p)
            x[2 * i + 1] = _stretch(sm[i * 256 + h] >> 16)
        else:
            x[i] = _stretch(p)


@njit(cache=True, inline="always")
def _context_update(table, sm, indirect, slot, hidx, bit, limit):
    """Teach every context's counter (and history map) the coded bit."""
    for i in range(slot.shape[0]):
        table[slot[i]] = _counter32_update(table[slot[i]], bit, limit)
        if indirect:
            _map_update(sm, hidx[i], bit, 1023)


@njit(cache=True, nogil=True)
def run(decoding, src, dst, n, params, table, match_table, trace):
    """Encode ``src[:n]`` into ``dst``, or decode ``n`` bytes of ``src`` into ``dst``.

    Returns the number of coded bytes written (encoding; -1 when ``dst`` is
    too small, meaning the frame does not compress) or consumed (decoding).
    A ``trace`` with rows gets each byte's costs (:mod:`.trace_kernel`).
    """
    nctx = params[P_NCTX]
    limit = params[P_LIMIT]
    mix_shift = params[P_MIX_SHIFT]
    match_min = params[P_MATCH_MIN]
    tmask = (table.shape[0] >> 4) - 1
    cids = params[P_CTX : P_CTX + nctx]
    indirect = (params[P_FLAGS] & FLAG_INDIRECT) != 0
    mixer2 = (params[P_FLAGS] & FLAG_MIXER2) != 0
    use_apm2 = (params[P_FLAGS] & FLAG_APM2) != 0

    per_ctx = 2 if indirect else 1
    nin = per_ctx * nctx + 3
    x = np.zeros(nin, dtype=np.int32)
    sets_a = (nctx + 1) * 3
    w_a = np.full(sets_a * nin, 1 << 14, dtype=np.int32)
    w_b = np.full(256 * nin, 1 << 14, dtype=np.int32)
    sm = np.empty(nctx * 256, dtype=np.uint32)
    for i in range(nctx):
        sm[i * 256 : (i + 1) * 256] = HIST_INIT
    msm = np.full(64 * 2, np.uint32(1 << 31), dtype=np.uint32)
    apm1 = np.empty(256 * _APM_ROWS, dtype=np.int32)
    apm2 = np.empty((65536 if use_apm2 else 1) * _APM_ROWS, dtype=np.int32)
    ramp = np.empty(_APM_ROWS, dtype=np.int32)  # every context starts on the identity map
    for j in range(_APM_ROWS):
        ramp[j] = _squash((j - 16) * 128)
    for c in range(256):
        apm1[c * _APM_ROWS : (c + 1) * _APM_ROWS] = ramp
    for c in range(apm2.shape[0] // _APM_ROWS):  # row by row: in memory order (8.6 MB at level 2 and 3)
        apm2[c * _APM_ROWS : (c + 1) * _APM_ROWS] = ramp

    hashes = np.zeros(nctx, dtype=np.uint64)
    base = np.zeros(nctx, dtype=np.int64)
    slot = np.zeros(nctx, dtype=np.int64)
    hidx = np.zeros(nctx, dtype=np.int64)

    x1, x2, dx, io_pos = start_coder(decoding, src)
    buf = dst if decoding else src

    c4 = np.int64(0)
    c8 = np.int64(0)
    word = np.uint64(0)
    word_prev = np.uint64(0)
    mptr = 0
    mlen = 0
    found = 0
    # Record model: a stride that the same byte value keeps repeating at.
    last_pos = np.zeros(256, dtype=np.int64)
    last_gap = np.zeros(256, dtype=np.int64)
    rcand = 0
    rvotes = 0
    rlen = 0
    above = 0

    for pos in range(n):
        for i in range(nctx):
            hashes[i] = _context_hash(cids[i], c4, c8, word, word_prev, rlen, above)
        mstate = 0 if mlen == 0 else (1 if mlen < 32 else 2)
        c0 = 1
        nib = 1
        for bitpos in range(8):
            if bitpos == 0 or bitpos == 4:
                found = _find_buckets(table, hashes, 0 if bitpos == 0 else c0, tmask, base, 8, 255)
                nib = 1

            # ---- predict ----
            _context_inputs(table, base, nib, sm, indirect, slot, hidx, x)
            expected = _match_expected(buf, mptr, mlen, c0, bitpos)
            if expected < 0:
                mlen = 0
                mi = -1
                x[nin - 3] = 0
                x[nin - 2] = 0
            else:
                mi = _match_index(mlen, expected)
                x[nin - 3] = _stretch(msm[mi] >> 16)
                x[nin - 2] = (2 * expected - 1) * min(mlen, 32) * 32
            x[nin - 1] = 256

            wa = ((found * 3) + mstate) * nin
            wb = c0 * nin
            dot_a = np.int64(0)
            for j in range(nin):
                dot_a += np.int64(x[j]) * w_a[wa + j]
            st_a = max(-STRETCH_MAX, min(STRETCH_MAX, dot_a >> 16))
            p_a = np.int64(_squash(st_a))
            if mixer2:
                dot_b = np.int64(0)
                for j in range(nin):
                    dot_b += np.int64(x[j]) * w_b[wb + j]
                st_b = max(-STRETCH_MAX, min(STRETCH_MAX, dot_b >> 16))
                p_b = np.int64(_squash(st_b))
                st = (st_a + st_b) >> 1
                p_mix = np.int64(_squash(st))
            else:
                st = st_a
                p_b = p_a
                p_mix = p_a

            # Adaptive probability maps, interpolated over the stretch domain.
            sc = max(-2047, min(2047, st)) + 2048
            lo = sc >> 7
            wt = sc & 127
            a1 = (c0 & 255) * _APM_ROWS + lo
            a2 = ((c0 & 255) | ((c4 & 255) << 8)) * _APM_ROWS + lo
            p1 = (np.int64(apm1[a1]) * (128 - wt) + np.int64(apm1[a1 + 1]) * wt) >> 7
            if use_apm2:
                p2 = (np.int64(apm2[a2]) * (128 - wt) + np.int64(apm2[a2 + 1]) * wt) >> 7
                p = (p_mix + p1 + 2 * p2 + 2) >> 2
            else:
                p = (p_mix + p1 + 1) >> 1
            if p < 1:
                p = 1
            elif p > 65535:
                p = 65535

            # ---- code ----
            bit, x1, x2, dx, io_pos = code_bit(decoding, x1, x2, dx, io_pos, src, dst, pos, bitpos, p)
            if io_pos < 0:
                return -1
            if trace.shape[0]:
                record_cm(trace, pos, bit, p, p_mix, x, nin, per_ctx * nctx, w_a, wa, w_b, wb, mixer2, mi, msm)

            # ---- update ----
            target = bit << 16
            err_a = (target - p_a) * mix_shift
            err_b = (target - p_b) * mix_shift
            for j in range(nin):
                w_a[wa + j] += (np.int64(x[j]) * err_a) >> 20
            if mixer2:
                for j in range(nin):
                    w_b[wb + j] += (np.int64(x[j]) * err_b) >> 20
            ai = a1 + (wt >> 6)
            apm1[ai] += ((target - apm1[ai]) * 3) >> 6
            if use_apm2:
                ai = a2 + (wt >> 6)
                apm2[ai] += ((target - apm2[ai]) * 3) >> 6
            _context_update(table, sm, indirect, slot, hidx, bit, limit)
            if mi >= 0:
                _map_update(msm, mi, bit, 255)
            c0 = (c0 << 1) | bit
            nib = (nib << 1) | bit

        c = c0 & 255
        if decoding:
            dst[pos] = c
        c4, c8 = _push_byte(c4, c8, c)
        gap = pos + 1 - last_pos[c]
        if 16 <= gap <= 4096 and gap == last_gap[c]:
            if gap == rcand:
                if rvotes < 64:
                    rvotes += 1
                if rvotes >= 8:
                    rlen = gap
            elif rvotes > 0:
                rvotes -= 1
            else:
                rcand = gap
        last_gap[c] = gap
        last_pos[c] = pos + 1
        if rlen > 0 and pos + 1 >= 2 * rlen:
            above = np.int64(buf[pos + 1 - rlen]) | (np.int64(buf[pos + 1 - 2 * rlen]) << 8)
        if (97 <= c <= 122) or (65 <= c <= 90) or c >= 128:
            if 65 <= c <= 90:
                c += 32
            word = (word ^ np.uint64(c)) * _K2
        elif word != 0:
            word_prev = word
            word = np.uint64(0)

        mptr, mlen = _match_next(buf, pos, c4, c8, mptr, mlen, match_min, match_table)

    return finish_coder(decoding, x1, io_pos, dst)


# Stretch of the compact counters' 12-bit probabilities (taken at the bucket
# centre): 8 KiB, small enough to stay in the L1 cache.
STRETCH12 = STRETCH[(np.arange(4096) << 4) | 8].astype(np.int16)
RATE16 = ((2 * 65536) // (2 * np.arange(16, dtype=np.int64) + 3)).astype(np.int32)


@njit(cache=True, inline="always")
def _counter16_st(s):
    """Stretched probability of a compact counter (12-bit probability, 4-bit count)."""
    return STRETCH12[(np.int64(s) >> 4) ^ 0x800]


@njit(cache=True, inline="always")
def _counter16_update(s, bit, limit):
    p = (np.int64(s) >> 4) ^ 0x800
    n = np.int64(s) & 15
    p += ((bit * 4095 - p) * RATE16[n]) >> 16
    return np.uint16(((p ^ 0x800) << 4) | min(n + 1, limit))


@njit(cache=True, nogil=True)
def run_fast(decoding, src, dst, n, params, table, match_table, trace):
    """The lean kernel of level 1: same contract as :func:`run`.

    Compact 16-bit counters (no bit histories), a direct order-1 table, the
    hashed contexts of ``params``, the match model and one mixer: about half
    the work per bit of :func:`run`.
    """
    nctx = params[P_NCTX]
    limit = min(params[P_LIMIT], 15)
    mix_rate = params[P_MIX_SHIFT]
    match_min = params[P_MATCH_MIN]
    tmask = (table.shape[0] >> 4) - 1
    cids = params[P_CTX : P_CTX + nctx]

    nin = nctx + 4
    x = np.zeros(nin, dtype=np.int32)
    w = np.full((nctx + 1) * 3 * nin, 1 << 14, dtype=np.int32)
    order1 = np.zeros(65536, dtype=np.uint16)
    msm = np.full(64 * 2, np.uint32(1 << 31), dtype=np.uint32)
    hashes = np.zeros(nctx, dtype=np.uint64)
    base = np.zeros(nctx, dtype=np.int64)

    x1, x2, dx, io_pos = start_coder(decoding, src)
    buf = dst if decoding else src
    c4 = np.int64(0)
    c8 = np.int64(0)
    mptr = 0
    mlen = 0
    found = 0
    zero = np.uint64(0)

    for pos in range(n):
        for i in range(nctx):
            hashes[i] = _context_hash(cids[i], c4, c8, zero, zero, 0, 0)
        mstate = 0 if mlen == 0 else (1 if mlen < 32 else 2)
        o1 = (c4 & 255) << 8
        c0 = 1
        nib = 1
        for bitpos in range(8):
            if bitpos == 0 or bitpos == 4:
                found = _find_buckets(table, hashes, 0 if bitpos == 0 else c0, tmask, base, 0, 15)
                nib = 1
            for i in range(nctx):
                x[i] = _counter16_st(table[base[i] + nib])
            x[nctx] = _counter16_st(order1[o1 | c0])
            expected = _match_expected(buf, mptr, mlen, c0, bitpos)
            if expected < 0:
                mlen = 0
                mi = -1
                x[nctx + 1] = 0
            else:
                mi = _match_index(mlen, expected)
                x[nctx + 1] = _stretch(msm[mi] >> 16)
            x[nctx + 2] = 0 if expected < 0 else (2 * expected - 1) * min(mlen, 32) * 32
            x[nctx + 3] = 256
            wi = (found * 3 + mstate) * nin
            dot = np.int64(0)
            for j in range(nin):
                dot += np.int64(x[j]) * w[wi + j]
            p = np.int64(_squash(dot >> 16))

            bit, x1, x2, dx, io_pos = code_bit(decoding, x1, x2, dx, io_pos, src, dst, pos, bitpos, p)
            if io_pos < 0:
                return -1
            if trace.shape[0]:
                record_fast(trace, pos, bit, p, x, nin, nctx, w, wi, mi, msm)

            err = ((bit << 16) - p) * mix_rate
            for j in range(nin):
                w[wi + j] += (np.int64(x[j]) * err) >> 20
            for i in range(nctx):
                k = base[i] + nib
                table[k] = _counter16_update(table[k], bit, limit)
            order1[o1 | c0] = _counter16_update(order1[o1 | c0], bit, limit)
            if mi >= 0:
                _map_update(msm, mi, bit, 255)
            c0 = (c0 << 1) | bit
            nib = (nib << 1) | bit

        c = c0 & 255
        if decoding:
            dst[pos] = c
        c4, c8 = _push_byte(c4, c8, c)
        mptr, mlen = _match_next(buf, pos, c4, c8, mptr, mlen, match_min, match_table)

    return finish_coder(decoding, x1, io_pos, dst)
