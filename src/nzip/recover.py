"""Salvage damaged archives: report every damaged frame, keep every intact one.

Frames are independent and individually checksummed, so damage costs only
the frames it touches.  :func:`salvage` walks an archive held in memory (or
memory-mapped), decodes every frame it can, and lists what it could not: a
frame whose payload fails its checksum, a frame header that fails its own
checksum (the walk then resynchronises on the next valid frame header or
footer), a truncated end.  A single flipped bit therefore loses at most one
frame.

Lost frames are replaced in the output by zero bytes of the same length when
that length is known (from the frame's header, the frame size, or the
member's footer), so that the intact data keeps its offsets.  A long frame
(one that copies from earlier frames) whose own bytes are intact but whose
sources were lost keeps everything but the copied ranges, which are
reported as lost too.
"""

from __future__ import annotations

import functools
import mmap
from collections.abc import Callable
from dataclasses import dataclass, replace

from . import container as fmt
from .errors import ModelMismatchError, NotAnArchiveError, NzipError
from .models import Model, registered_models, resolve
from .recover_long import LongOutput, salvage_long_frame


@dataclass(frozen=True)
class Damage:
    """One damaged part of an archive."""

    offset: int  # where in the archive
    what: str  # e.g. "frame 3" or "footer"
    reason: str
    lost_at: int | None = None  # where in the output the lost bytes would have been
    lost: int | None = None  # how many output bytes are lost (None: unknown)

    def __str__(self) -> str:
        text = f"{self.what} at offset {self.offset}: {self.reason}"
        if self.lost:
            text += f"; {self.lost} bytes lost at output offset {self.lost_at}"
        elif self.lost is None and self.lost_at is not None:
            text += f"; an unknown number of bytes lost at output offset {self.lost_at}"
        return text


@dataclass
class _Lost:
    size: int | None  # raw size when the frame header told it
    damage: int  # index of its entry in the damage list


def _near_magic(data: memoryview, pos: int) -> bool:
    """The magic number, or something one flipped bit away from it."""
    head = bytes(data[pos : pos + len(fmt.MAGIC)])
    return len(head) == len(fmt.MAGIC) and _bit_distance(head, fmt.MAGIC) <= 1


def _near_compact(data: memoryview, pos: int) -> bool:
    """The compact member's magic, or one flipped bit away (three bits from the full magic)."""
    head = bytes(data[pos : pos + len(fmt.COMPACT_MAGIC)])
    return len(head) == len(fmt.COMPACT_MAGIC) and _bit_distance(head, fmt.COMPACT_MAGIC) <= 1


def _next_member(archive: bytes | mmap.mmap, start: int) -> int:
    """Offset of the next exact magic number of either kind at or after ``start``, or -1."""
    found = [at for at in (archive.find(fmt.MAGIC, start), archive.find(fmt.COMPACT_MAGIC, start)) if at >= 0]
    return min(found, default=-1)


def _salvage_compact(
    archive: bytes | mmap.mmap, data: memoryview, pos: int, out_pos: int, damages: list[Damage]
) -> tuple[bytes | None, int]:
    """Decode the compact member at ``pos``: (its bytes, zeros when lost but sized, or None; where to go on).

    Its one checksum covers the header too, so a lost member's size is
    trusted (zeros written) only when the member ends where another begins.
    """
    repaired = bytes(data[pos : pos + len(fmt.COMPACT_MAGIC)]) != fmt.COMPACT_MAGIC
    near = fmt.COMPACT_MAGIC + bytes(data[pos + len(fmt.COMPACT_MAGIC) : pos + 16])
    reason = "truncated"
    try:
        head = fmt.parse_compact_header(near, pos)
    except NzipError as exc:
        head, reason = None, str(exc)
    if head is None or pos + head.member_size > len(data):
        damages.append(Damage(pos, "compact member", reason, out_pos, None))
        nxt = _next_member(archive, pos + 1)
        return None, len(data) if nxt < 0 else nxt
    end = pos + head.member_size
    payload = bytes(data[pos + head.size : end - 4])
    try:
        if head.model == fmt.COMPACT_STORED:
            raw = payload
        else:
            raw = resolve(*fmt.COMPACT_MODELS[head.model - 1]).decode(payload, head.raw_size)
        ok = fmt.compact_crc(near[: head.size], raw) == int.from_bytes(data[end - 4 : end], "little")
    except ModelMismatchError:
        raise
    except Exception:  # a damaged payload may upset a model in any way
        ok = False
    if ok:
        if repaired:
            damages.append(Damage(pos, "compact member", "magic number damaged; repaired (no data lost)"))
        return raw, end
    if end == len(data) or _near_magic(data, end) or _near_compact(data, end):
        damages.append(Damage(pos, "compact member", "checksum mismatch", out_pos, head.raw_size))
        return bytes(head.raw_size), end
    damages.append(Damage(pos, "compact member", "checksum mismatch", out_pos, None))
    nxt = _next_member(archive, pos + 1)
    return None, len(data) if nxt < 0 else nxt


