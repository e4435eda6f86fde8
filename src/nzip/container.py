"""The nzip container format, version 1: byte layout, packing and parsing.

This module knows bytes, not models: it packs and validates the stream
header, frame headers and the footer described in ``docs/FORMAT.md``.  All
integers are little-endian.  Every structure carries a CRC-32, so damage is
reported where it happened rather than discovered as wrong output.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from .errors import CorruptDataError, NotAnArchiveError, UnsupportedVersionError
from .models.base import DIGEST_SIZE

MAGIC = b"\x89NZ\x1a"
END_MAGIC = b"\x1aZN\x89"
FORMAT_VERSION = 1

MIN_FRAME_LOG = 10  # 1 KiB
MAX_FRAME_LOG = 30  # 1 GiB
DEFAULT_FRAME_LOG = 23  # 8 MiB
MAX_MODEL_NAME = 64

# The coder never gives a bit a probability above 65535/65536, so every byte
# costs at least 8 * log2(65536/65535) bits: a modelled frame of R bytes
# takes at least R / 45426 bytes.  Requiring R >> 16 is safely below that and
# bounds how much work a tiny forged archive can demand.
MIN_BITS_PER_BYTE_SHIFT = 16

FRAME_END = 0x00
FRAME_MODELLED = 0x01
FRAME_STORED = 0x02
FRAME_LONG = 0x03  # long matches and a residual: only in members whose header has FLAG_LONG
#: The smallest long-frame payload: a count, one match, the residual kind and its check.
MIN_LONG_PAYLOAD = 1 + 3 + 1 + 4

FLAG_LONG = 0x01  # the member's frames may copy from earlier frames; the header gives the window
MIN_WINDOW_LOG = 20
MAX_WINDOW_LOG = 32
DEFAULT_WINDOW_LOG = 28  # 256 MiB

# type, raw length, coded length, CRC-32 of raw bytes, CRC-32 of the preceding 13 bytes
_FRAME = struct.Struct("<BIII")
FRAME_HEADER_SIZE = _FRAME.size + 4
# type (0), total raw length, frame count
_FOOTER_HEAD = struct.Struct("<BQQ")
FOOTER_HEAD_SIZE = _FOOTER_HEAD.size
_INDEX_ENTRY = struct.Struct("<II")
INDEX_ENTRY_SIZE = _INDEX_ENTRY.size
# CRC-32 of footer, footer length, end magic
_FOOTER_TAIL = struct.Struct("<II4s")
FOOTER_TAIL_SIZE = _FOOTER_TAIL.size

HEADER_FIXED_SIZE = 9  # magic, version, flags, level, frame log, name length


def _crc(data: bytes | memoryview) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


@dataclass(frozen=True)
class StreamHeader:
    """What a decoder needs before the first frame."""

    model_name: str
    model_digest: bytes
    level: int
    frame_log: int
    window_log: int = 0  # long matches reach 2^window_log bytes back; 0: the member has none

    @property
    def frame_size(self) -> int:
        return 1 << self.frame_log

    @property
    def window(self) -> int:
        return 1 << self.window_log if self.window_log else 0

    def pack(self) -> bytes:
        name = self.model_name.encode("ascii")
        flags = FLAG_LONG if self.window_log else 0
        body = MAGIC + bytes((FORMAT_VERSION, flags, self.level, self.frame_log, len(name))) + name + self.model_digest
        if self.window_log:
            body += bytes((self.window_log,))
        return body + _crc(body).to_bytes(4, "little")

    @property
    def size(self) -> int:
        return HEADER_FIXED_SIZE + len(self.model_name) + DIGEST_SIZE + (1 if self.window_log else 0) + 4


def header_size(prefix: bytes | memoryview) -> int:
    """Total header length, from its first ``HEADER_FIXED_SIZE`` bytes (validated)."""
    check_magic(prefix)
    if prefix[4] != FORMAT_VERSION:
        raise UnsupportedVersionError(
            f"archive format version {prefix[4]} is not supported "
            f"(this nzip reads version {FORMAT_VERSION}); a newer nzip is needed"
        )
    flags, name_len = prefix[5], prefix[8]
    if flags & ~FLAG_LONG:
        raise UnsupportedVersionError(f"stream header has unknown flags 0x{flags:02x}; a newer nzip is needed")
    if not 1 <= name_len <= MAX_MODEL_NAME:
        raise CorruptDataError(f"corrupt stream header: model name length {name_len}")
    return HEADER_FIXED_SIZE + name_len + DIGEST_SIZE + (1 if flags & FLAG_LONG else 0) + 4


def check_magic(prefix: bytes | memoryview) -> None:
    if bytes(prefix[:4]) != MAGIC:
        raise NotAnArchiveError("not an nzip archive (bad magic number)")


def parse_header(data: bytes | memoryview) -> StreamHeader:
    """Parse a complete stream header (``header_size`` bytes)."""
    size = header_size(data)
    body = bytes(data[: size - 4])
    if _crc(body) != int.from_bytes(data[size - 4 : size], "little"):
        raise CorruptDataError("corrupt stream header (checksum mismatch)")
    flags, level, frame_log, name_len = body[5], body[6], body[7], body[8]
    window_log = body[9 + name_len + DIGEST_SIZE] if flags & FLAG_LONG else 0
    if flags & FLAG_LONG and not MIN_WINDOW_LOG <= window_log <= MAX_WINDOW_LOG:
        raise CorruptDataError(f"corrupt stream header: long-match window 2^{window_log}")
    if not MIN_FRAME_LOG <= frame_log <= MAX_FRAME_LOG:
        raise CorruptDataError(f"corrupt stream header: frame size 2^{frame_log}")
    name_bytes = body[9 : 9 + name_len]
    if not all(0x21 <= b < 0x7F for b in name_bytes):
        raise CorruptDataError("corrupt stream header: model name is not printable ASCII")
    digest = body[9 + name_len : 9 + name_len + DIGEST_SIZE]
    return StreamHeader(name_bytes.decode("ascii"), digest, level, frame_log, window_log)


@dataclass(frozen=True)
class FrameHeader:
    """One frame: how it was coded, its sizes and the checksum of its raw bytes."""

    kind: int
    raw_size: int
    coded_size: int
    raw_crc: int

    def pack(self) -> bytes:
        head = _FRAME.pack(self.kind, self.raw_size, self.coded_size, self.raw_crc)
        return head + _crc(head).to_bytes(4, "little")


def parse_frame_header(
    data: bytes | memoryview, frame_size: int, index: int, offset: int, long: bool = False
) -> FrameHeader:
    """Parse and validate a ``FRAME_HEADER_SIZE``-byte frame header.

    ``long``: the member's header has ``FLAG_LONG``, so long frames may
    occur.  ``index`` and ``offset`` only serve the error messages.
    """
    head = bytes(data[: _FRAME.size])
    if _crc(head) != int.from_bytes(data[_FRAME.size : FRAME_HEADER_SIZE], "little"):
        raise CorruptDataError(f"corrupt header of frame {index} at offset {offset} (checksum mismatch)")
    kind, raw, coded, raw_crc = _FRAME.unpack(head)
    where = f"frame {index} at offset {offset}"
    if kind not in (FRAME_MODELLED, FRAME_STORED) and not (long and kind == FRAME_LONG):
        raise CorruptDataError(f"corrupt {where}: unknown frame type {kind}")
    if not 1 <= raw <= frame_size:
        raise CorruptDataError(f"corrupt {where}: raw size {raw} outside 1..{frame_size}")
    if kind == FRAME_STORED and coded != raw:
        raise CorruptDataError(f"corrupt {where}: stored frame with coded size {coded} != raw size {raw}")
    if kind == FRAME_MODELLED and not max(1, raw >> MIN_BITS_PER_BYTE_SHIFT) <= coded < raw:
        raise CorruptDataError(f"corrupt {where}: coded size {coded} impossible for raw size {raw}")
    if kind == FRAME_LONG and not MIN_LONG_PAYLOAD <= coded < raw:
        raise CorruptDataError(f"corrupt {where}: coded size {coded} impossible for a long frame of {raw} bytes")
    return FrameHeader(kind, raw, coded, raw_crc)


def is_end_marker(first_byte: int) -> bool:
    return first_byte == FRAME_END


@dataclass(frozen=True)
class Footer:
    """End of a member: total length and an index of every frame's sizes."""

    total_size: int
    frames: tuple[tuple[int, int], ...]  # (raw size, coded size) per frame

    def pack(self) -> bytes:
        body = _FOOTER_HEAD.pack(FRAME_END, self.total_size, len(self.frames))
        body += b"".join(_INDEX_ENTRY.pack(raw, coded) for raw, coded in self.frames)
        length = len(body) + FOOTER_TAIL_SIZE
        return body + _FOOTER_TAIL.pack(_crc(body), length, END_MAGIC)


