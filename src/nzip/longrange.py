"""Find long matches across frames: repeats further back than a frame start.

Frames are coded independently, so a model never sees what lies before its
frame.  :class:`MatchFinder` looks, for each new frame, for long runs of
bytes that already occurred in earlier frames of the member (within a
window of ``2^window_log`` bytes) and takes them out: the frame then carries
a short list of matches (literal run, length, distance) and its model codes
only the bytes left over, the *residual*.  The decoder decodes residuals in
parallel as before and puts the matches back (:mod:`nzip.matches`).

The search is in the manner of rsync, rzip and zstd's long mode: a rolling
hash over 64-byte windows (a "gear" hash: shift left, add a random value per
byte) picks content-defined anchors, about one position in 32; an anchor's
hash indexes a table of the latest earlier anchor with that hash; a
candidate is verified byte by byte and extended both ways.  Everything here
is integer arithmetic in one sequential pass, so the matches depend only on
the bytes and the window, never on the thread count.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .container import DEFAULT_WINDOW_LOG, MAX_WINDOW_LOG, MIN_WINDOW_LOG
from .matches import MIN_MATCH

#: Matches shorter than this are left to the models (which code repeats they
#: can see cheaply); a match costs about 8 bytes of list.
FIND_MIN_MATCH = 128
_HASH_SPAN = 64  # bytes that a gear hash depends on
_ANCHOR_BITS = 5  # one anchor per 2^5 positions on average
_TABLE_BITS = 23  # 8 Mi entries: room for a 256 MiB window's anchors
_ANCHOR_SHIFT = 64 - _ANCHOR_BITS
_SLOT_SHIFT = _ANCHOR_SHIFT - _TABLE_BITS


def _gear_table() -> np.ndarray:
    """256 fixed pseudo-random 64-bit values (splitmix64 from a fixed seed): part of the encoder, not the format."""
    values, state, mask = [], 0x6E7A6970, (1 << 64) - 1
    for _ in range(256):
        state = (state + 0x9E3779B97F4A7C15) & mask
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        values.append(z ^ (z >> 31))
    return np.array(values, dtype=np.uint64)


_GEAR = _gear_table()


@njit(cache=True)
def _warm_hash(buf: np.ndarray, at: int, gear: np.ndarray) -> np.uint64:
    """The hash of the up to 63 bytes before ``at`` (the next byte completes a 64-byte window)."""
    h = np.uint64(0)
    for j in range(max(0, at - (_HASH_SPAN - 1)), at):
        h = (h << np.uint64(1)) + gear[buf[j]]
    return h


@njit(cache=True)
def _find(
    buf: np.ndarray,
    base: int,
    seg: int,
    end: int,
    window: int,
    min_len: int,
    table: np.ndarray,
    gear: np.ndarray,
    out: np.ndarray,
) -> int:
    """Matches for ``buf[seg:end]`` whose sources lie wholly before ``seg``; returns how many.

    ``buf[0]`` is member position ``base``; ``table`` holds member positions
    plus one (0: empty).  Row ``k`` of ``out``: literal bytes before the
    match, its length, its distance.
    """
    n = 0
    lit = seg
    h = _warm_hash(buf, seg, gear)
    i = seg
    while i < end:
        h = (h << np.uint64(1)) + gear[buf[i]]
        if (h >> np.uint64(_ANCHOR_SHIFT)) == 0:
            slot = (h >> np.uint64(_SLOT_SHIFT)) & np.uint64((1 << _TABLE_BITS) - 1)
            q = np.int64(table[slot]) - 1 - base
            dist = i - q
            if q >= 0 and q < seg and dist <= window:
                f = 0
                while i + f < end and q + f < seg and buf[i + f] == buf[q + f]:
                    f += 1
                b = 0
                while i - b > lit and q - b > 0 and buf[i - b - 1] == buf[q - b - 1]:
                    b += 1
                if f + b >= min_len:
                    start = i - b
                    out[n, 0] = start - lit
                    out[n, 1] = f + b
                    out[n, 2] = dist
                    n += 1
                    i = start + f + b
                    lit = i
                    h = _warm_hash(buf, i, gear)
                    continue
        i += 1
    return n


@njit(cache=True)
def _index(buf: np.ndarray, base: int, seg: int, end: int, table: np.ndarray, gear: np.ndarray) -> None:
    """Record the anchors of ``buf[seg:end]`` (latest wins)."""
    h = _warm_hash(buf, seg, gear)
    for i in range(seg, end):
        h = (h << np.uint64(1)) + gear[buf[i]]
        if (h >> np.uint64(_ANCHOR_SHIFT)) == 0:
            slot = (h >> np.uint64(_SLOT_SHIFT)) & np.uint64((1 << _TABLE_BITS) - 1)
            table[slot] = base + i + 1


@njit(cache=True)
def _residual(buf: np.ndarray, seg: int, end: int, matches: np.ndarray, out: np.ndarray) -> int:
    """Copy the bytes of ``buf[seg:end]`` that no match covers into ``out``; returns how many."""
    pos, r = seg, 0
    for k in range(matches.shape[0]):
        for j in range(matches[k, 0]):
            out[r + j] = buf[pos + j]
        r += matches[k, 0]
        pos += matches[k, 0] + matches[k, 1]
    for j in range(end - pos):
        out[r + j] = buf[pos + j]
    return r + end - pos


class MatchFinder:
    """The long-match search of one member: feed it the frames in order.

    Memory: the window (at most ``2^window_log`` bytes plus the frames of a
    batch) and a table of 8 Mi positions (64 MiB, touched as it fills).
    """

    def __init__(self, window_log: int = DEFAULT_WINDOW_LOG, min_len: int = FIND_MIN_MATCH) -> None:
        if not MIN_WINDOW_LOG <= window_log <= MAX_WINDOW_LOG:
            raise ValueError(f"window_log must be between {MIN_WINDOW_LOG} and {MAX_WINDOW_LOG}")
        self.window = 1 << window_log
        self._min_len = max(MIN_MATCH, min_len)
        self._table = np.zeros(1 << _TABLE_BITS, dtype=np.int64)
        self._buf = np.empty(0, dtype=np.uint8)
        self._base = 0  # member position of self._buf[0]
        self._used = 0  # bytes of self._buf in use

    def _append(self, raw: bytes) -> int:
        """Put ``raw`` after the window's bytes; return its position in the buffer."""
        keep = min(self._used, self.window)
        if self._used + len(raw) > len(self._buf):
            # Grow (doubling) up to the window plus four frames; past that, slide the window down.
            size = max(keep + len(raw), min(2 * len(self._buf), self.window + 4 * len(raw)), 1 << 16)
            grown = np.empty(size, dtype=np.uint8) if size > len(self._buf) else self._buf
            grown[:keep] = self._buf[self._used - keep : self._used]
            self._buf, self._base, self._used = grown, self._base + self._used - keep, keep
        seg = self._used
        self._buf[seg : seg + len(raw)] = np.frombuffer(raw, dtype=np.uint8)
        self._used += len(raw)
        return seg

    def add(self, raw: bytes) -> tuple[np.ndarray, bytes]:
        """The next frame's matches (rows of literal run, length, distance) and residual bytes."""
        seg = self._append(raw)
        end = seg + len(raw)
        out = np.empty((len(raw) // self._min_len + 1, 3), dtype=np.int64)
        n = _find(self._buf, self._base, seg, end, self.window, self._min_len, self._table, _GEAR, out)
        _index(self._buf, self._base, seg, end, self._table, _GEAR)
        matches = out[:n]
        if n == 0:
            return matches, raw
        residual = np.empty(len(raw), dtype=np.uint8)
        size = _residual(self._buf, seg, end, matches, residual)
        return matches, residual[:size].tobytes()