def _bit_distance(a: bytes, b: bytes) -> int:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_count()


@functools.cache
def _headers_by_crc(name: str, digest: bytes, window_log: int) -> dict[int, fmt.StreamHeader]:
    """Every header a model can have (each level and frame size), by its CRC: repairs look up, never rebuild."""
    found: dict[int, fmt.StreamHeader] = {}
    for lv in range(10):
        for fl in range(fmt.MIN_FRAME_LOG, fmt.MAX_FRAME_LOG + 1):
            header = fmt.StreamHeader(name, digest, lv, fl, window_log)
            found.setdefault(int.from_bytes(header.pack()[-4:], "little"), header)
    return found


def _header_model(data: memoryview, pos: int, damages: list[Damage]) -> tuple[fmt.StreamHeader, int]:
    """Parse the stream header at ``pos``, repairing a damaged one.

    An intact header is used as it is.  Otherwise every installed model is
    tried as the header's content (with every level and frame size when a
    damaged byte hides them): a candidate whose checksum equals the stored
    one is certain; failing that, the candidate nearest in bits is taken if
    it differs by a few bits only.
    """
    try:
        size = fmt.header_size(data[pos : pos + fmt.HEADER_FIXED_SIZE])
        header = fmt.parse_header(data[pos : pos + size])
        resolve(header.model_name, header.model_digest)
        return header, size
    except ModelMismatchError:
        raise
    except NzipError:
        pass
    best: tuple[int, fmt.StreamHeader] | None = None
    shapes = [(model, wl) for model in registered_models() for wl in (0, fmt.DEFAULT_WINDOW_LOG)]
    for model, window_log in shapes:
        size = fmt.StreamHeader(model.name, model.digest, 0, fmt.MIN_FRAME_LOG, window_log).size
        raw = bytes(data[pos : pos + size])
        if len(raw) < size:
            continue
        level, frame_log = raw[6], raw[7]
        if fmt.MIN_FRAME_LOG <= frame_log <= fmt.MAX_FRAME_LOG:
            candidate = fmt.StreamHeader(model.name, model.digest, level, frame_log, window_log)
            dist = _bit_distance(candidate.pack(), raw)
            if dist <= 8 and (best is None or dist < best[0]):
                best = (dist, candidate)
            if dist == 0:
                break
        certain = _headers_by_crc(model.name, model.digest, window_log).get(int.from_bytes(raw[-4:], "little"))
        if certain is not None:
            best = (0, certain)
            break
    if best is None:
        raise fmt.CorruptDataError(f"stream header at offset {pos} is damaged beyond repair")
    header = best[1]
    damages.append(Damage(pos, "stream header", f"damaged; repaired as model '{header.model_name}'"))
    return header, header.size


def _valid_frame_header(data: memoryview, at: int, frame_size: int, long: bool) -> fmt.FrameHeader | None:
    if at + fmt.FRAME_HEADER_SIZE > len(data):
        return None
    try:
        return fmt.parse_frame_header(data[at : at + fmt.FRAME_HEADER_SIZE], frame_size, 0, at, long)
    except NzipError:
        return None