def footer_size(head: bytes | memoryview) -> tuple[int, int, int]:
    """From the first ``FOOTER_HEAD_SIZE`` bytes: (total size, frame count, footer length)."""
    _, total, count = _FOOTER_HEAD.unpack(bytes(head[:FOOTER_HEAD_SIZE]))
    return total, count, FOOTER_HEAD_SIZE + count * INDEX_ENTRY_SIZE + FOOTER_TAIL_SIZE


def parse_footer(data: bytes | memoryview, offset: int) -> Footer:
    """Parse a complete footer and check its checksum and trailer."""
    total, count, length = footer_size(data)
    body = bytes(data[: length - FOOTER_TAIL_SIZE])
    crc, stored_len, end_magic = _FOOTER_TAIL.unpack(bytes(data[length - FOOTER_TAIL_SIZE : length]))
    if crc != _crc(body) or stored_len != length or end_magic != END_MAGIC:
        raise CorruptDataError(f"corrupt footer at offset {offset} (checksum mismatch)")
    frames = tuple(_INDEX_ENTRY.unpack_from(body, FOOTER_HEAD_SIZE + i * INDEX_ENTRY_SIZE) for i in range(count))
    return Footer(total, frames)


def crc32(data: bytes | memoryview) -> int:
    """The checksum used for raw frame contents."""
    return _crc(data)


