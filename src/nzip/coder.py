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

The coder's state lives in plain integers that the functions take and
return, so that numba keeps it in registers once they are inlined into a
model kernel:

* encoder state ``(x1, x2, pos)``, writing into a ``uint8`` array;
* decoder state ``(x1, x2, x, pos)``, reading from a ``uint8`` array.
"""

from __future__ import annotations

import numpy as np
from numba import njit

P_BITS = 16
P_ONE = 1 << P_BITS
_MASK32 = 0xFFFFFFFF


@njit(cache=True, inline="always")
def _split(x1: int, x2: int, p1: int) -> int:
    rng = x2 - x1
    return x1 + (rng >> 16) * p1 + (((rng & 0xFFFF) * p1) >> 16)


@njit(cache=True, inline="always")
def encode_bit(x1: int, x2: int, pos: int, out, p1: int, bit: int) -> tuple[int, int, int]:
    """Code ``bit`` with probability ``p1``/65536 of a 1; return the new state.

    ``pos`` comes back as -1 when ``out`` is full: the caller then gives up
    on modelling this frame and stores it instead.
    """
    xmid = _split(x1, x2, p1)
    if bit:
        x2 = xmid
    else:
        x1 = xmid + 1
    while ((x1 ^ x2) & 0xFF000000) == 0:
        if pos >= out.shape[0]:
            return x1, x2, -1
        out[pos] = x2 >> 24
        pos += 1
        x1 = (x1 << 8) & _MASK32
        x2 = ((x2 << 8) & _MASK32) | 255
    return x1, x2, pos


@njit(cache=True, inline="always")
def finish_encoder(x1: int, pos: int, out) -> int:
    """Write the final byte; return the total coded length, or -1 if ``out`` is full."""
    if pos < 0 or pos >= out.shape[0]:
        return -1
    out[pos] = x1 >> 24
    return pos + 1


@njit(cache=True, inline="always")
def _next_byte(src, pos: int) -> int:
    if pos < src.shape[0]:
        return src[pos]
    return 255


@njit(cache=True, inline="always")
def start_decoder(src) -> tuple[int, int, int, int]:
    """Decoder state ``(x1, x2, x, pos)`` at the start of ``src``."""
    x = 0
    for i in range(4):
        x = (x << 8) | _next_byte(src, i)
    return 0, _MASK32, x, 4


@njit(cache=True, inline="always")
def decode_bit(x1: int, x2: int, x: int, pos: int, src, p1: int) -> tuple[int, int, int, int, int]:
    """Decode one bit coded with probability ``p1``/65536 of a 1: ``(bit, x1, x2, x, pos)``."""
    xmid = _split(x1, x2, p1)
    if x <= xmid:
        bit = 1
        x2 = xmid
    else:
        bit = 0
        x1 = xmid + 1
    while ((x1 ^ x2) & 0xFF000000) == 0:
        x1 = (x1 << 8) & _MASK32
        x2 = ((x2 << 8) & _MASK32) | 255
        x = ((x << 8) & _MASK32) | _next_byte(src, pos)
        pos += 1
    return bit, x1, x2, x, pos


@njit(cache=True, inline="always")
def decoder_consumed(pos: int) -> int:
    """Input bytes the decoder has really used, given its ``pos``."""
    return pos - 3


# A model kernel that both encodes and decodes (the surest way to give the
# decoder exactly the encoder's probabilities) uses the three functions below.
# They keep one state ``(x1, x2, x, pos)`` for either direction: ``x`` is only
# used when decoding, ``pos`` is the output position when encoding and the
# input position when decoding.


@njit(cache=True, inline="always")
def start_coder(decoding: bool, src) -> tuple[int, int, int, int]:
    """Initial state for encoding, or for decoding ``src``."""
    if decoding:
        return start_decoder(src)
    return 0, _MASK32, 0, 0


@njit(cache=True, inline="always")
def code_bit(
    decoding: bool, x1: int, x2: int, x: int, pos: int, src, dst, byte_pos: int, bitpos: int, p1: int
) -> tuple[int, int, int, int, int]:
    """Encode bit ``bitpos`` of ``src[byte_pos]`` into ``dst``, or decode the next bit from ``src``.

    Returns ``(bit, x1, x2, x, pos)``; when encoding, ``pos`` is -1 once ``dst`` is full.
    """
    if decoding:
        return decode_bit(x1, x2, x, pos, src, p1)
    bit = (np.int64(src[byte_pos]) >> (7 - bitpos)) & 1
    x1, x2, pos = encode_bit(x1, x2, pos, dst, p1, bit)
    return bit, x1, x2, x, pos


@njit(cache=True, inline="always")
def finish_coder(decoding: bool, x1: int, pos: int, dst) -> int:
    """Encoding: flush, return the coded length (-1 if ``dst`` is full). Decoding: bytes consumed."""
    if decoding:
        return decoder_consumed(pos)
    return finish_encoder(x1, pos, dst)