def _valid_footer(data: memoryview, at: int) -> fmt.Footer | None:
    if at + fmt.FOOTER_HEAD_SIZE > len(data) or data[at] != fmt.FRAME_END:
        return None
    _, count, length = fmt.footer_size(data[at : at + fmt.FOOTER_HEAD_SIZE])
    if count > len(data) or at + length > len(data):
        return None
    try:
        return fmt.parse_footer(data[at : at + length], at)
    except NzipError:
        return None


def _looks_like_footer(data: memoryview, at: int, length: int, frames: int) -> bool:
    """Whether a damaged or cut structure at ``at`` is this member's footer rather than a frame."""
    end = at + length
    if end <= len(data):
        return bytes(data[end - 4 : end]) == fmt.END_MAGIC
    head = bytes(data[at : at + fmt.FOOTER_HEAD_SIZE])
    if len(head) < fmt.FOOTER_HEAD_SIZE:
        return True  # too short to be a frame header either
    return int.from_bytes(head[9:17], "little") == frames


def _resync(data: memoryview, start: int, frame_size: int, long: bool) -> int:
    """Offset of the next valid frame header or footer after ``start`` (or the end of data).

    Scans forward in windows of at most 4 MiB (bounded memory whatever the
    frame size); candidates are filtered with numpy before their checksums
    are tried.
    """
    import numpy as np  # here, not at the top: --list and -d of intact archives never need it

    step = min(frame_size, 1 << 22) + 2 * fmt.FRAME_HEADER_SIZE
    lo = start + 1
    while lo < len(data):
        hi = min(len(data), lo + step)
        w = np.frombuffer(data[lo : min(len(data), hi + 4)], dtype=np.uint8).astype(np.uint32)
        n = max(0, min(hi - lo, len(w) - 4))
        kind = w[:n]
        raw = w[1 : n + 1] | w[2 : n + 2] << 8 | w[3 : n + 3] << 16 | w[4 : n + 4] << 24
        kinds = (kind == fmt.FRAME_MODELLED) | (kind == fmt.FRAME_STORED) | (long & (kind == fmt.FRAME_LONG))
        plausible = kinds & (raw >= 1) & (raw <= frame_size)
        candidates = set((np.flatnonzero(plausible) + lo).tolist())
        candidates.update(np.flatnonzero(kind == fmt.FRAME_END)[:4096] + lo)
        for at in sorted(candidates):
            if _valid_frame_header(data, int(at), frame_size, long) or _valid_footer(data, int(at)):
                return int(at)
        lo = hi
    return len(data)


