"""Structure-aware archive mutations, shared by the fuzz target and the tests.

Random bit flips mostly die at the first checksum.  To reach the validation
that comes after the checksums, :func:`refresh_checksums` recomputes every
header, frame-header and footer CRC of a mutated archive, so that forged
lengths and counts are seen as the archive's real claims.
"""

from __future__ import annotations

from . import container as fmt
from .errors import NzipError


def refresh_checksums(data: bytes) -> bytes:
    """Recompute the structural CRCs of every member it can walk; leave the rest alone."""
    buf = bytearray(data)
    pos = 0
    while True:
        if buf[pos : pos + 3] == fmt.COMPACT_MAGIC:
            pos = _refresh_compact(buf, pos)
            if pos < 0:
                break
            continue
        if not (pos + fmt.HEADER_FIXED_SIZE <= len(buf) and buf[pos : pos + 4] == fmt.MAGIC):
            break
        name_len = buf[pos + 8]
        size = fmt.HEADER_FIXED_SIZE + name_len + 16 + (1 if buf[pos + 5] & fmt.FLAG_LONG else 0) + 4
        if pos + size > len(buf):
            break
        buf[pos + size - 4 : pos + size] = fmt._crc(buf[pos : pos + size - 4]).to_bytes(4, "little")
        pos += size
        frames = 0
        while pos < len(buf) and buf[pos] != fmt.FRAME_END:
            if pos + fmt.FRAME_HEADER_SIZE > len(buf):
                return bytes(buf)
            head = pos + fmt.FRAME_HEADER_SIZE - 4
            buf[head : pos + fmt.FRAME_HEADER_SIZE] = fmt._crc(buf[pos:head]).to_bytes(4, "little")
            coded = int.from_bytes(buf[pos + 5 : pos + 9], "little")
            if buf[pos] == fmt.FRAME_LONG:
                _refresh_long(buf, pos + fmt.FRAME_HEADER_SIZE, coded, int.from_bytes(buf[pos + 1 : pos + 5], "little"))
            pos += fmt.FRAME_HEADER_SIZE + coded
            frames += 1
        if pos + fmt.FOOTER_HEAD_SIZE > len(buf):
            break
        count = int.from_bytes(buf[pos + 9 : pos + 17], "little")
        body = fmt.FOOTER_HEAD_SIZE + min(count, frames + 1) * fmt.INDEX_ENTRY_SIZE
        if pos + body + fmt.FOOTER_TAIL_SIZE > len(buf):
            break
        buf[pos + body : pos + body + 4] = fmt._crc(buf[pos : pos + body]).to_bytes(4, "little")
        pos += body + fmt.FOOTER_TAIL_SIZE
    return bytes(buf)


def _refresh_long(buf: bytearray, at: int, coded: int, raw: int) -> None:
    """Recompute the check of a long frame whose residual is stored (a coded one's needs decoding)."""
    from .matches import RESIDUAL_STORED, pack_payload, parse_payload

    try:
        parsed = parse_payload(bytes(buf[at : at + coded]), raw, "frame")
    except NzipError:
        return
    if parsed.residual_kind == RESIDUAL_STORED and at + coded <= len(buf):
        buf[at : at + coded] = pack_payload(parsed.matches, parsed.body, None)


def _refresh_compact(buf: bytearray, pos: int) -> int:
    """Recompute a stored compact member's CRC (a modelled one's needs decoding); return where the next begins."""
    try:
        head = fmt.parse_compact_header(buf[pos:], pos)
    except NzipError:
        return -1
    if head is None or pos + head.member_size > len(buf):
        return -1
    end = pos + head.member_size
    if head.model == fmt.COMPACT_STORED:
        crc = fmt.compact_crc(buf[pos : pos + head.size], buf[pos + head.size : end - 4])
        buf[end - 4 : end] = crc.to_bytes(4, "little")
    return end
