"""Salvage: every intact frame comes back byte-exact, and one flipped bit costs at most one frame."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

import nzip
from conftest import sample_text
from nzip import container as fmt
from nzip.recover import salvage

FRAME = 1024


@pytest.fixture(scope="module")
def original() -> bytes:
    rng = random.Random(3)
    # Text frames (modelled), a random frame (stored), a short last frame.
    return sample_text(5 * FRAME, seed=9) + rng.randbytes(FRAME) + sample_text(3 * FRAME + 300, seed=10)


@pytest.fixture(scope="module")
def packed(original: bytes) -> bytes:
    return nzip.compress(original, level=1, frame_size=FRAME)


def frame_offsets(packed: bytes) -> list[tuple[int, int]]:
    """(start, end) of every frame (header and payload) in a single-member archive."""
    pos = fmt.parse_header(packed).size
    spans = []
    while packed[pos] != fmt.FRAME_END:
        head = fmt.parse_frame_header(packed[pos:], FRAME, len(spans), pos)
        spans.append((pos, pos + fmt.FRAME_HEADER_SIZE + head.coded_size))
        pos = spans[-1][1]
    return spans


def run_salvage(blob: bytes) -> tuple[bytes, list]:
    out = bytearray()
    damages = salvage(blob, out.extend)
    return bytes(out), damages


def frames_differing(a: bytes, b: bytes) -> list[int]:
    assert len(a) == len(b)
    return [i for i in range(0, len(a), FRAME) if a[i : i + FRAME] != b[i : i + FRAME]]


def test_intact_archive_has_no_damage(original: bytes, packed: bytes) -> None:
    assert run_salvage(packed) == (original, [])


@pytest.mark.parametrize("where", ["payload", "header"])
def test_damaged_frame_costs_only_that_frame(original: bytes, packed: bytes, where: str) -> None:
    spans = frame_offsets(packed)
    for index, (start, end) in enumerate(spans):
        damaged = bytearray(packed)
        pos = start + 3 if where == "header" else (start + fmt.FRAME_HEADER_SIZE + end) // 2
        damaged[pos] ^= 0x08
        out, damages = run_salvage(bytes(damaged))
        assert len(damages) == 1, (index, damages)
        assert damages[0].what == f"frame {index}"
        assert len(out) == len(original)
        assert frames_differing(out, original) == [index * FRAME]
        lost = damages[0]
        assert out[lost.lost_at : lost.lost_at + lost.lost] == bytes(lost.lost)


def test_damaged_footer_loses_nothing(original: bytes, packed: bytes) -> None:
    damaged = bytearray(packed)
    damaged[-15] ^= 0x01
    out, damages = run_salvage(bytes(damaged))
    assert out == original
    assert [d.what for d in damages] == ["footer"]


def test_damaged_stream_header_is_repaired(original: bytes, packed: bytes) -> None:
    for pos in (6, 10, 20, fmt.parse_header(packed).size - 1):
        damaged = bytearray(packed)
        damaged[pos] ^= 0x10
        out, damages = run_salvage(bytes(damaged))
        assert out == original, pos
        assert [d.what for d in damages] == ["stream header"]


def test_truncated_archive_keeps_complete_frames(original: bytes, packed: bytes) -> None:
    spans = frame_offsets(packed)
    cut = spans[4][0] + 40  # inside frame 4
    out, damages = run_salvage(packed[:cut])
    assert out[: 4 * FRAME] == original[: 4 * FRAME]
    assert damages and all("truncated" in d.reason for d in damages)


def test_every_single_bit_flip_costs_at_most_one_frame(original: bytes, packed: bytes) -> None:
    rng = random.Random(11)
    for pos in rng.sample(range(len(packed)), 250):
        damaged = bytearray(packed)
        damaged[pos] ^= 1 << rng.randrange(8)
        out, damages = run_salvage(bytes(damaged))
        assert len(out) == len(original), (pos, damages)
        assert len(frames_differing(out, original)) <= 1, pos


def test_two_members_and_damage_in_the_second(original: bytes) -> None:
    first = nzip.compress(original[:3000], level=1, frame_size=FRAME)
    second = nzip.compress(original[3000:6000], level=2, frame_size=FRAME)
    damaged = bytearray(first + second)
    damaged[len(first) + 100] ^= 0x40
    out, damages = run_salvage(bytes(damaged))
    assert len(damages) == 1
    assert out[:3000] == original[:3000] and len(out) == 6000


def test_cli_test_lists_every_damaged_frame(tmp_path: Path, original: bytes, packed: bytes) -> None:
    spans = frame_offsets(packed)
    damaged = bytearray(packed)
    for index in (1, 6):
        start, end = spans[index]
        damaged[(start + end) // 2] ^= 0x20
    (tmp_path / "d.nz").write_bytes(bytes(damaged))
    r = subprocess.run([sys.executable, "-m", "nzip", "-t", "d.nz"], cwd=tmp_path, capture_output=True)
    assert r.returncode == 1
    lines = r.stderr.decode().splitlines()
    assert len(lines) == 2 and "frame 1 at offset" in lines[0] and "frame 6 at offset" in lines[1]
    r = subprocess.run([sys.executable, "-m", "nzip", "-d", "--salvage", "d.nz"], cwd=tmp_path, capture_output=True)
    assert r.returncode == 1 and len(r.stderr.splitlines()) == 2
    out = (tmp_path / "d").read_bytes()
    assert frames_differing(out, original) == [1 * FRAME, 6 * FRAME]
