"""Long matches: frames that copy from earlier frames (docs/FORMAT.md, "Long frames")."""

from __future__ import annotations

import io
import random
import subprocess
import sys

import pytest

import nzip
from nzip import container as fmt
from nzip._mutate import refresh_checksums
from nzip.codec import Compressor, compress, decompress, iter_decompress
from nzip.file import NzipFile
from nzip.info import scan
from nzip.matches import pack_payload, parse_payload
from nzip.models import model_for_level
from nzip.recover import salvage

FRAME = 4096
WORDS = "the of and a to in is was that for it with as his on be at by had not are but from or have".split()


def _text(rng: random.Random, n: int) -> bytes:
    return " ".join(rng.choice(WORDS) + str(rng.randrange(100)) for _ in range(n)).encode()


def _data(seed: int = 1) -> bytes:
    """Text, noise, then the text again: the repeat lies frames away."""
    rng = random.Random(seed)
    text = _text(rng, 2500)
    return text + rng.randbytes(5000) + text


def _frames(archive: bytes) -> list[tuple[int, fmt.FrameHeader]]:
    """(offset, header) of every frame of a one-member archive."""
    header = fmt.parse_header(archive[: fmt.header_size(archive)])
    pos, found = header.size, []
    while archive[pos] != fmt.FRAME_END:
        head = fmt.parse_frame_header(archive[pos : pos + fmt.FRAME_HEADER_SIZE], header.frame_size, 0, pos, True)
        found.append((pos, head))
        pos += fmt.FRAME_HEADER_SIZE + head.coded_size
    return found


def _payload(archive: bytes, at: int, head: fmt.FrameHeader) -> bytes:
    return archive[at + fmt.FRAME_HEADER_SIZE : at + fmt.FRAME_HEADER_SIZE + head.coded_size]


@pytest.mark.parametrize("level", [1, 3])
def test_repeats_beyond_the_frame_are_copied(level: int) -> None:
    data = _data()
    packed = compress(data, level, frame_size=FRAME)
    plain = compress(data, level, frame_size=FRAME, long_window_log=None)
    assert decompress(packed) == data
    assert scan(io.BytesIO(packed))[0].long_frames >= 3
    assert scan(io.BytesIO(plain))[0].long_frames == 0
    assert len(packed) < 0.75 * len(plain)


def test_the_archive_does_not_depend_on_threads_or_feeding() -> None:
    data = _data(2)
    one = compress(data, 1, frame_size=FRAME)
    for threads in (2, 4):
        assert compress(data, 1, frame_size=FRAME, threads=threads) == one
    c = Compressor(1, frame_size=FRAME)
    fed = b"".join(c.compress(data[i : i + 777]) for i in range(0, len(data), 777)) + c.flush()
    assert fed == one
    pieces = [one[i : i + 100] for i in range(0, len(one), 100)]
    assert b"".join(iter_decompress(pieces, threads=2, piece=1000)) == data


def test_header_says_whether_frames_may_copy() -> None:
    data = _data(3)
    packed = compress(data, 1, frame_size=FRAME)
    assert packed[5] == fmt.FLAG_LONG
    assert fmt.parse_header(packed[: fmt.header_size(packed)]).window_log == fmt.DEFAULT_WINDOW_LOG
    plain = compress(data, 1, frame_size=FRAME, long_window_log=None)
    assert plain[5] == 0
    assert len(compress(data[:3000], 1)) < 3000  # one frame: a compact member, no window at all
    assert compress(data[:3000], 1, compact=False)[5] == 0  # a full member of one frame: the 0.1 layout
    with pytest.raises(ValueError, match="long_window_log"):
        Compressor(1, long_window_log=12)


def test_a_long_frame_in_a_member_without_the_flag_is_corrupt() -> None:
    packed = bytearray(compress(_data(4), 1, frame_size=FRAME))
    size = fmt.header_size(packed)
    del packed[size - 5]  # the window byte
    packed[5] = 0
    with pytest.raises(nzip.CorruptDataError, match="unknown frame type 3"):
        decompress(refresh_checksums(bytes(packed)))


def test_matches_stay_within_the_window() -> None:
    rng = random.Random(5)
    first, second = rng.randbytes(600_000), rng.randbytes(600_000)
    data = first + second + first[:200_000]  # the repeat is 1.2 MB back
    small = compress(data, 1, frame_size=1 << 16, long_window_log=20)
    large = compress(data, 1, frame_size=1 << 16, long_window_log=21)
    assert scan(io.BytesIO(small))[0].long_frames == 0
    assert scan(io.BytesIO(large))[0].long_frames == 4
    assert decompress(large) == data
    for at, head in _frames(large):
        if head.kind == fmt.FRAME_LONG:
            parsed = parse_payload(_payload(large, at, head), head.raw_size, "frame")
            assert all(length >= 128 and 1 << 20 < dist <= 1 << 21 for _, length, dist in parsed.matches)


def test_a_damaged_match_list_is_an_error() -> None:
    packed = compress(_data(6), 1, frame_size=FRAME)
    at = next(at for at, head in _frames(packed) if head.kind == fmt.FRAME_LONG)
    damaged = bytearray(packed)
    damaged[at + fmt.FRAME_HEADER_SIZE + 2] ^= 0x01  # inside the first match
    with pytest.raises(nzip.CorruptDataError, match="corrupt"):
        decompress(bytes(damaged))