# --- Compact member -------------------------------------------------------
#
# One frame with a few bytes of header, for inputs that fit in one frame and
# are coded by a built-in model: magic, a model index, the lengths as
# varints, the payload, and one CRC-32 over the header and the raw bytes.

COMPACT_MAGIC = b"\xc9nz"  # three bits from the full magic's first three bytes
COMPACT_STORED = 0
#: The largest raw size a compact member may declare (a full member's largest frame).
COMPACT_MAX_RAW = 1 << MAX_FRAME_LOG
_MAX_VARINT = 5  # bytes of a LEB128 varint up to COMPACT_MAX_RAW

#: Built-in models a compact member names by one byte (index ``i + 1``).
#: Append-only: an index, once given out, names that identifier and digest
#: forever; a model whose coded bits change gets a new entry.
COMPACT_MODELS: tuple[tuple[str, bytes], ...] = (
    ("cm1", bytes.fromhex("42c2cbc74eab22bfcd95952aec41592f")),
    ("cm2", bytes.fromhex("2acf86f3994db5d2378b6cbcaaab5d09")),
    ("cm3", bytes.fromhex("3448148b13599413c93ac52e3cec470a")),
    ("nn3", bytes.fromhex("fa5ce32697bb520d991324438c8bf4c2")),
    ("nn2", bytes.fromhex("a86b033dbeb4f7c6f48e9aaf18770a14")),
    ("nn1", bytes.fromhex("b96e5f9eae944a9cad1c87aca1d90db6")),
)

MEMBER_FULL = 1
MEMBER_COMPACT = 2


