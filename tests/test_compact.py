"""Compact members: one frame with a few bytes of header, for inputs that fit in one frame."""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

import nzip
from conftest import sample_text
from nzip import container as fmt
from nzip.info import scan
from nzip.models import model_for_level, resolve
from nzip.recover import salvage

MESSAGE = b"hello world, this is a short message."
FRAME = 1024


def is_compact(archive: bytes) -> bool:
    return archive[:3] == fmt.COMPACT_MAGIC


def member(model: int, raw: bytes, payload: bytes, *, raw_size: int | None = None) -> bytes:
    """A compact member built by hand, with a correct checksum."""
    size = len(raw) if raw_size is None else raw_size
    head = fmt.COMPACT_MAGIC + bytes((model,)) + fmt.pack_varint(size)
    if model:
        head += fmt.pack_varint(len(payload))
    return head + payload + fmt.compact_crc(head, raw).to_bytes(4, "little")


@pytest.mark.parametrize("level", [1, 3, 6])
def test_empty_input_is_nine_bytes(level: int) -> None:
    packed = nzip.compress(b"", level=level)
    assert packed == member(0, b"", b"") and len(packed) == 9
    assert nzip.decompress(packed) == b""


def test_short_message_is_smaller_than_gzip() -> None:
    packed = nzip.compress(MESSAGE)
    assert is_compact(packed) and packed[3] == fmt.compact_index("nn3", model_for_level(6).digest)
    # gzip -9 writes 55 bytes, zstd -19 46 and brotli 11 36 (measured in-process with python-zstandard and brotli).
    assert len(packed) < len(gzip.compress(MESSAGE, 9, mtime=0)) and len(packed) <= 30
    assert nzip.decompress(packed) == MESSAGE


@pytest.mark.parametrize("level", [1, 2, 3])
@pytest.mark.parametrize("size", [1, 2, 100, FRAME - 1, FRAME])
def test_inputs_of_one_frame_are_compact(level: int, size: int) -> None:
    data = sample_text(size, seed=size)
    packed = nzip.compress(data, level=level, frame_size=FRAME)
    assert is_compact(packed)
    assert nzip.decompress(packed) == data
    full = nzip.compress(data, level=level, frame_size=FRAME, compact=False)
    assert full[:4] == fmt.MAGIC and len(packed) < len(full)
    assert nzip.decompress(full) == data


def test_more_than_one_frame_is_a_full_member() -> None:
    data = sample_text(FRAME + 1)
    packed = nzip.compress(data, level=1, frame_size=FRAME)
    assert packed[:4] == fmt.MAGIC and nzip.decompress(packed) == data


def test_incompressible_input_is_stored() -> None:
    data = os.urandom(200)
    packed = nzip.compress(data, level=3)
    assert packed[3] == fmt.COMPACT_STORED and len(packed) == 3 + 1 + 2 + 200 + 4
    assert nzip.decompress(packed) == data


def test_stream_is_held_until_it_outgrows_a_frame() -> None:
    c = nzip.Compressor(1, frame_size=FRAME)
    assert c.compress(sample_text(FRAME)) == b""
    assert is_compact(c.flush())
    c = nzip.Compressor(1, frame_size=FRAME)
    data = sample_text(3 * FRAME + 5)
    out = c.compress(data[:FRAME]) + c.compress(data[FRAME:])
    assert out[:4] == fmt.MAGIC
    assert nzip.decompress(out + c.flush()) == data


def test_models_without_an_index_get_full_members() -> None:
    class Renamed:
        def __init__(self, inner: nzip.models.Model) -> None:
            self._inner = inner
            self.name, self.digest = "mine", inner.digest

        def __getattr__(self, attr: str) -> object:
            return getattr(self._inner, attr)

    packed = nzip.Compressor(model=Renamed(model_for_level(1))).flush()  # type: ignore[arg-type]
    assert packed[:4] == fmt.MAGIC


def test_members_of_both_kinds_concatenate() -> None:
    parts = [sample_text(200, seed=1), sample_text(3000), b"", b"three"]
    archive = (
        nzip.compress(parts[0], level=3)
        + nzip.compress(parts[1], level=1, frame_size=FRAME)
        + nzip.compress(parts[2])
        + nzip.compress(parts[3], level=2, compact=False)
    )
    assert nzip.decompress(archive) == b"".join(parts)
    members = scan(io.BytesIO(archive))
    assert [m.compact for m in members] == [True, False, True, False]
    assert [m.raw_size for m in members] == [len(p) for p in parts]
    assert sum(m.compressed_size for m in members) == len(archive)
    assert members[0].model_name == "cm3" and members[2].model_name == "stored"
    out: list[bytes] = []
    assert salvage(archive, out.append) == [] and b"".join(out) == b"".join(parts)


