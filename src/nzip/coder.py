"""Binary arithmetic coder driven by 16-bit integer probabilities.

The coder codes one bit at a time.  Its only input besides the bit is
``p1``, the probability that the bit is 1, as an integer in ``[1, 65535]``
(units of 1/65536).  It never sees a float, so encoder and decoder agree bit
for bit on every machine.

It is a carry-less coder in the style of the PAQ family: the interval
``[x1, x2]`` is kept in 32 bits, and whenever the leading byte of both ends
agrees that byte is final and is shifted out.  Compared with an exact
arithmetic coder it wastes a tiny fraction of a bit when the interval
straddles a byte boundary; in exchange there is no carry propagation and the
decoder is a mirror image of the encoder.  Measured overhead on the benchmark
files is far below 0.01%.

Termination writes the leading byte of ``x1`` only; the decoder reads past the
end of its input as ``0xFF`` bytes, which keeps its value inside the final
interval.  Frame lengths come from the container, so no end-of-data symbol is
coded.

State is kept in small ``int64`` arrays so the functions can be inlined into
numba-compiled model kernels:

* encoder state ``[x1, x2, pos]``; the output buffer is a ``uint8`` array;
* decoder state ``[x1, x2, x, pos]``; the input is a ``uint8`` array.
"""

from __future__ import annotations

import numpy as np
from numba import njit

P_BITS = 16
P_ONE = 1 << P_BITS
_MASK32 = 0xFFFFFFFF


def new_encoder() -> np.ndarray:
    """A fresh encoder state ``[x1, x2, pos]``."""
    return np.array([0, _MASK32, 0], dtype=np.int64)


@njit(cache=True, inline="always")
def _split(x1: int, x2: int, p1: int) -> int:
    rng = x2 - x1
    return x1 + (rng >> 16) * p1 + (((rng & 0xFFFF) * p1) >> 16)


@njit(cache=True, inline="always")
def encode_bit(state: np.ndarray, out: np.ndarray, p1: int, bit: int) -> bool:
    """Code ``bit`` with probability ``p1``/65536 of a 1.

    Returns False when ``out`` is full: the caller then gives up on modelling
    this frame and stores it instead.
    """
    x1 = state[0]
    x2 = state[1]
    xmid = _split(x1, x2, p1)
    if bit:
        x2 = xmid
    else:
        x1 = xmid + 1
    pos = state[2]
    while ((x1 ^ x2) & 0xFF000000) == 0:
        if pos >= out.shape[0]:
            return False
        out[pos] = x2 >> 24
        pos += 1
        x1 = (x1 << 8) & _MASK32
        x2 = ((x2 << 8) & _MASK32) | 255
    state[0] = x1
    state[1] = x2
    state[2] = pos
    return True


@njit(cache=True)
def finish_encoder(state: np.ndarray, out: np.ndarray) -> int:
    """Write the final byte; return the total coded length, or -1 if ``out`` is full."""
    pos = state[2]
    if pos >= out.shape[0]:
        return -1
    out[pos] = state[0] >> 24
    state[2] = pos + 1
    return pos + 1


@njit(cache=True, inline="always")
def _next_byte(src: np.ndarray, pos: int) -> int:
    if pos < src.shape[0]:
        return src[pos]
    return 255


@njit(cache=True)
def new_decoder(src: np.ndarray) -> np.ndarray:
    """A decoder state ``[x1, x2, x, pos]`` positioned at the start of ``src``."""
    x = 0
    for i in range(4):
        x = (x << 8) | _next_byte(src, i)
    state = np.empty(4, dtype=np.int64)
    state[0] = 0
    state[1] = _MASK32
    state[2] = x
    state[3] = 4
    return state


@njit(cache=True, inline="always")
def decode_bit(state: np.ndarray, src: np.ndarray, p1: int) -> int:
    """Decode one bit coded with probability ``p1``/65536 of a 1."""
    x1 = state[0]
    x2 = state[1]
    x = state[2]
    xmid = _split(x1, x2, p1)
    if x <= xmid:
        bit = 1
        x2 = xmid
    else:
        bit = 0
        x1 = xmid + 1
    pos = state[3]
    while ((x1 ^ x2) & 0xFF000000) == 0:
        x1 = (x1 << 8) & _MASK32
        x2 = ((x2 << 8) & _MASK32) | 255
        x = ((x << 8) & _MASK32) | _next_byte(src, pos)
        pos += 1
    state[0] = x1
    state[1] = x2
    state[2] = x
    state[3] = pos
    return bit


@njit(cache=True)
def consumed(state: np.ndarray) -> int:
    """How many input bytes the decoder has really used (for sanity checks)."""
    return state[3] - 3
