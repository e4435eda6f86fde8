"""Describe an archive without decoding it (``nzip --list``).

Frame headers carry their coded lengths, so the structure of an archive can
be walked by reading headers and skipping payloads: listing costs I/O, not
modelling time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import IO

from . import container as fmt
from .errors import CorruptDataError, NotAnArchiveError, TruncatedDataError


@dataclass
class MemberInfo:
    """One archive member: its model and frames."""

    model_name: str
    model_digest: bytes
    level: int
    frame_size: int
    frames: list[tuple[int, int, int]] = field(default_factory=list)  # (kind, raw, coded)
    compressed_size: int = 0
    compact: bool = False  # a compact member: one frame, no level or frame size recorded
    window: int = 0  # how far back long matches reach (0: the member has none)

    @property
    def raw_size(self) -> int:
        return sum(raw for _, raw, _ in self.frames)

    @property
    def stored_frames(self) -> int:
        return sum(1 for kind, _, _ in self.frames if kind == fmt.FRAME_STORED)

    @property
    def long_frames(self) -> int:
        """Frames that copy from earlier ones (long matches)."""
        return sum(1 for kind, _, _ in self.frames if kind == fmt.FRAME_LONG)


def _read_exact(fp: IO[bytes], n: int, offset: int, what: str) -> bytes:
    data = fp.read(n)
    if len(data) < n:
        raise TruncatedDataError(f"archive is truncated: input ends at offset {offset + len(data)} in {what}")
    return data


def _skip(fp: IO[bytes], n: int, offset: int, what: str) -> None:
    if fp.seekable():
        here = fp.tell()
        end = fp.seek(0, 2)
        if end - here < n:
            raise TruncatedDataError(f"archive is truncated: input ends at offset {offset + end - here} in {what}")
        fp.seek(here + n)
        return
    while n:
        chunk = fp.read(min(n, 1 << 20))
        if not chunk:
            raise TruncatedDataError(f"archive is truncated: input ends at offset {offset} in {what}")
        n -= len(chunk)
        offset += len(chunk)


def scan(fp: IO[bytes]) -> list[MemberInfo]:
    """Walk every member of the archive in ``fp``, validating its structure."""
    members: list[MemberInfo] = []
    offset = 0
    while True:
        prefix = fp.read(fmt.HEADER_FIXED_SIZE)
        if not prefix:
            if not members:
                raise NotAnArchiveError("not an nzip archive (empty input)")
            return members
        try:
            kind = fmt.member_kind(prefix)
        except NotAnArchiveError:
            if members:
                raise NotAnArchiveError(
                    f"trailing data at offset {offset} after the archive is not an nzip archive"
                ) from None
            raise
        if kind == fmt.MEMBER_COMPACT:
            member = _scan_compact(fp, prefix, offset)
            offset += member.compressed_size
            members.append(member)
            continue
        if len(prefix) < fmt.HEADER_FIXED_SIZE:
            raise TruncatedDataError(
                f"archive is truncated: input ends at offset {offset + len(prefix)} in the stream header"
            )
        size = fmt.header_size(prefix)
        header = fmt.parse_header(
            prefix + _read_exact(fp, size - len(prefix), offset + len(prefix), "the stream header")
        )
        member = MemberInfo(
            header.model_name, header.model_digest, header.level, header.frame_size, window=header.window
        )
        start = offset
        offset += size
        while True:
            first = _read_exact(fp, 1, offset, f"frame {len(member.frames)} or the footer")
            if fmt.is_end_marker(first[0]):
                head = first + _read_exact(fp, fmt.FOOTER_HEAD_SIZE - 1, offset + 1, "the footer")
                total, count, length = fmt.footer_size(head)
                if count != len(member.frames) or total != member.raw_size:
                    raise CorruptDataError(f"corrupt footer at offset {offset}: it does not match the frames")
                rest = _read_exact(fp, length - len(head), offset + len(head), "the footer")
                fmt.parse_footer(head + rest, offset)
                offset += length
                break
            head = first + _read_exact(fp, fmt.FRAME_HEADER_SIZE - 1, offset + 1, f"frame {len(member.frames)}")
            frame = fmt.parse_frame_header(head, header.frame_size, len(member.frames), offset, header.window > 0)
            _skip(fp, frame.coded_size, offset + len(head), f"frame {len(member.frames)}")
            member.frames.append((frame.kind, frame.raw_size, frame.coded_size))
            offset += len(head) + frame.coded_size
        member.compressed_size = offset - start
        members.append(member)


def _scan_compact(fp: IO[bytes], prefix: bytes, offset: int) -> MemberInfo:
    """Validate the compact member starting with ``prefix`` and skip its payload (unverified: no decoding)."""
    data = prefix
    while (head := fmt.parse_compact_header(data, offset)) is None:
        data += _read_exact(fp, 1, offset + len(data), "a compact member")
    _skip(fp, head.member_size - len(data), offset + len(data), "a compact member")
    if head.model == fmt.COMPACT_STORED:
        name, digest = "stored", b""
    else:
        name, digest = fmt.COMPACT_MODELS[head.model - 1]
    member = MemberInfo(name, digest, 0, 0, compact=True, compressed_size=head.member_size)
    if head.raw_size:
        kind = fmt.FRAME_STORED if head.model == fmt.COMPACT_STORED else fmt.FRAME_MODELLED
        member.frames.append((kind, head.raw_size, head.coded_size))
    return member