def test_streaming_decoder_byte_by_byte_and_truncation() -> None:
    data = sample_text(700)
    packed = nzip.compress(data, level=3) + nzip.compress(b"x" * 50, level=1)
    d = nzip.Decompressor()
    out = b"".join(d.decompress(packed[i : i + 1]) for i in range(len(packed)))
    d.finish()
    assert out == data + b"x" * 50
    first = len(nzip.compress(data, level=3))
    for cut in [*range(3, first), first + 3, len(packed) - 1]:  # 1-2 bytes: either magic
        with pytest.raises(nzip.TruncatedDataError, match="compact member"):
            nzip.decompress(packed[:cut])
        with pytest.raises(nzip.TruncatedDataError):
            scan(io.BytesIO(packed[:cut]))


@pytest.mark.parametrize("level", [0, 1, 3])
def test_every_bit_flip_is_an_error_or_the_original(level: int) -> None:
    data = sample_text(300, seed=4)
    packed = nzip.compress(data, level=level) if level else member(0, data[:40], data[:40])
    original = data if level else data[:40]
    errors = 0
    for bit in range(8 * len(packed)):
        damaged = bytearray(packed)
        damaged[bit // 8] ^= 1 << bit % 8
        try:
            out = nzip.decompress(bytes(damaged))
        except nzip.NzipError:
            errors += 1
        else:
            assert out == original, f"bit {bit} decoded to wrong output"
        pieces: list[bytes] = []
        try:
            damages = salvage(bytes(damaged), pieces.append)
        except nzip.NzipError:
            continue
        if b"".join(pieces) != original:
            assert damages, f"bit {bit}: salvage changed the output without reporting it"
    assert errors >= 8 * len(packed) - 16  # only flips in the final payload byte's low bits may decode right


@pytest.mark.parametrize(
    ("blob", "error", "message"),
    [
        (fmt.COMPACT_MAGIC + b"\x07\x05\x02", nzip.UnsupportedVersionError, "newer nzip"),
        (fmt.COMPACT_MAGIC + b"\x00\x85\x00" + b"x" * 9, nzip.CorruptDataError, "overlong"),
        (fmt.COMPACT_MAGIC + b"\x00\xff\xff\xff\xff\xff", nzip.CorruptDataError, "too long"),
        (fmt.COMPACT_MAGIC + b"\x00\x81\x80\x80\x80\x04", nzip.CorruptDataError, "over"),
        (fmt.COMPACT_MAGIC + b"\x01\x00\x00", nzip.CorruptDataError, "impossible"),
        (fmt.COMPACT_MAGIC + b"\x01\x05\x05", nzip.CorruptDataError, "impossible"),
        (fmt.COMPACT_MAGIC + b"\x01\x80\x80\x08\x01", nzip.CorruptDataError, "impossible"),
    ],
)
def test_impossible_headers_are_refused_before_any_work(blob: bytes, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        nzip.decompress(blob + bytes(20))
    with pytest.raises(error, match=message):
        scan(io.BytesIO(blob + bytes(20)))


def test_a_bad_checksum_is_corruption_and_salvage_sizes_the_loss() -> None:
    good = member(0, b"abcdef", b"abcdef")
    bad = good[:-1] + bytes((good[-1] ^ 1,))
    with pytest.raises(nzip.CorruptDataError, match="compact member at offset 0"):
        nzip.decompress(bad)
    tail = nzip.compress(b"tail", level=1)
    pieces: list[bytes] = []
    damages = salvage(bad + tail, pieces.append)
    assert b"".join(pieces) == bytes(6) + b"tail"
    assert [(d.what, d.lost, d.lost_at) for d in damages] == [("compact member", 6, 0)]


def test_every_index_names_an_installed_model() -> None:
    names = [name for name, _ in fmt.COMPACT_MODELS]
    assert len(set(names)) == len(names)
    for name, digest in fmt.COMPACT_MODELS:
        assert resolve(name, digest).digest == digest
    for level in range(1, 10):
        m = model_for_level(level)
        assert fmt.compact_index(m.name, m.digest) is not None, f"level {level}'s model has no compact index"


def test_varints_round_trip() -> None:
    for value in [0, 1, 127, 128, 300, 16383, 16384, fmt.COMPACT_MAX_RAW]:
        packed = fmt.pack_varint(value)
        head = fmt.parse_compact_header(fmt.COMPACT_MAGIC + b"\x00" + packed, 0)
        assert head is not None and head.raw_size == value and head.size == 4 + len(packed)


def test_cli_lists_tests_and_salvages_compact_members(tmp_path: Path) -> None:
    (tmp_path / "m.txt").write_bytes(MESSAGE)
    run = [sys.executable, "-m", "nzip"]
    assert subprocess.run([*run, "-3", "m.txt"], cwd=tmp_path).returncode == 0
    packed = (tmp_path / "m.txt.nz").read_bytes()
    assert is_compact(packed)
    r = subprocess.run([*run, "-lv", "m.txt.nz"], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0 and "member 0: compact, model cm3" in r.stdout and " 37 " in r.stdout
    r = subprocess.run([*run, "-tv", "m.txt.nz"], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0 and "OK (37 bytes)" in r.stderr
    (tmp_path / "m.txt.nz").write_bytes(packed[:10] + bytes((packed[10] ^ 0x10,)) + packed[11:])
    r = subprocess.run([*run, "-t", "m.txt.nz"], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 1 and "compact member at offset 0: checksum mismatch" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