def salvage(archive: bytes | mmap.mmap, write: Callable[[bytes], object]) -> list[Damage]:
    """Decode everything intact in ``archive`` through ``write``; return the damage found.

    Raises :class:`NotAnArchiveError` if ``archive`` does not start like an
    archive at all, and :class:`ModelMismatchError` if it needs a model this
    installation lacks.
    """
    data = memoryview(archive).cast("B")
    if len(data) == 0:
        raise NotAnArchiveError("not an nzip archive (empty input)")
    if not _near_magic(data, 0) and not _near_compact(data, 0):
        raise NotAnArchiveError("not an nzip archive (bad magic number)")
    damages: list[Damage] = []
    pos = 0
    out_pos = 0
    while pos < len(data):
        if _near_compact(data, pos):
            raw, pos = _salvage_compact(archive, data, pos, out_pos, damages)
            if raw is not None:
                write(raw)
                out_pos += len(raw)
            continue
        if not _near_magic(data, pos):
            damages.append(Damage(pos, "trailing data", "not an nzip archive; ignored"))
            break
        if pos + fmt.HEADER_FIXED_SIZE > len(data):
            damages.append(Damage(pos, "stream header", "truncated"))
            break
        try:
            header, size = _header_model(data, pos, damages)
        except fmt.CorruptDataError as exc:
            damages.append(Damage(pos, "member", str(exc), out_pos, None))
            nxt = _next_member(archive, pos + 1)
            if nxt < 0:
                break
            pos = nxt
            continue
        model: Model = resolve(header.model_name, header.model_digest)
        long = LongOutput(header.window, header.frame_size) if header.window else None
        pos += size
        pieces: list[bytes | _Lost] = []
        index = 0
        footer = None
        while True:
            if pos >= len(data):
                damages.append(Damage(pos, "archive", "truncated before the footer; what follows is missing"))
                break
            if data[pos] == fmt.FRAME_END:
                footer = _valid_footer(data, pos)
                length = fmt.FOOTER_HEAD_SIZE + index * fmt.INDEX_ENTRY_SIZE + fmt.FOOTER_TAIL_SIZE
                if footer is not None:
                    pos += fmt.FOOTER_HEAD_SIZE + len(footer.frames) * fmt.INDEX_ENTRY_SIZE + fmt.FOOTER_TAIL_SIZE
                    break
                if _looks_like_footer(data, pos, length, index):
                    reason = "truncated" if pos + length > len(data) else "checksum mismatch (no data lost)"
                    damages.append(Damage(pos, "footer", reason))
                    pos = min(len(data), pos + length)
                    break
            head = _valid_frame_header(data, pos, header.frame_size, long is not None)
            if head is None or pos + fmt.FRAME_HEADER_SIZE + head.coded_size > len(data):
                reason = "frame header damaged" if head is None else "archive is truncated"
                nxt = _resync(data, pos, header.frame_size, long is not None)
                damages.append(Damage(pos, f"frame {index}", reason))
                pieces.append(_Lost(None, len(damages) - 1))
                if long is not None:
                    long.bad(None)
                index += 1
                pos = nxt
                continue
            payload = bytes(data[pos + fmt.FRAME_HEADER_SIZE : pos + fmt.FRAME_HEADER_SIZE + head.coded_size])
            raw = _salvage_frame(model, head, payload, (index, pos), long, out_pos, damages)
            if raw is not None:
                pieces.append(raw)
            else:
                damages.append(Damage(pos, f"frame {index}", "checksum mismatch"))
                pieces.append(_Lost(head.raw_size, len(damages) - 1))
                if long is not None:
                    long.bad(head.raw_size)
            pos += fmt.FRAME_HEADER_SIZE + head.coded_size
            index += 1
        out_pos = _emit(pieces, footer, header.frame_size, damages, out_pos, write)
    return damages


def _salvage_frame(
    model: Model,
    head: fmt.FrameHeader,
    payload: bytes,
    where: tuple[int, int],
    long: LongOutput | None,
    out_pos: int,
    damages: list[Damage],
) -> bytes | None:
    """One frame's bytes if it is intact (a long frame's copies of lost output reported and zeroed), else None."""
    if head.kind == fmt.FRAME_LONG:
        assert long is not None
        found = salvage_long_frame(model, head, payload, where, long)
        if found is None:
            return None
        raw, hurt = found
        for a, b in hurt:
            damages.append(
                Damage(where[1], f"frame {where[0]}", "long matches copy from lost output", out_pos + a, b - a)
            )
        return raw
    try:
        raw = payload if head.kind == fmt.FRAME_STORED else model.decode(payload, head.raw_size)
    except Exception:  # a damaged payload may upset a model in any way
        return None
    if fmt.crc32(raw) != head.raw_crc:
        return None
    if long is not None:
        long.good(raw)
    return raw


def _emit(
    pieces: list[bytes | _Lost],
    footer: fmt.Footer | None,
    frame_size: int,
    damages: list[Damage],
    out_pos: int,
    write: Callable[[bytes], object],
) -> int:
    """Write a member's pieces, sizing lost frames from the footer when it matches."""
    sizes: list[int | None] = [None] * len(pieces)
    if footer is not None and len(footer.frames) == len(pieces):
        sizes = [raw for raw, _ in footer.frames]
    for i, piece in enumerate(pieces):
        if isinstance(piece, bytes):
            write(piece)
            out_pos += len(piece)
            continue
        size = piece.size or sizes[i]
        if size is None and i < len(pieces) - 1:
            size = frame_size  # every frame but the last is full
        damages[piece.damage] = replace(damages[piece.damage], lost_at=out_pos, lost=size)
        if size:
            write(bytes(size))
            out_pos += size
    return out_pos