def test_a_source_outside_the_member_is_an_error() -> None:
    packed = compress(_data(7), 1, frame_size=FRAME)
    at, head = next((at, head) for at, head in _frames(packed) if head.kind == fmt.FRAME_LONG)
    parsed = parse_payload(_payload(packed, at, head), head.raw_size, "frame")
    residual = parsed.body
    if parsed.residual_kind == 1:
        residual = model_for_level(1).decode(parsed.body, parsed.residual_size)
    lit, length, _ = parsed.matches[0]
    forged = ((lit, length, 50_000), *parsed.matches[1:])  # before the member's first byte
    payload = pack_payload(forged, residual, parsed.body if parsed.residual_kind == 1 else None)
    frame = fmt.FrameHeader(head.kind, head.raw_size, len(payload), head.raw_crc).pack() + payload
    end = at + fmt.FRAME_HEADER_SIZE + head.coded_size
    archive = packed[:at] + frame + packed[end:]
    with pytest.raises(nzip.CorruptDataError, match="outside the window"):
        decompress(archive)


def test_salvage_keeps_copies_of_intact_frames_and_reports_the_rest() -> None:
    data = _data(8)
    packed = compress(data, 1, frame_size=FRAME)
    frames = _frames(packed)
    assert frames[0][1].kind == fmt.FRAME_MODELLED and frames[-1][1].kind == fmt.FRAME_LONG
    damaged = bytearray(packed)
    damaged[frames[0][0] + fmt.FRAME_HEADER_SIZE + 40] ^= 0x10  # the first frame: a source of the repeat
    out = bytearray()
    damages = salvage(bytes(damaged), out.extend)
    assert len(out) == len(data)
    assert damages[0].what == "frame 0" and (damages[0].lost_at, damages[0].lost) == (0, FRAME)
    copied = [d for d in damages[1:] if "copy from lost output" in d.reason]
    assert copied and all(d.lost_at >= len(data) - 2 * FRAME - len(data) // 2 for d in copied)
    bad = bytearray(len(data))
    for d in damages:
        bad[d.lost_at : d.lost_at + d.lost] = b"\x01" * d.lost
    assert sum(bad) < 2 * FRAME + 200
    assert all(out[i] == data[i] for i in range(len(data)) if not bad[i])
    assert all(out[i] == 0 for i in range(len(data)) if bad[i])


def _nzip(*args: str, data: bytes = b"") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nzip", *args], input=data, capture_output=True)


def test_cli_long_options(tmp_path) -> None:
    data = _data(9)
    src = tmp_path / "data.bin"
    src.write_bytes(data)
    default = _nzip("-1", "--frame-size", "4K", "-c", str(src))
    plain = _nzip("-1", "--frame-size", "4K", "--no-long", "-c", str(src))
    narrow = _nzip("-1", "--frame-size", "4K", "--long", "20", "-c", str(src))
    assert default.returncode == plain.returncode == narrow.returncode == 0
    assert default.stdout[5] == fmt.FLAG_LONG and plain.stdout[5] == 0 and narrow.stdout[5] == fmt.FLAG_LONG
    assert len(default.stdout) < len(plain.stdout)
    assert decompress(narrow.stdout) == data
    (tmp_path / "data.bin.nz").write_bytes(default.stdout)
    listed = _nzip("-lv", str(tmp_path / "data.bin.nz"))
    assert b"long matches within 256 MiB" in listed.stdout
    bad = _nzip("--long", "12", "-c", str(src))
    assert bad.returncode == 1 and bad.stderr.count(b"\n") == 1 and b"--long must be between 20 and 32" in bad.stderr


def test_nzip_open_writes_and_reads_long_matches(tmp_path) -> None:
    data = _data(10)
    with nzip.open(tmp_path / "a.nz", "wb", level=1) as f:
        for i in range(0, len(data), 5000):
            f.write(data[i : i + 5000])
    packed = (tmp_path / "a.nz").read_bytes()
    assert packed == compress(data, 1)  # one 8 MiB frame: no window needed, the 0.1 layout
    with NzipFile(tmp_path / "b.nz", "wb", level=1, frame_size=FRAME) as f:
        f.write(data)
    assert (tmp_path / "b.nz").read_bytes() == compress(data, 1, frame_size=FRAME)
    assert scan(io.BytesIO(compress(data, 1, frame_size=FRAME)))[0].long_frames >= 3
    with nzip.open(tmp_path / "b.nz", "rb", threads=2) as f:
        assert f.read() == data
    with nzip.open(tmp_path / "c.nz", "wb", level=1, long_window_log=None) as f:
        f.write(data)
    assert (tmp_path / "c.nz").read_bytes() == compress(data, 1, long_window_log=None)


def test_salvage_after_a_damaged_frame_header_keeps_only_what_checks_out() -> None:
    """A lost frame header hides how much was lost, so copies after it are kept only when the frame's CRC holds."""
    data = _data(11)
    packed = compress(data, 1, frame_size=FRAME)
    frames = _frames(packed)
    damaged = bytearray(packed)
    damaged[frames[0][0] + 3] ^= 0x01  # frame 0's header: its size is then guessed
    out = bytearray()
    damages = salvage(bytes(damaged), out.extend)
    assert len(out) == len(data)
    lost = bytearray(len(data))
    for d in damages:
        if d.lost:
            lost[d.lost_at : d.lost_at + d.lost] = b"\x01" * d.lost
    assert all(out[i] == data[i] for i in range(len(data)) if not lost[i])
    assert not any("copy from lost output" in d.reason for d in damages)  # whole frames instead
