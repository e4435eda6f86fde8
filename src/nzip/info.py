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

    @property
    def raw_size(self) -> int:
        return sum(raw for _, raw, _ in self.frames)

    @property
    def stored_frames(self) -> int:
        return sum(1 for kind, _, _ in self.frames if kind == fmt.FRAME_STORED)


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
        if len(prefix) >= 4 and prefix[:4] != fmt.MAGIC and members:
            raise NotAnArchiveError(f"trailing data at offset {offset} after the archive is not an nzip archive")
        if len(prefix) < fmt.HEADER_FIXED_SIZE:
            fmt.check_magic(prefix.ljust(4, b"\0"))
            raise TruncatedDataError(
                f"archive is truncated: input ends at offset {offset + len(prefix)} in the stream header"
            )
        size = fmt.header_size(prefix)
        header = fmt.parse_header(
            prefix + _read_exact(fp, size - len(prefix), offset + len(prefix), "the stream header")
        )
        member = MemberInfo(header.model_name, header.model_digest, header.level, header.frame_size)
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
            frame = fmt.parse_frame_header(head, header.frame_size, len(member.frames), offset)
            _skip(fp, frame.coded_size, offset + len(head), f"frame {len(member.frames)}")
            member.frames.append((frame.kind, frame.raw_size, frame.coded_size))
            offset += len(head) + frame.coded_size
        member.compressed_size = offset - start
        members.append(member)
