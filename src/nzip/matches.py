"""The payload of a long frame: its match list, its residual, and putting the two back together.

A long frame (``FRAME_LONG``, see docs/FORMAT.md) stands for ``raw_size``
bytes of which some are copies of earlier frames.  Its payload is

* the match block: a varint count, then per match three varints (the
  literal bytes before it, its length, its distance back from its first
  byte); every source lies wholly before the frame and within the member's
  window;
* one byte saying how the residual (the bytes no match covers) is kept:
  coded by the member's model or stored;
* a CRC-32 of the match block followed by the residual bytes, so that a
  frame whose sources were lost can still vouch for its own bytes;
* the residual, coded or stored.

:class:`Window` keeps the last bytes of a member's output, as far back as
its matches may reach, and :func:`rebuild` puts a frame together from them.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from .container import MIN_BITS_PER_BYTE_SHIFT, pack_varint, read_varint
from .errors import CorruptDataError

#: No match is shorter (the format's rule, which bounds a list to raw_size / 32 entries).
MIN_MATCH = 32
RESIDUAL_MODELLED = 1
RESIDUAL_STORED = 2

Match = tuple[int, int, int]  # literal bytes before it, length, distance


def _crc(block: bytes | memoryview, residual: bytes | memoryview) -> int:
    return zlib.crc32(residual, zlib.crc32(block)) & 0xFFFFFFFF


def pack_payload(matches: Sequence[Sequence[int]], residual: bytes, coded: bytes | None) -> bytes:
    """A long frame's payload; ``coded`` is the model's coding of ``residual``, or None to store it."""
    block = bytearray(pack_varint(len(matches)))
    for lit, length, dist in matches:
        block += pack_varint(int(lit)) + pack_varint(int(length)) + pack_varint(int(dist))
    kind = RESIDUAL_STORED if coded is None else RESIDUAL_MODELLED
    check = _crc(block, residual).to_bytes(4, "little")
    return bytes(block) + bytes((kind,)) + check + (residual if coded is None else coded)


@dataclass(frozen=True)
class LongPayload:
    """A parsed long frame payload (the residual not yet decoded)."""

    matches: tuple[Match, ...]
    residual_kind: int
    residual_size: int
    check: int
    block: bytes  # the match block as stored, for the check
    body: bytes  # the residual as stored: coded or raw

    def verify(self, residual: bytes) -> bool:
        """Whether the decoded ``residual`` and the match list are what the encoder wrote."""
        return _crc(self.block, residual) == self.check


def parse_payload(payload: bytes, raw_size: int, where: str) -> LongPayload:
    """Parse and validate a long frame's payload (``where`` names the frame in errors)."""

    def varint(pos: int, what: str) -> tuple[int, int]:
        parsed = read_varint(payload, pos, what, where)
        if parsed is None:
            raise CorruptDataError(f"corrupt {where}: match list is cut short")
        return parsed

    count, pos = varint(0, "match count")
    if not 1 <= count <= raw_size // MIN_MATCH:
        raise CorruptDataError(f"corrupt {where}: {count} matches impossible for raw size {raw_size}")
    matches, covered, copied = [], 0, 0
    for _ in range(count):
        lit, pos = varint(pos, "literal length")
        length, pos = varint(pos, "match length")
        dist, pos = varint(pos, "match distance")
        covered += lit + length
        copied += length
        if length < MIN_MATCH or dist < 1 or covered > raw_size:
            raise CorruptDataError(f"corrupt {where}: impossible match (length {length}, distance {dist})")
        matches.append((lit, length, dist))
    if len(payload) < pos + 5:
        raise CorruptDataError(f"corrupt {where}: payload ends after the match list")
    kind, check = payload[pos], int.from_bytes(payload[pos + 1 : pos + 5], "little")
    body = payload[pos + 5 :]
    residual = raw_size - copied
    if kind == RESIDUAL_STORED:
        if len(body) != residual:
            raise CorruptDataError(f"corrupt {where}: stored residual of {len(body)} bytes, {residual} expected")
    elif kind == RESIDUAL_MODELLED:
        if not max(1, residual >> MIN_BITS_PER_BYTE_SHIFT) <= len(body) < residual:
            raise CorruptDataError(f"corrupt {where}: coded size {len(body)} impossible for a residual of {residual}")
    else:
        raise CorruptDataError(f"corrupt {where}: unknown residual kind {kind}")
    return LongPayload(tuple(matches), kind, residual, check, payload[:pos], body)


def check_sources(matches: Sequence[Match], start: int, window: int, where: str) -> None:
    """Every source must lie wholly before the frame (at member offset ``start``) and within ``window``."""
    pos = start
    for lit, length, dist in matches:
        pos += lit
        src = pos - dist
        if src < 0 or src < start - window or src + length > start:
            raise CorruptDataError(f"corrupt {where}: a match copies from outside the window")
        pos += length


class Window:
    """The last ``size`` bytes of a member's output (at least), for matches to copy from."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data = bytearray()
        self._base = 0  # member offset of self._data[0]

    @property
    def end(self) -> int:
        """Member offset just past the last byte appended: where the next frame starts."""
        return self._base + len(self._data)

    def append(self, raw: bytes) -> None:
        self._data += raw
        excess = len(self._data) - self.size
        if excess > max(self.size // 4, 1 << 20):  # slide in large steps: each slide moves the window
            del self._data[:excess]
            self._base += excess

    def read(self, pos: int, n: int) -> bytes:
        return bytes(self._data[pos - self._base : pos - self._base + n])


def rebuild(window: Window, matches: Sequence[Match], residual: bytes) -> bytes:
    """The frame that starts at ``window.end``: residual runs and copies, in order (sources checked)."""
    out = bytearray()
    start, r = window.end, 0
    for lit, length, dist in matches:
        out += residual[r : r + lit]
        r += lit
        out += window.read(start + len(out) - dist, length)
    out += residual[r:]
    return bytes(out)


def lost_ranges(matches: Sequence[Match], start: int, lost: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """The member ranges ``[a, b)`` of a frame at ``start`` whose bytes were copied from ``lost`` ranges."""
    found = []
    pos = start
    for lit, length, dist in matches:
        pos += lit
        src = pos - dist
        for a, b in lost:
            lo, hi = max(a, src), min(b, src + length)
            if lo < hi:
                found.append((lo + dist, hi + dist))
        pos += length
    return sorted(found)
