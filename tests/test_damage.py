"""Damaged archives: every truncation point and many corruptions give a typed error, never wrong output."""

from __future__ import annotations

import io
import random

import pytest

import nzip
from nzip import container as fmt
from nzip.info import scan
from nzip.models import base


@pytest.fixture(scope="module")
def archive(text: bytes) -> tuple[bytes, bytes]:
    data = text[:3000] + bytes(range(256))
    return data, nzip.compress(data, level=1, frame_size=1024)


def test_every_truncation_point(archive: tuple[bytes, bytes]) -> None:
    _data, packed = archive
    for cut in range(len(packed)):
        with pytest.raises((nzip.TruncatedDataError, nzip.NotAnArchiveError)) as info:
            nzip.decompress(packed[:cut])
        if cut >= len(fmt.MAGIC):
            assert isinstance(info.value, nzip.TruncatedDataError), cut
            assert "offset" in str(info.value)


def test_single_byte_corruptions(archive: tuple[bytes, bytes]) -> None:
    data, packed = archive
    rng = random.Random(1)
    positions = list(range(len(packed))) if len(packed) < 1500 else rng.sample(range(len(packed)), 1500)
    for pos in positions:
        damaged = bytearray(packed)
        damaged[pos] ^= 1 << rng.randrange(8)
        try:
            out = nzip.decompress(bytes(damaged))
        except nzip.NzipError:
            continue
        # A flip the checksums cannot see must still decode to the original bytes.
        assert out == data, pos


def test_corrupt_frame_is_named(archive: tuple[bytes, bytes]) -> None:
    _data, packed = archive
    header = fmt.parse_header(packed)
    first_frame = len(header.pack())
    second_payload = (
        first_frame
        + fmt.FRAME_HEADER_SIZE
        + fmt.parse_frame_header(packed[first_frame:], 1024, 0, first_frame).coded_size
        + fmt.FRAME_HEADER_SIZE
    )
    damaged = bytearray(packed)
    damaged[second_payload + 5] ^= 0x40
    with pytest.raises(nzip.CorruptDataError, match="frame 1 at offset"):
        nzip.decompress(bytes(damaged))


def test_not_an_archive() -> None:
    for junk in (b"", b"hello", b"PK\x03\x04 zip file", b"\x89NZ"):
        with pytest.raises((nzip.NotAnArchiveError, nzip.TruncatedDataError)):
            nzip.decompress(junk)
    with pytest.raises(nzip.NotAnArchiveError, match="bad magic"):
        nzip.decompress(b"\x1f\x8b\x08\x00 gzip data here")


def test_trailing_garbage(archive: tuple[bytes, bytes]) -> None:
    _, packed = archive
    with pytest.raises(nzip.NotAnArchiveError, match="trailing data"):
        nzip.decompress(packed + b"garbage!")


def test_unknown_version(archive: tuple[bytes, bytes]) -> None:
    _, packed = archive
    bumped = packed[:4] + bytes([fmt.FORMAT_VERSION + 1]) + packed[5:]
    with pytest.raises(nzip.UnsupportedVersionError, match="newer nzip"):
        nzip.decompress(bumped)


def _with_model(packed: bytes, name: str, digest: bytes) -> bytes:
    old = fmt.parse_header(packed)
    new = fmt.StreamHeader(name, digest, old.level, old.frame_log)
    return new.pack() + packed[old.size :]


def test_unknown_model(archive: tuple[bytes, bytes]) -> None:
    _, packed = archive
    with pytest.raises(nzip.ModelMismatchError, match="'gpt-nano'"):
        nzip.decompress(_with_model(packed, "gpt-nano", b"\1" * base.DIGEST_SIZE))


def test_model_digest_mismatch(archive: tuple[bytes, bytes]) -> None:
    _, packed = archive
    with pytest.raises(nzip.ModelMismatchError, match=r"cm1.*digest"):
        nzip.decompress(_with_model(packed, "cm1", b"\2" * base.DIGEST_SIZE))


def test_forged_frame_sizes_are_rejected(archive: tuple[bytes, bytes]) -> None:
    _, packed = archive
    start = fmt.parse_header(packed).size
    for raw, coded in [(1 << 31, 10), (2000, 10), (100, 500), (0, 0)]:
        head = fmt.FrameHeader(fmt.FRAME_MODELLED, raw, coded, 0).pack()
        forged = packed[:start] + head + packed[start + fmt.FRAME_HEADER_SIZE :]
        with pytest.raises(nzip.CorruptDataError):
            nzip.decompress(forged)


def test_forged_footer_count(archive: tuple[bytes, bytes]) -> None:
    _, packed = archive
    footer = fmt.Footer(10**12, ((1, 1),) * 3).pack()
    member = scan(io.BytesIO(packed))[0]
    body_end = len(packed) - (fmt.FOOTER_HEAD_SIZE + len(member.frames) * fmt.INDEX_ENTRY_SIZE + fmt.FOOTER_TAIL_SIZE)
    with pytest.raises(nzip.CorruptDataError, match="footer"):
        nzip.decompress(packed[:body_end] + footer)


@pytest.mark.parametrize("name", ["../../../etc/passwd", "os.system", "__import__('os')", "cm1.pkl", "/dev/zero"])
def test_model_names_never_reach_files_or_code(archive: tuple[bytes, bytes], name: str) -> None:
    """A model identifier is only ever a key into the installed models."""
    _, packed = archive
    with pytest.raises(nzip.ModelMismatchError, match="does not have"):
        nzip.decompress(_with_model(packed, name, b"\3" * base.DIGEST_SIZE))