def member_kind(prefix: bytes | memoryview) -> int | None:
    """Which member starts ``prefix``: ``MEMBER_FULL``, ``MEMBER_COMPACT``, or None if too short to tell.

    Raises :class:`NotAnArchiveError` when it can be neither.
    """
    head = bytes(prefix[: len(MAGIC)])
    if head[: len(COMPACT_MAGIC)] == COMPACT_MAGIC:
        return MEMBER_COMPACT
    if head == MAGIC:
        return MEMBER_FULL
    if len(head) < len(MAGIC) and (MAGIC.startswith(head) or COMPACT_MAGIC.startswith(head)):
        return None
    raise NotAnArchiveError("not an nzip archive (bad magic number)")


def compact_index(model_name: str, model_digest: bytes) -> int | None:
    """The compact-member index of a built-in model, or None when it has none."""
    try:
        return COMPACT_MODELS.index((model_name, model_digest)) + 1
    except ValueError:
        return None


def pack_varint(value: int) -> bytes:
    """Unsigned LEB128: seven bits per byte, least significant first."""
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def read_varint(data: bytes | memoryview, pos: int, what: str, where: str) -> tuple[int, int] | None:
    """(value, position after it), or None when ``data`` ends inside it; rejects overlong forms.

    ``what`` and ``where`` (e.g. "raw size", "compact member at offset 0")
    only serve the error messages.
    """
    value = 0
    for i in range(_MAX_VARINT):
        if pos + i >= len(data):
            return None
        byte = data[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            if byte == 0 and i > 0:
                raise CorruptDataError(f"corrupt {where}: overlong {what}")
            return value, pos + i + 1
    raise CorruptDataError(f"corrupt {where}: {what} is too long")


@dataclass(frozen=True)
class CompactHeader:
    """The header of a compact member: model index (0: stored), sizes, and its own length."""

    model: int
    raw_size: int
    coded_size: int
    size: int

    @property
    def member_size(self) -> int:
        return self.size + self.coded_size + 4

    def pack(self) -> bytes:
        head = COMPACT_MAGIC + bytes((self.model,)) + pack_varint(self.raw_size)
        if self.model != COMPACT_STORED:
            head += pack_varint(self.coded_size)
        return head


def compact_header(model: int, raw_size: int, coded_size: int) -> CompactHeader:
    """A header to write; its ``size`` is that of its packed form."""
    size = len(COMPACT_MAGIC) + 1 + len(pack_varint(raw_size))
    if model != COMPACT_STORED:
        size += len(pack_varint(coded_size))
    return CompactHeader(model, raw_size, coded_size, size)


def parse_compact_header(data: bytes | memoryview, offset: int) -> CompactHeader | None:
    """Parse and validate the compact header at the start of ``data``; None if it is incomplete.

    ``offset`` only serves the error messages.
    """
    pos = len(COMPACT_MAGIC)
    if len(data) <= pos:
        return None
    model = data[pos]
    if model > len(COMPACT_MODELS):
        raise UnsupportedVersionError(
            f"compact member at offset {offset} names built-in model {model}, which this nzip does not know; "
            "a newer nzip is needed"
        )
    parsed = read_varint(data, pos + 1, "raw size", f"compact member at offset {offset}")
    if parsed is None:
        return None
    raw, pos = parsed
    if raw > COMPACT_MAX_RAW:
        raise CorruptDataError(f"corrupt compact member at offset {offset}: raw size {raw} over {COMPACT_MAX_RAW}")
    if model == COMPACT_STORED:
        return CompactHeader(model, raw, raw, pos)
    parsed = read_varint(data, pos, "coded size", f"compact member at offset {offset}")
    if parsed is None:
        return None
    coded, pos = parsed
    if not max(1, raw >> MIN_BITS_PER_BYTE_SHIFT) <= coded < raw:
        raise CorruptDataError(
            f"corrupt compact member at offset {offset}: coded size {coded} impossible for raw size {raw}"
        )
    return CompactHeader(model, raw, coded, pos)


def compact_crc(header: bytes | memoryview, raw: bytes | memoryview) -> int:
    """The checksum that ends a compact member: CRC-32 of its header bytes followed by the raw bytes."""
    return zlib.crc32(raw, zlib.crc32(header)) & 0xFFFFFFFF
